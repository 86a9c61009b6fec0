"""The restore-time estimate (coffre.proof.restore_estimate): from a drill, never a guess."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from coffre.proof import restore_estimate
from coffre.proof.restore_estimate import (
    STALE_AFTER,
    FullSize,
    duration_words,
    estimate,
)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MB = 1_000_000


@dataclass(frozen=True)
class Drill:
    """A drill record as the drill ledger keeps it (the fields the estimate reads)."""

    at: datetime = NOW - timedelta(days=3)
    files: int = 50
    bytes: int = 200 * MB
    extract_seconds: float = 5.0
    outcome: str = "ok"


@pytest.fixture
def plain_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fixed or per-file part: the estimate is size / the drill's bytes per second."""
    monkeypatch.setattr(restore_estimate, "START_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "SCAN_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "MATCH_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "PER_FILE_SECONDS", 0.0)


def test_no_drill_yet_gives_no_figure_and_says_why() -> None:
    found = estimate("local", "local", None, FullSize(10 * MB, 100), NOW)
    assert found.seconds is None
    assert found.unknown == "no drill yet"
    assert not found.over(1.0)


def test_a_failed_drill_gives_no_figure() -> None:
    found = estimate("local", "local", Drill(outcome="failed"), FullSize(10 * MB, 100), NOW)
    assert found.seconds is None
    assert found.unknown == "the last drill failed"
    assert found.drill_at == Drill().at


def test_a_drill_that_read_nothing_gives_no_figure() -> None:
    found = estimate("local", "local", Drill(bytes=0), FullSize(10 * MB, 100), NOW)
    assert found.seconds is None and found.unknown == "the last drill read nothing"


def test_no_backup_yet_gives_no_figure_but_the_drill_rate() -> None:
    found = estimate("local", "local", Drill(), None, NOW)
    assert found.seconds is None and found.unknown == "no backup yet"
    assert found.rate == pytest.approx(40 * MB)


@pytest.mark.usefixtures("plain_model")
def test_the_archive_size_is_read_at_the_drills_rate() -> None:
    # 200 MB in 5 s: 40 MB/s; 36 GB take 900 s.
    found = estimate("local", "local", Drill(), FullSize(36_000 * MB, 20_000), NOW)
    assert found.seconds == pytest.approx(900.0)
    assert found.rate == pytest.approx(40 * MB)
    assert found.size == FullSize(36_000 * MB, 20_000)
    assert found.unknown is None and not found.stale and not found.over_link


def test_fixed_scanning_matching_and_per_file_parts_are_taken_out_of_the_drill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore_estimate, "START_SECONDS", 1.0)
    monkeypatch.setattr(restore_estimate, "SCAN_SECONDS", 0.0001)
    monkeypatch.setattr(restore_estimate, "MATCH_SECONDS", 0.00001)
    monkeypatch.setattr(restore_estimate, "PER_FILE_SECONDS", 0.01)
    # The drill: 1 s fixed, 1000 items scanned x 0.1 ms and matched against its 50 files x
    # 10 us, 50 files x 10 ms, so 2.9 s for its 200 MB: a rate of 69 MB/s.
    drill = Drill(extract_seconds=5.0)
    found = estimate("local", "local", drill, FullSize(400 * MB, 1_000), NOW)
    # The full restore: no pattern to match, every file written.
    assert found.seconds == pytest.approx(1.0 + 1_000 * 0.0101 + 400 * MB / (200 * MB / 2.9))
    # Shown to people: the drill's plain rate.
    assert found.rate == pytest.approx(40 * MB)


