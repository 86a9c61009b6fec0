"""storage.btrfs against a real btrfs filesystem on a loop device (btrfs_volume)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffre.core.errors import SnapshotError, SnapshotNoSpace
from coffre.storage import btrfs
from tests.integration.btrfs_volume import btrfs_volume

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def opened(path: Path) -> Iterator[int]:
    fd = os.open(path, _DIR)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def volume() -> Iterator[Path]:
    with btrfs_volume(512) as point:
        yield point


@pytest.fixture
def share(volume: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh subvolume (and a folder for its snapshots) for each test, deleted after it."""
    name = f"partage-{request.node.name}"[:200].replace("[", "-").replace("]", "")
    with opened(volume) as top:
        btrfs.create_subvolume(top, name)
        (volume / f"{name}.snaps").mkdir()
        yield volume / name
        snaps = volume / f"{name}.snaps"
        with opened(snaps) as fd:
            for entry in snaps.iterdir():
                btrfs.delete_subvolume(fd, entry.name)
        snaps.rmdir()
        btrfs.delete_subvolume(top, name)


def test_a_snapshot_is_read_only(share: Path) -> None:
    (share / "lettre.odt").write_bytes(b"v1")
    with opened(share) as source, opened(share.parent / f"{share.name}.snaps") as dest:
        btrfs.snapshot(source, dest, "@GMT-2026.01.02-03.04.05")
    taken = share.parent / f"{share.name}.snaps" / "@GMT-2026.01.02-03.04.05"
    assert (taken / "lettre.odt").read_bytes() == b"v1"
    with pytest.raises(OSError) as raised:
        (taken / "nouveau.txt").write_bytes(b"x")
    assert raised.value.errno == errno.EROFS
    with pytest.raises(OSError) as raised:
        (taken / "lettre.odt").write_bytes(b"v2")
    assert raised.value.errno == errno.EROFS


def test_a_writable_snapshot_takes_writes_when_asked(share: Path) -> None:
    with opened(share) as source, opened(share.parent / f"{share.name}.snaps") as dest:
        btrfs.snapshot(source, dest, "rw", readonly=False)
    (share.parent / f"{share.name}.snaps" / "rw" / "x").write_bytes(b"ok")


def test_a_snapshot_keeps_the_sources_inode_numbers_and_ctimes(share: Path) -> None:
    (share / "dossier").mkdir()
    (share / "dossier" / "scan.pdf").write_bytes(b"%PDF")
    with opened(share) as source, opened(share.parent / f"{share.name}.snaps") as dest:
        btrfs.snapshot(source, dest, "s")
    taken = share.parent / f"{share.name}.snaps" / "s"
    for relative in ("dossier", "dossier/scan.pdf"):
        before, after = os.lstat(share / relative), os.lstat(taken / relative)
        assert (after.st_ino, after.st_ctime_ns, after.st_mtime_ns) == (
            before.st_ino,
            before.st_ctime_ns,
            before.st_mtime_ns,
        )


def test_a_taken_name_is_file_exists_and_a_missing_one_file_not_found(share: Path) -> None:
    snaps = share.parent / f"{share.name}.snaps"
    with opened(share) as source, opened(snaps) as dest:
        btrfs.snapshot(source, dest, "s")
        with pytest.raises(FileExistsError):
            btrfs.snapshot(source, dest, "s")
        with pytest.raises(FileNotFoundError):
            btrfs.delete_subvolume(dest, "absent")


def test_a_read_only_snapshot_is_deleted(share: Path) -> None:
    snaps = share.parent / f"{share.name}.snaps"
    with opened(share) as source, opened(snaps) as dest:
        btrfs.snapshot(source, dest, "s")
        btrfs.delete_subvolume(dest, "s")
    assert not (snaps / "s").exists()


def test_deleting_a_plain_folder_is_refused(share: Path) -> None:
    (share / "dossier").mkdir()
    with opened(share) as fd, pytest.raises(SnapshotError):
        btrfs.delete_subvolume(fd, "dossier")
    assert (share / "dossier").is_dir()


def test_the_share_is_a_subvolume_and_a_plain_folder_is_not(share: Path) -> None:
    (share / "dossier").mkdir()
    with opened(share) as fd:
        assert btrfs.is_subvolume(fd)
    with opened(share / "dossier") as fd:
        assert btrfs.is_btrfs(fd)
        assert not btrfs.is_subvolume(fd)


def test_two_subvolumes_of_one_filesystem_share_its_id(share: Path, volume: Path) -> None:
    with opened(share) as fd, opened(volume) as top:
        assert os.fstat(fd).st_dev != os.fstat(top).st_dev  # why st_dev cannot tell
        assert btrfs.filesystem_id(fd) == btrfs.filesystem_id(top)
        with btrfs_volume(128) as other, opened(other) as elsewhere:
            assert btrfs.filesystem_id(elsewhere) != btrfs.filesystem_id(top)


def test_the_temporary_filesystem_is_not_btrfs() -> None:
    with tempfile.TemporaryDirectory() as folder, opened(Path(folder)) as fd:
        assert not btrfs.is_btrfs(fd)
        assert not btrfs.is_subvolume(fd)
        assert not btrfs.is_btrfs(folder)
        with pytest.raises(SnapshotError) as raised:
            btrfs.snapshot(fd, fd, "s")
        assert not isinstance(raised.value, SnapshotNoSpace)


def test_space_comes_back_after_deleting_the_only_copy_of_a_big_file(share: Path) -> None:
    big = 96 * 1024 * 1024
    with (share / "dump.sql").open("wb") as file:
        file.write(os.urandom(big))
        os.fsync(file.fileno())
    snaps = share.parent / f"{share.name}.snaps"
    with opened(share) as source, opened(snaps) as dest:
        btrfs.snapshot(source, dest, "s")
        (share / "dump.sql").unlink()
        btrfs.sync(source)
        held, total = btrfs.free_space(source)
        btrfs.delete_subvolume(dest, "s")
        assert btrfs.wait_deleted(dest, timeout=60)
        assert btrfs.deleting_subvolumes(dest) == []
        freed, total_after = btrfs.free_space(source)
    assert total_after == total
    assert freed - held >= big * 0.9, (held, freed)


def test_a_full_filesystem_refuses_a_snapshot_with_snapshot_no_space() -> None:
    # btrfs keeps a global reserve for metadata, so filling the data space alone is
    # not enough: the volume is filled with small files until metadata runs out.
    with btrfs_volume(128) as point, opened(point) as top:
        btrfs.create_subvolume(top, "partage")
        with opened(point / "partage") as source:
            _fill(point / "partage")
            with pytest.raises(SnapshotNoSpace) as raised:
                for index in range(10_000):
                    btrfs.snapshot(source, top, f"s{index}")
    assert "full" in raised.value.message


def _fill(folder: Path) -> None:
    """Write into ``folder`` until the filesystem says ENOSPC."""
    chunk = os.urandom(1024 * 1024)
    with contextlib.suppress(OSError), (folder / "big").open("wb") as file:
        while True:
            file.write(chunk)
            file.flush()
    for index in range(1_000_000):
        try:
            (folder / f"f{index}").write_bytes(b"x" * 3000)
        except OSError as error:
            assert error.errno == errno.ENOSPC
            return
