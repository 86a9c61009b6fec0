"""A drill's comparison: bytes with an untouched share file, borg's hash for the others,
never through a link, never a false alarm for an edit since the backup."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
from borg.algorithms.checksums import StreamingXXH64  # type: ignore[import-untyped]

from coffre.proof.drill import by_bytes, by_hash, hashes_of, metadata_matches, xxh64_of
from coffre.proof.drill_sample import ArchivedFile


def _when(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=UTC).replace(microsecond=ns // 1000 % 10**6)


def _entry(share: Path, name: str) -> ArchivedFile:
    """The archive's entry of ``share/name`` as it is now (as if backed up just now)."""
    st = (share / name).stat()
    return ArchivedFile(
        str(share / name).lstrip("/"), st.st_size, _when(st.st_mtime_ns), _when(st.st_ctime_ns)
    )


def _xxh64(data: bytes) -> str:
    digest = StreamingXXH64()
    digest.update(data)
    return str(digest.hexdigest())


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    share = tmp_path / "share"
    (share / "Patients").mkdir(parents=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return share, scratch


def _extracted(scratch: Path, entry: ArchivedFile, data: bytes) -> None:
    out = scratch / entry.path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)


def _compare(
    share: Path, scratch: Path, entries: list[ArchivedFile]
) -> tuple[dict[str, bool], list[str]]:
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    try:
        verdicts, left = by_bytes(fd, [PurePosixPath(share)], entries)
    finally:
        os.close(fd)
    return {v.path: v.ok for v in verdicts}, [e.path for e in left]


def test_an_untouched_file_is_compared_byte_for_byte_with_the_share(
    trees: tuple[Path, Path],
) -> None:
    share, scratch = trees
    (share / "Patients" / "a.pdf").write_bytes(b"%PDF-1.7 dossier" * 1000)
    entry = _entry(share, "Patients/a.pdf")
    _extracted(scratch, entry, b"%PDF-1.7 dossier" * 1000)
    assert _compare(share, scratch, [entry]) == ({entry.path: True}, [])


def test_one_byte_off_in_an_untouched_file_is_a_mismatch(trees: tuple[Path, Path]) -> None:
    share, scratch = trees
    data = bytearray(b"x" * 3_000_000)
    (share / "Patients" / "big.bin").write_bytes(bytes(data))
    entry = _entry(share, "Patients/big.bin")
    data[2_500_000] ^= 1
    _extracted(scratch, entry, bytes(data))
    assert _compare(share, scratch, [entry]) == ({entry.path: False}, [])


def test_a_file_edited_since_the_backup_is_left_for_borgs_hash(
    trees: tuple[Path, Path],
) -> None:
    share, scratch = trees
    path = share / "Patients" / "agenda.db"
    path.write_bytes(b"monday")
    entry = _entry(share, "Patients/agenda.db")
    path.write_bytes(b"tuesday")  # edited after the backup: size and times differ
    _extracted(scratch, entry, b"monday")
    assert _compare(share, scratch, [entry]) == ({}, [entry.path])
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    try:
        good = by_hash(fd, [entry], {entry.path: _xxh64(b"monday")})
        bad = by_hash(fd, [entry], {entry.path: _xxh64(b"mondaY")})
        none = by_hash(fd, [entry], {})
    finally:
        os.close(fd)
    assert [v.ok for v in good] == [True]
    assert [(v.ok, v.why) for v in bad] == [(False, "differs from borg's")]
    assert [(v.ok, v.why) for v in none] == [(False, "borg gave no hash")]


def test_a_share_file_behind_a_link_is_never_read_the_hash_judges(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    share, scratch = trees
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.pdf").write_bytes(b"secret")
    (share / "Patients" / "a.pdf").write_bytes(b"secret")
    entry = _entry(share, "Patients/a.pdf")
    (share / "Patients" / "a.pdf").unlink()
    (share / "Patients").rename(share / "old")
    (share / "Patients").symlink_to(elsewhere)  # a workstation swapped the folder for a link
    _extracted(scratch, entry, b"secret")
    assert _compare(share, scratch, [entry]) == ({}, [entry.path])


def test_a_fifo_on_the_share_is_not_read(trees: tuple[Path, Path]) -> None:
    share, scratch = trees
    (share / "Patients" / "pipe").write_bytes(b"")
    entry = _entry(share, "Patients/pipe")
    (share / "Patients" / "pipe").unlink()
    os.mkfifo(share / "Patients" / "pipe")
    _extracted(scratch, entry, b"")
    assert _compare(share, scratch, [entry]) == ({}, [entry.path])


def test_a_file_missing_from_the_extract_is_a_mismatch(trees: tuple[Path, Path]) -> None:
    share, scratch = trees
    (share / "Patients" / "a.pdf").write_bytes(b"a")
    entry = _entry(share, "Patients/a.pdf")
    assert _compare(share, scratch, [entry]) == ({entry.path: False}, [])


def test_metadata_match_needs_size_mtime_and_ctime(trees: tuple[Path, Path]) -> None:
    share, _ = trees
    (share / "a").write_bytes(b"abc")
    entry = _entry(share, "a")
    st = (share / "a").stat()
    second = timedelta(seconds=1)
    assert metadata_matches(st, entry)
    assert not metadata_matches(st, replace(entry, size=4))
    assert not metadata_matches(st, replace(entry, mtime=entry.mtime - second))
    # Same size and mtime, but the inode changed (touch -r, a rename over it): not untouched.
    assert entry.ctime is not None
    assert not metadata_matches(st, replace(entry, ctime=entry.ctime - second))
    # borg kept no ctime (--noctime): size and mtime decide.
    assert metadata_matches(st, replace(entry, ctime=None))


def test_hashes_are_read_from_borgs_json_lines_and_xxh64_matches_borgs(tmp_path: Path) -> None:
    digest = _xxh64(b"abc")
    lines = f'{{"type": "-", "path": "a", "xxh64": "{digest}"}}\n{{"type": "d", "path": "d"}}\n'
    assert hashes_of(lines) == {"a": _xxh64(b"abc")}
    (tmp_path / "f").write_bytes(b"abc")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert xxh64_of(fd) == "44bc2cf5ad770999"  # borg's own XXH64 of b"abc"
    finally:
        os.close(fd)
