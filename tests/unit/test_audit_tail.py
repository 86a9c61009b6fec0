"""The end of the audit chain, read from the end of the log: the witness's figures."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.storage.audit import AuditLog, head_path, read_entries, verify
from coffre.storage.audit_tail import (
    TAIL_ENTRIES,
    ChainTail,
    Link,
    fingerprint,
    last_lines,
    read_tail,
)
from tests.forged_audit import drop_entry, edit_entry, rewrite_consistently

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
ALICE = {"user": "alice", "login": "root", "uid": 0}
LOG = logging.getLogger("test.audit_tail")


def _log_with(path: Path, count: int, *, paths_each: int = 1) -> AuditLog:
    log = AuditLog(path, LOG)
    for n in range(1, count + 1):
        log.record(
            op="restore",
            at=T0 + timedelta(minutes=n),
            person=ALICE,
            target="local",
            archive="cabinet-2026-11-18T01:30",
            paths=[f"/srv/share/patient-{n}-{i}.pdf" for i in range(paths_each)],
            outcome="ok",
        )
    return log


def _reader(data: bytes, reads: list[int]) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        reads.append(length)
        return data[offset : offset + length]

    return read


# --- last_lines: the pure part ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "count", "expected"),
    [
        (b"", 3, []),
        (b"a\n", 3, [b"a"]),
        (b"a\nb\nc\n", 2, [b"b", b"c"]),
        (b"a\nb\nc\n", 3, [b"a", b"b", b"c"]),
        (b"a\nb\nc\n", 9, [b"a", b"b", b"c"]),
        (b"a\nb\ncut", 2, [b"b", b"cut"]),  # a last line cut short is a line
        (b"a\n\nc\n", 2, [b"", b"c"]),  # an empty line too
        (b"a\nb\n", 0, []),
    ],
)
def test_last_lines_are_the_files_last_lines_oldest_first(
    data: bytes, count: int, expected: list[bytes]
) -> None:
    assert last_lines(_reader(data, []), len(data), count) == expected


def test_last_lines_of_lines_longer_than_a_chunk_are_whole() -> None:
    long = [bytes([65 + n]) * (10_000 * (n + 1)) for n in range(4)]
    data = b"\n".join(long) + b"\n"
    assert last_lines(_reader(data, []), len(data), 3) == long[1:]


def test_last_lines_read_the_tail_only() -> None:
    lines = [b"%08d" % n + b"x" * 300 for n in range(100_000)]  # some 30 MB
    data = b"\n".join(lines) + b"\n"
    reads: list[int] = []
    assert last_lines(_reader(data, reads), len(data), TAIL_ENTRIES) == lines[-TAIL_ENTRIES:]
    # 16 lines of ~310 bytes: two chunks (4 + 8 KiB) and the final newline.
    assert sum(reads) <= 4096 + 8192 + 1, reads


# --- read_tail on a real log --------------------------------------------------


def test_the_tail_is_the_last_entries_with_the_chains_hashes(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 40)
    tail = read_tail(path)
    entries = read_entries(path)
    assert tail.links == tuple(Link(e.seq, e.hash) for e in entries[-TAIL_ENTRIES:])
    assert tail.entries == 40
    # What the chain says: each line's hash is the next line's prev, and the head's.
    assert [e.prev for e in entries[-TAIL_ENTRIES + 1 :]] == [link.hash for link in tail.links[:-1]]
    assert tail.head == Link(40, entries[-1].hash)
    line = path.read_bytes().split(b"\n")[-2]
    assert tail.links[-1].hash == hashlib.sha256(line).hexdigest()


def test_a_short_log_gives_all_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 3)
    tail = read_tail(path)
    assert [link.seq for link in tail.links] == [1, 2, 3]


def test_a_missing_log_has_no_entries_but_its_head_is_read(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    assert read_tail(path) == ChainTail((), None)
    _log_with(path, 5)
    head = read_tail(path).head
    path.unlink()
    tail = read_tail(path)
    assert tail.entries == 0
    assert tail.links == ()
    assert tail.head == head


def test_lines_that_are_not_entries_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 5)
    with path.open("ab") as file:
        file.write(b'{"seq": 6, "garbled')  # cut short by a crash
    tail = read_tail(path)
    assert [link.seq for link in tail.links] == [1, 2, 3, 4, 5]
    assert tail.entries == 5


def test_a_damaged_head_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 2)
    head_path(path).write_text("not json")
    assert read_tail(path).head is None
    assert read_tail(path).entries == 2


def test_a_symlink_in_place_of_the_log_is_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.log"
    _log_with(real, 2)
    path = tmp_path / "audit.log"
    path.symlink_to(real)
    with pytest.raises(OSError):
        read_tail(path)


def test_a_record_in_progress_is_not_waited_for_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 2)
    with path.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # what AuditLog.record holds
        with pytest.raises(BlockingIOError):
            read_tail(path, wait=False)
    assert read_tail(path, wait=False).entries == 2


def test_a_large_log_is_read_from_its_end_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 20, paths_each=1)
    # The start of the file made unreadable as JSON and huge: a reader that
    # went through it would be slow and find no entry before the last lines.
    body = path.read_bytes()
    path.write_bytes(b"x" * 20_000_000 + b"\n" + body)
    reads: list[int] = []
    real_pread = os.pread

    def pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("coffre.storage.audit_tail.os.pread", pread)
        tail = read_tail(path)
    assert [link.seq for link in tail.links] == list(range(5, 21))
    assert sum(reads) < 64 * 1024, sum(reads)


def test_a_restore_line_listing_thousands_of_paths_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 3, paths_each=5000)
    tail = read_tail(path)
    assert [link.seq for link in tail.links] == [1, 2, 3]
    assert tail.links[-1].hash == read_entries(path)[-1].hash


# --- fingerprint ----------------------------------------------------------------


def test_the_fingerprint_changes_with_a_record_and_with_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    assert fingerprint(path) == (None, None)
    log = _log_with(path, 2)
    first = fingerprint(path)
    assert first == fingerprint(path)
    log.record(op="find", at=T0, person=ALICE, target=None, archive=None, paths=[], outcome="ok")
    second = fingerprint(path)
    assert second != first
    # Root rewrites a line with the same length and sets the mtime back: the ctime moved
    # (once the kernel's coarse clock, which stamps files, has ticked past the record's).
    stat = path.stat()
    _wait_for_a_later_ctime(tmp_path, stat.st_ctime_ns)
    lines = path.read_bytes().split(b"\n")
    entry = json.loads(lines[0])
    entry["person"]["user"] = "bobby"
    lines[0] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert fingerprint(path) != second


def _wait_for_a_later_ctime(where: Path, ctime_ns: int) -> None:
    probe = where / "probe"
    deadline = time.monotonic() + 5
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > ctime_ns:
            return
        assert time.monotonic() < deadline, "the file clock did not move in 5 s"


# --- what root can forge, and what the tail then shows ---------------------------


def test_a_consistent_rewrite_passes_verify_but_changes_a_seen_seq_hash(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 40)
    before = {link.seq: link.hash for link in read_tail(path).links}
    rewrite_consistently(path, edit_entry(1, paths=["/srv/share/nothing-to-see.pdf"]))
    assert verify(path).ok  # the limit of the box alone
    after = {link.seq: link.hash for link in read_tail(path).links}
    assert after.keys() == before.keys()
    assert all(after[seq] != before[seq] for seq in before)  # line 2 is far behind them


def test_a_removed_entry_lowers_the_count_or_changes_the_hashes(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    _log_with(path, 40)
    before = read_tail(path)
    rewrite_consistently(path, drop_entry(10))
    assert verify(path).ok
    after = read_tail(path)
    assert after.entries == before.entries - 1
    assert after.links[-1].seq == 39
