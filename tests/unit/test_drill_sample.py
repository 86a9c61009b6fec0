"""The drill's sample: budget, the largest and the recent always in, seeded, small archives."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from coffre.proof.drill_sample import ArchivedFile, SampleLimits, choose, files_of

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _file(i: int, size: int, age_days: int = 100) -> ArchivedFile:
    when = T0 - timedelta(days=age_days)
    return ArchivedFile(path=f"srv/share/f{i:04}", size=size, mtime=when, ctime=when)


def _archive(n: int = 500) -> list[ArchivedFile]:
    return [_file(i, 1000 + i * 7, age_days=10 + i % 90) for i in range(n)]


LIMITS = SampleLimits(files=50, budget=200_000, largest=5, recent=5)


def test_the_sample_respects_the_file_count_and_the_byte_budget() -> None:
    for seed in range(20):
        sample = choose(_archive(), LIMITS, random.Random(seed))
        assert len(sample) <= LIMITS.files
        assert sum(f.size for f in sample) <= LIMITS.budget
        assert len({f.path for f in sample}) == len(sample)


def test_the_largest_files_that_fit_are_always_in_the_sample() -> None:
    files = [*_archive(), _file(9000, 10_000_000), _file(9001, 150_000)]
    sample = choose(files, LIMITS, random.Random(1))
    paths = {f.path for f in sample}
    assert "srv/share/f9000" not in paths  # larger than the whole budget
    assert "srv/share/f9001" in paths  # the largest that fits
    fitting = sorted((f for f in files if f.size <= 50_000), key=lambda f: -f.size)
    # After the 150 kB one, 50 kB of budget is left: the next largest that fit come next.
    assert [f.path for f in sample[1:5]] == [f.path for f in fitting[:4]]


def test_the_most_recently_changed_files_are_always_in_the_sample() -> None:
    files = _archive()
    fresh = [_file(8000 + i, 10, age_days=0) for i in range(3)]
    # A file whose content is old but whose inode changed yesterday (ctime) counts as recent.
    touched = ArchivedFile("srv/share/touched", 10, T0 - timedelta(days=400), T0)
    sample = choose([*files, *fresh, touched], LIMITS, random.Random(2))
    paths = {f.path for f in sample}
    assert {f.path for f in fresh} <= paths
    assert "srv/share/touched" in paths


def test_the_same_seed_gives_the_same_sample_whatever_borgs_order() -> None:
    files = _archive()
    one = choose(files, LIMITS, random.Random(42))
    again = choose(list(reversed(files)), LIMITS, random.Random(42))
    other = choose(files, LIMITS, random.Random(43))
    assert one == again
    assert one != other


def test_an_archive_smaller_than_the_sample_gives_all_its_files() -> None:
    files = _archive(12)
    sample = choose(files, LIMITS, random.Random(3))
    assert sorted(f.path for f in sample) == sorted(f.path for f in files)


def test_an_empty_archive_gives_an_empty_sample() -> None:
    assert choose([], LIMITS, random.Random(4)) == []


def test_the_listing_keeps_regular_files_only_with_their_ctime() -> None:
    lines = [
        {"type": "d", "path": "srv/share", "size": 0, "mtime": "2026-11-01T00:00:00.000000"},
        {
            "type": "-",
            "path": "srv/share/a.pdf",
            "size": 12,
            "mtime": "2026-11-01T00:00:00.000001",
            "ctime": "2026-11-02T00:00:00.000000",
        },
        {"type": "l", "path": "srv/share/link", "size": 0, "mtime": "2026-11-01T00:00:00"},
        {"type": "-", "path": "srv/share/bad\x1bname", "size": 3, "mtime": "2026-11-01T00:00:00"},
    ]
    files = files_of("\n".join(json.dumps(line) for line in lines) + "\n")
    assert files == [
        ArchivedFile(
            "srv/share/a.pdf",
            12,
            datetime(2026, 11, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(2026, 11, 2, tzinfo=UTC),
        )
    ]


def test_a_listing_line_that_is_not_json_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="line 2"):
        files_of('{"type": "d", "path": "x", "size": 0, "mtime": "2026-11-01T00:00:00"}\nnope\n')
