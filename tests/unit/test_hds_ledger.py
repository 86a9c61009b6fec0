"""The HDS host's measure of pending deletions (packaging/hds: hds_segments, hds_ledger,
hds_guard) on segment files written in borg 1.4's format."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from hds_guard import judge
from hds_ledger import MANIFEST_ID, replay
from hds_segments import MAGIC, TAG_COMMIT, TAG_DELETE, TAG_PUT, SegmentDamaged
from hds_segments import repository_entries as entries


def _entry(tag: int, key: bytes = b"", data: bytes = b"") -> bytes:
    body = struct.pack("<IB", 9 + len(key) + len(data), tag) + key + data
    return struct.pack("<I", zlib.crc32(body)) + body


def put(key: bytes, size: int) -> bytes:
    return _entry(TAG_PUT, key, b"x" * size)


def delete(key: bytes) -> bytes:
    return _entry(TAG_DELETE, key)


COMMIT = _entry(TAG_COMMIT)


def segment(repository: Path, number: int, *parts: bytes) -> None:
    directory = repository / "data" / "0"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / str(number)).write_bytes(MAGIC + b"".join(parts))


def key(n: int) -> bytes:
    return (n + 1000).to_bytes(32, "big")  # never the manifest's all-zero id


def test_puts_are_live_and_a_delete_makes_its_put_pending(tmp_path: Path) -> None:
    segment(tmp_path, 1, put(key(1), 1000), put(key(2), 500), put(MANIFEST_ID, 10), COMMIT)
    segment(tmp_path, 2, delete(key(2)), put(MANIFEST_ID, 10), COMMIT)
    measure = replay(entries(tmp_path))
    assert measure.live_objects == 2
    assert measure.live_bytes == 1041 + 51
    assert (measure.pending_deletes, measure.pending_bytes) == (1, 541)
    assert [t.id for t in measure.transactions] == [1, 2]
    assert measure.transactions[1].live_bytes_before == 1041 + 541 + 51
    assert measure.last_transaction == 2


def test_the_manifest_rewritten_each_transaction_is_not_a_deletion(tmp_path: Path) -> None:
    for n in range(1, 5):
        segment(tmp_path, n, put(MANIFEST_ID, 100), COMMIT)
    measure = replay(entries(tmp_path))
    assert (measure.pending_bytes, measure.pending_overwrites, measure.live_bytes) == (0, 0, 141)


def test_an_overwritten_object_counts_as_pending(tmp_path: Path) -> None:
    segment(tmp_path, 1, put(key(1), 1000), COMMIT)
    segment(tmp_path, 2, put(key(1), 10), COMMIT)
    measure = replay(entries(tmp_path))
    assert (measure.pending_overwrites, measure.pending_bytes, measure.live_bytes) == (1, 1041, 51)


def test_what_follows_the_last_commit_is_ignored(tmp_path: Path) -> None:
    segment(tmp_path, 1, put(key(1), 1000), COMMIT)
    segment(tmp_path, 2, delete(key(1)), put(key(2), 5)[:20])
    measure = replay(entries(tmp_path))
    assert (measure.pending_deletes, measure.live_bytes, measure.last_transaction) == (0, 1041, 1)


def test_deletions_before_the_last_guarded_compaction_are_not_pending(tmp_path: Path) -> None:
    segment(tmp_path, 1, put(key(1), 100), put(key(2), 100), COMMIT)
    segment(tmp_path, 2, delete(key(1)), COMMIT)
    segment(tmp_path, 4, delete(key(2)), COMMIT)
    measure = replay(entries(tmp_path), since=3)
    assert (measure.pending_deletes, measure.pending_bytes) == (1, 141)


def test_a_damaged_segment_is_refused(tmp_path: Path) -> None:
    segment(tmp_path, 1, struct.pack("<IIB", 0, 9, 7), COMMIT)
    with pytest.raises(SegmentDamaged):
        replay(entries(tmp_path))
    (tmp_path / "data" / "0" / "1").write_bytes(b"ATTICSEG")
    with pytest.raises(SegmentDamaged):
        replay(entries(tmp_path))


def test_the_guard_refuses_a_mass_deletion_and_allows_a_month_of_retention(
    tmp_path: Path,
) -> None:
    archives = [put(key(n), 10_000) for n in range(100)]
    segment(tmp_path, 1, *archives, put(MANIFEST_ID, 10), COMMIT)
    segment(tmp_path, 2, *(delete(key(n)) for n in range(10)), put(MANIFEST_ID, 10), COMMIT)
    month = replay(entries(tmp_path))
    assert not judge(month).refuse
    assert 10 < judge(month).percent < 12
    segment(tmp_path, 3, *(delete(key(n)) for n in range(10, 100)), COMMIT)
    wiped = replay(entries(tmp_path))
    verdict = judge(wiped)
    assert verdict.refuse and "100 deleted" in verdict.why
    assert not judge(wiped, max_percent=float("inf")).refuse


def test_a_deleted_then_rewritten_manifest_is_not_a_deletion(tmp_path: Path) -> None:
    segment(tmp_path, 1, put(MANIFEST_ID, 100), COMMIT)
    segment(tmp_path, 2, delete(MANIFEST_ID), put(key(1), 10), put(MANIFEST_ID, 120), COMMIT)
    measure = replay(entries(tmp_path))
    assert (measure.pending_deletes, measure.pending_bytes) == (0, 0)
    assert measure.live_bytes == 161 + 51
