"""Restores by directory descriptors: links refused by name, moves undone, staging recognised.

The filesystem is real (tmp_path); borg is tests.fakes.FakeBorg where a restore runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from pathlib import Path, PurePosixPath

import pytest

from coffre.core.errors import DestinationError
from coffre.core.restore_plan import STAGING_PREFIX, resolve
from coffre.storage import dirfd
from coffre.storage.staging_mark import MARK_FILE, StagingMark
from coffre.support import placement
from coffre.support.placement import Destination
from coffre.support.restore import restore_archive
from coffre.support.staging import TREE, claim, remove_stale_staging
from tests.fakes import FakeBorg

SHARE = PurePosixPath("/srv/partage")
MARK = StagingMark(".coffre-" + "a" * 32)
ARCHIVE = {f"srv/partage/Patients/f{i:02d}.txt": f"file {i}".encode() for i in range(30)}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _restore_to(to: Path, paths: list[str]) -> None:
    wanted = [resolve(p, [SHARE]) for p in paths]
    borg = FakeBorg(archive=ARCHIVE)
    asyncio.run(restore_archive(borg, "/repo", "cab-1", wanted, to=to, overwrite=False, mark=MARK))


def test_to_through_a_link_is_refused_by_name_and_nothing_is_written(tmp_path: Path) -> None:
    elsewhere = tmp_path / "root-only"
    elsewhere.mkdir()
    (tmp_path / "ici").symlink_to(elsewhere)
    with pytest.raises(DestinationError) as refused:
        _restore_to(tmp_path / "ici" / "dossier", ["Patients"])
    assert f"{tmp_path / 'ici'} is a symbolic link" in refused.value.message
    assert list(elsewhere.iterdir()) == []


def test_to_with_dotdots_is_walked_as_the_folder_it_names(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _restore_to(tmp_path / "a" / ".." / "b", ["Patients/f01.txt"])
    assert _tree(tmp_path / "b") == {"Patients/f01.txt": b"file 1"}


def test_a_file_on_the_way_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "fichier").write_bytes(b"x")
    with pytest.raises(DestinationError) as refused:
        _restore_to(tmp_path / "fichier" / "dossier", ["Patients"])
    assert f"{tmp_path / 'fichier'} is a file, not a folder" in refused.value.message


def _staged(tmp_path: Path) -> tuple[int, int]:
    tree, base = tmp_path / "tree", tmp_path / "base"
    (tree / "Patients").mkdir(parents=True)
    for i in range(30):
        (tree / "Patients" / f"f{i:02d}.txt").write_bytes(b"new")
        (tree / f"top{i:02d}.txt").write_bytes(b"new")
    (base / "Patients").mkdir(parents=True)
    (base / "Patients" / "kept.txt").write_bytes(b"kept")
    return os.open(tree, os.O_RDONLY | os.O_DIRECTORY), os.open(base, os.O_RDONLY | os.O_DIRECTORY)


def test_a_failure_halfway_through_placing_undoes_every_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree_fd, base_fd = _staged(tmp_path)
    before = _tree(tmp_path / "base"), _tree(tmp_path / "tree")
    real, calls = dirfd.rename, []

    def failing_at_the_40th(*args: object) -> None:
        calls.append(args)
        if len(calls) == 40:
            raise OSError(errno.EIO, "input/output error")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(placement, "rename", failing_at_the_40th)
    with pytest.raises(OSError, match="input/output"):
        placement.place(tree_fd, Destination(base_fd, PurePosixPath("/base")), overwrite=False)
    monkeypatch.undo()
    assert (_tree(tmp_path / "base"), _tree(tmp_path / "tree")) == before
    os.close(tree_fd)
    os.close(base_fd)


def test_a_folder_swapped_for_a_link_before_placing_is_refused_and_undone(tmp_path: Path) -> None:
    tree_fd, base_fd = _staged(tmp_path)
    into = Destination(base_fd, PurePosixPath("/base"))
    assert placement.clashes(tree_fd, into, overwrite=False) == []
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "base" / "Patients").rename(tmp_path / "moved")
    (tmp_path / "base" / "Patients").symlink_to(outside)
    with pytest.raises(dirfd.LinkInTheWay) as refused:
        placement.place(tree_fd, into, overwrite=False)
    assert refused.value.filename == "/base/Patients"
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "base").iterdir()) == ["Patients"]
    os.close(tree_fd)
    os.close(base_fd)


def test_overwrite_keeps_the_replaced_file_in_the_tree_until_it_is_removed(tmp_path: Path) -> None:
    tree_fd, base_fd = _staged(tmp_path)
    (tmp_path / "tree" / "Patients" / "kept.txt").write_bytes(b"archived")
    placement.place(tree_fd, Destination(base_fd, PurePosixPath("/base")), overwrite=True)
    assert (tmp_path / "base" / "Patients" / "kept.txt").read_bytes() == b"archived"
    assert (tmp_path / "tree" / "Patients" / "kept.txt").read_bytes() == b"kept"
    os.close(tree_fd)
    os.close(base_fd)


def _stale(parent: Path) -> Path:
    """A staging folder as a restore killed after claiming it leaves it."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    with contextlib.ExitStack() as held:
        staging = claim(fd, PurePosixPath(parent), MARK, held)
        (parent / staging.name / TREE / "half.pdf").write_bytes(b"half")
    os.close(fd)
    return parent / staging.name


def test_only_coffres_own_staging_folders_are_removed_at_start(tmp_path: Path) -> None:
    share = tmp_path / "partage"
    folder = share / "_restaurations" / "cab-1"
    folder.mkdir(parents=True)
    stale = [_stale(share), _stale(folder)]
    users = share / f"{STAGING_PREFIX}mes-dossiers"  # a workstation user's folder
    users.mkdir()
    (users / "lettre.odt").write_bytes(b"mine")
    os.chown(users, 1234, 1234)
    untagged = share / f"{STAGING_PREFIX}0123456789ab"  # root's and 0700, but no tag
    untagged.mkdir(mode=0o700)
    (untagged / MARK.name.replace("a", "b")).write_bytes(b"")
    held = _stale(share)
    holder = os.open(held, os.O_RDONLY | os.O_DIRECTORY)
    import fcntl

    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        removed = remove_stale_staging([share], MARK)
    finally:
        os.close(holder)
    assert sorted(removed) == sorted(PurePosixPath(p) for p in stale)
    assert not any(p.exists() for p in stale)
    assert not folder.exists()  # the archive's folder the restore made, emptied
    assert (users / "lettre.odt").read_bytes() == b"mine"
    assert untagged.exists() and held.exists()


def test_the_box_tag_is_drawn_once_kept_and_redrawn_when_damaged(tmp_path: Path) -> None:
    first = StagingMark.of_box(tmp_path)
    assert first == StagingMark.of_box(tmp_path)
    assert first.name.startswith(".coffre-") and len(first.name) == 8 + 32
    assert (tmp_path / MARK_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / MARK_FILE).write_text("garbage")
    again = StagingMark.of_box(tmp_path)
    assert again != first and again == StagingMark.of_box(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [MARK_FILE]  # no draft left behind


def test_backups_leave_out_the_tag_once_a_restore_drew_it_and_never_draw_it(
    tmp_path: Path,
) -> None:
    from coffre.jobs.backup import _staging_tags

    assert _staging_tags(tmp_path) == ()
    assert not (tmp_path / MARK_FILE).exists()  # a backup makes no state of its own
    drawn = StagingMark.of_box(tmp_path)
    assert _staging_tags(tmp_path) == (drawn.name,)
