"""restore_archive's staging: all or nothing, folders merge, files never replaced unasked.

borg is tests.fakes.FakeBorg, which writes an archive's files into its working directory
as ``borg extract --strip-components`` would, and warns about paths it lacks as
borg 1.4 does; the filesystem side is real (tmp_path).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath

import pytest

from coffre.core.errors import BorgIntegrityError, DestinationError, NotInArchive, WouldOverwrite
from coffre.core.restore_plan import STAGING_PREFIX, resolve
from coffre.storage.staging_mark import StagingMark
from coffre.support.restore import RestoreReport, restore_archive
from tests.fakes import FakeBorg

MARK = StagingMark(".coffre-" + "5" * 32)

SHARE = PurePosixPath("/srv/partage")
ARCHIVE = {
    "srv/partage/Patients/Dupont/ordonnance.pdf": b"ordonnance",
    "srv/partage/Patients/Dupont/radio.jpg": b"radio",
    "srv/partage/Patients/Martin/bilan.odt": b"bilan",
}


def _restore(
    borg: FakeBorg, paths: list[str], to: Path, *, overwrite: bool = False
) -> tuple[str, ...]:
    return _report(borg, paths, to, overwrite=overwrite).written


def _report(
    borg: FakeBorg, paths: list[str], to: Path, *, overwrite: bool = False
) -> RestoreReport:
    wanted = [resolve(p, [SHARE]) for p in paths]
    return asyncio.run(
        restore_archive(borg, "/repo", "cab-1", wanted, to=to, overwrite=overwrite, mark=MARK)
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_folder_and_a_file_land_with_the_share_folders_stripped(tmp_path: Path) -> None:
    borg = FakeBorg(archive=ARCHIVE)
    written = _restore(borg, ["Patients/Dupont", "Patients/Martin/bilan.odt"], tmp_path / "out")
    assert _tree(tmp_path / "out") == {
        "Patients/Dupont/ordonnance.pdf": b"ordonnance",
        "Patients/Dupont/radio.jpg": b"radio",
        "Patients/Martin/bilan.odt": b"bilan",
    }
    assert written == (
        str(tmp_path / "out" / "Patients" / "Dupont"),
        str(tmp_path / "out" / "Patients" / "Martin" / "bilan.odt"),
    )
    assert len(borg.calls) == 1  # one borg run, no listing first
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_a_missing_path_writes_nothing_even_the_paths_that_exist(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(NotInArchive) as refused:
        _restore(FakeBorg(archive=ARCHIVE), ["Patients/Dupont", "Patients/Durand"], out)
    assert "/srv/partage/Patients/Durand" in refused.value.message
    assert not out.exists()  # not even the folder coffre made for it


def test_existing_files_are_never_replaced_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "Patients" / "Dupont").mkdir(parents=True)
    (out / "Patients" / "Dupont" / "radio.jpg").write_bytes(b"mine")
    (out / "Patients" / "Dupont" / "notes.txt").write_bytes(b"kept")
    with pytest.raises(WouldOverwrite) as refused:
        _restore(FakeBorg(archive=ARCHIVE), ["Patients"], out)
    assert "radio.jpg" in refused.value.message
    before = {
        "Patients/Dupont/radio.jpg": b"mine",
        "Patients/Dupont/notes.txt": b"kept",
    }
    assert _tree(out) == before
    assert [p.name for p in out.iterdir()] == ["Patients"]  # staging removed

    _restore(FakeBorg(archive=ARCHIVE), ["Patients"], out, overwrite=True)
    after = _tree(out)
    assert after["Patients/Dupont/radio.jpg"] == b"radio"
    assert after["Patients/Dupont/notes.txt"] == b"kept"  # folders merge: other files stay
    assert after["Patients/Martin/bilan.odt"] == b"bilan"


def test_a_file_where_a_folder_goes_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "Patients").mkdir(parents=True)
    (out / "Patients" / "Dupont").write_bytes(b"a file, not a folder")
    with pytest.raises(WouldOverwrite):
        _restore(FakeBorg(archive=ARCHIVE), ["Patients/Dupont"], out, overwrite=True)
    assert (out / "Patients" / "Dupont").read_bytes() == b"a file, not a folder"


def test_folders_coffre_makes_take_the_owner_and_mode_of_the_share(tmp_path: Path) -> None:
    share = tmp_path / "srv" / "partage"
    share.mkdir(parents=True)
    share.chmod(0o2770)
    os.chown(share, 1234, 4321)
    borg = FakeBorg(
        archive={str(share / k.removeprefix("srv/partage/"))[1:]: v for k, v in ARCHIVE.items()}
    )
    wanted = [resolve("Patients/Martin/bilan.odt", [PurePosixPath(share)])]
    asyncio.run(
        restore_archive(borg, "/repo", "cab-1", wanted, to=None, overwrite=False, mark=MARK)
    )
    base = share / "_restaurations" / "cab-1"
    for folder in (share / "_restaurations", base, base / "Patients", base / "Patients" / "Martin"):
        st = folder.stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o2770, 1234, 4321), folder
    assert (base / "Patients" / "Martin" / "bilan.odt").read_bytes() == b"bilan"


RADIO = "srv/partage/Patients/Dupont/radio.jpg"


def test_a_file_borg_could_not_write_whole_writes_nothing(tmp_path: Path) -> None:
    """borg 1.4 goes on after a failed write and leaves a truncated file: never delivered."""
    out = tmp_path / "out"
    (out / "Patients" / "Martin").mkdir(parents=True)
    full = FakeBorg(
        archive=ARCHIVE, extract_fails={RADIO: ("BackupOSError", "write: [Errno 28] No space left")}
    )
    with pytest.raises(DestinationError) as full_error:
        _restore(full, ["Patients"], out)
    assert f"no space left where the restore goes ({out})" in full_error.value.message
    assert "nothing was written" in full_error.value.hint and "--to" in full_error.value.hint
    assert _tree(out) == {} and [p.name for p in out.iterdir()] == ["Patients"]

    refused = FakeBorg(
        archive=ARCHIVE, extract_fails={RADIO: ("BackupOSError", "open: [Errno 13] Permission")}
    )
    with pytest.raises(DestinationError) as write_error:
        _restore(refused, ["Patients/Dupont"], out)
    assert f"cannot write the restore to {out}: {RADIO}: open: [Errno 13]" in str(write_error.value)
    assert _tree(out) == {}


def test_a_damaged_item_writes_nothing_and_points_at_another_archive(tmp_path: Path) -> None:
    damaged = FakeBorg(
        archive=ARCHIVE, extract_fails={RADIO: ("BackupError", "File has damaged chunks.")}
    )
    with pytest.raises(BorgIntegrityError) as caught:
        _restore(damaged, ["Patients/Dupont"], tmp_path / "out")
    assert "archive cab-1 gave 1 damaged item(s): " in caught.value.message
    assert "another --archive" in caught.value.hint
    assert not (tmp_path / "out").exists()


def test_attributes_borg_could_not_set_are_reported_and_the_files_delivered(
    tmp_path: Path,
) -> None:
    note = "srv/partage/Patients/Dupont/radio.jpg: when setting extended attribute user.x: ..."
    report = _report(
        FakeBorg(archive=ARCHIVE, extract_notes=[note]), ["Patients/Dupont"], tmp_path / "out"
    )
    assert report.warnings == (note,)
    assert _tree(tmp_path / "out")["Patients/Dupont/radio.jpg"] == b"radio"


def test_a_link_in_the_share_where_restores_go_is_never_followed(tmp_path: Path) -> None:
    share = tmp_path / "srv" / "partage"
    share.mkdir(parents=True)
    elsewhere = tmp_path / "repositories"
    elsewhere.mkdir()
    (share / "_restaurations").symlink_to(elsewhere)  # made over SMB, say
    borg = FakeBorg(archive={str(share / "a.pdf")[1:]: b"a"})
    wanted = [resolve("a.pdf", [PurePosixPath(share)])]
    with pytest.raises(DestinationError) as refused:
        asyncio.run(
            restore_archive(borg, "/repo", "cab-1", wanted, to=None, overwrite=False, mark=MARK)
        )
    assert f"{share / '_restaurations'} is a symbolic link" in refused.value.message
    assert list(elsewhere.iterdir()) == [] and borg.calls == []
