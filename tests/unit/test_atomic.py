"""write_atomically: the new file whole, its mode from the start, or the old file untouched."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from coffre.storage import atomic
from coffre.storage.atomic import write_atomically


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_its_content_and_mode_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    previous = os.umask(0o077)
    try:
        write_atomically(path, b"host key\n", mode=0o644)
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"host key\n"
    assert _mode(path) == 0o644
    assert _names(tmp_path) == ["known_hosts"]


def test_an_old_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "head"
    path.write_bytes(b"old content, longer than the new one\n")
    path.chmod(0o644)
    write_atomically(path, b"new\n", mode=0o600)
    assert path.read_bytes() == b"new\n"
    assert _mode(path) == 0o600
    assert _names(tmp_path) == ["head"]


def test_the_mode_is_set_before_any_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A secret must never sit in a file others can read, not even for a moment.
    modes: list[int] = []
    write_all = atomic._write_all

    def spy(fd: int, data: bytes) -> None:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        write_all(fd, data)

    monkeypatch.setattr(atomic, "_write_all", spy)
    write_atomically(tmp_path / "pinned", b"secret\n", mode=0o640)
    assert modes == [0o640]


def test_the_file_then_the_directory_are_fsynced_around_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "head"
    synced: list[tuple[str, bool]] = []
    fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append((str(Path(f"/proc/self/fd/{fd}").readlink()), path.exists()))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomically(path, b"x", mode=0o600)
    (temporary, renamed_before), (directory, renamed_after) = synced
    # The data is on disk before the rename; the rename is on disk before returning.
    assert Path(temporary).parent == tmp_path and Path(temporary).name.startswith(".head.")
    assert not renamed_before
    assert (Path(directory), renamed_after) == (tmp_path, True)


@pytest.mark.parametrize("when", ["write", "fsync"])
def test_a_failure_leaves_the_old_file_whole_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    path = tmp_path / "head"
    path.write_bytes(b"old\n")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if when == "write":
        write_all = atomic._write_all

        def half_then_full(fd: int, data: bytes) -> None:
            write_all(fd, data[: len(data) // 2])
            full()

        monkeypatch.setattr(atomic, "_write_all", half_then_full)
    else:
        monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as caught:
        write_atomically(path, b"the new content\n", mode=0o600)
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old\n"
    assert _names(tmp_path) == ["head"]


def test_an_interruption_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int, data: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "head", b"x", mode=0o600)
    assert _names(tmp_path) == []


def test_a_rename_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "head"
    path.mkdir()  # a directory in the way: rename(2) refuses to replace it with a file
    with pytest.raises(IsADirectoryError):
        write_atomically(path, b"x", mode=0o600)
    assert _names(tmp_path) == ["head"] and path.is_dir()


def test_a_missing_directory_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "absent" / "head", b"x", mode=0o600)
    assert _names(tmp_path) == []