def test_on_a_large_archive_the_drills_matching_is_not_taken_for_a_slow_disk() -> None:
    # With the model's own figures: 200 000 files, 100 GB; the drill spends most of its time
    # matching the archive's items against its 50 files, and reads its 200 MB at 250 MB/s.
    files, size = 200_000, FullSize(100_000 * MB, 200_000)
    fixed = (
        restore_estimate.START_SECONDS
        + files * (restore_estimate.SCAN_SECONDS + 50 * restore_estimate.MATCH_SECONDS)
        + 50 * restore_estimate.PER_FILE_SECONDS
    )
    drill = Drill(files=50, bytes=200 * MB, extract_seconds=fixed + 0.8)
    found = estimate("local", "local", drill, size, NOW)
    per_file = restore_estimate.SCAN_SECONDS + restore_estimate.PER_FILE_SECONDS
    real = restore_estimate.START_SECONDS + files * per_file + 100_000 * MB / (250 * MB)
    assert found.seconds == pytest.approx(real)
    # The plain bytes per second would have said several times longer.
    assert size.bytes / (found.rate or 1) > 3 * real


def test_a_drill_that_is_nearly_all_fixed_cost_does_not_make_a_fast_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore_estimate, "START_SECONDS", 1.0)
    monkeypatch.setattr(restore_estimate, "SCAN_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "MATCH_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "PER_FILE_SECONDS", 0.0)
    drill = Drill(bytes=10 * MB, extract_seconds=1.0)  # all of it the fixed part
    found = estimate("local", "local", drill, FullSize(1_000 * MB, 1), NOW)
    capped = 1_000 * MB / (10 * MB * restore_estimate.MAX_RATE_FACTOR)
    assert found.seconds == pytest.approx(1.0 + capped)


@pytest.mark.usefixtures("plain_model")
def test_a_mismatching_drill_still_timed_its_extract() -> None:
    found = estimate("local", "local", Drill(outcome="mismatch"), FullSize(400 * MB, 10), NOW)
    assert found.seconds == pytest.approx(10.0)


def test_a_drill_older_than_the_limit_is_stale_but_still_gives_its_figure() -> None:
    old = Drill(at=NOW - STALE_AFTER - timedelta(hours=1))
    found = estimate("local", "local", old, FullSize(400 * MB, 10), NOW)
    assert found.stale and found.seconds is not None
    fresh = estimate("local", "local", Drill(at=NOW - STALE_AFTER), FullSize(400 * MB, 10), NOW)
    assert not fresh.stale


@pytest.mark.usefixtures("plain_model")
def test_an_offsite_figure_is_over_the_link() -> None:
    # 50 MB in 25 s over the Internet link: 2 MB/s; 200 GB take more than a day.
    drill = Drill(bytes=50 * MB, extract_seconds=25.0)
    found = estimate("hds", "offsite", drill, FullSize(200_000 * MB, 50_000), NOW)
    assert found.over_link
    assert found.seconds == pytest.approx(100_000.0)
    assert found.over(24 * 3600)
    assert not estimate("disque-a", "usb", drill, FullSize(1, 1), NOW).over_link


@pytest.mark.usefixtures("plain_model")
def test_over_the_objective_only_beyond_it() -> None:
    found = estimate("local", "local", Drill(), FullSize(36_000 * MB, 20_000), NOW)
    assert found.over(899.0)
    assert not found.over(900.0)
    assert not found.over(24 * 3600)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "under a minute"),
        (59, "under a minute"),
        (60, "1 min"),
        (12 * 60 + 20, "12 min"),
        (3599, "1 h"),
        (3 * 3600 + 10 * 60, "3 h 10 min"),
        (3 * 3600 + 12 * 60, "3 h 10 min"),
        (24 * 3600, "24 h"),
        (47 * 3600 + 50 * 60, "47 h 50 min"),
        (48 * 3600, "2 days"),
        (25 * 3600 * 4, "4 days 4 h"),
        (24 * 3600 + 24 * 3600 + 3600, "2 days 1 h"),
    ],
)
def test_durations_read_as_a_person_says_them(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words


def test_under_two_days_a_figure_is_in_hours() -> None:
    assert duration_words(36 * 3600) == "36 h"
