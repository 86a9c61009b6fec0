"""Tests of coffre.core.schedule: due instants, DST, catch-up after downtime."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffre.core.schedule import catch_up_due, due_at, last_due, next_due

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
CHATHAM = ZoneInfo("Pacific/Chatham")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- due_at --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "at", "tz", "expected"),
    [
        # Winter (CET, +1) and summer (CEST, +2) in Paris.
        (date(2026, 1, 15), time(2, 0), PARIS, utc(2026, 1, 15, 1, 0)),
        (date(2026, 7, 15), time(2, 0), PARIS, utc(2026, 7, 15, 0, 0)),
        # Local midnight is the previous UTC day.
        (date(2026, 1, 1), time(0, 0), PARIS, utc(2025, 12, 31, 23, 0)),
        (date(2026, 1, 1), time(2, 0), KOLKATA, utc(2025, 12, 31, 20, 30)),
        (date(2026, 1, 1), time(2, 0), ZoneInfo("UTC"), utc(2026, 1, 1, 2, 0)),
        # Spring forward, Paris 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does
        # not exist; it runs at 01:30Z, shown 03:30 CEST.
        (date(2026, 3, 29), time(2, 30), PARIS, utc(2026, 3, 29, 1, 30)),
        (date(2026, 3, 29), time(2, 0), PARIS, utc(2026, 3, 29, 1, 0)),
        (date(2026, 3, 29), time(1, 59), PARIS, utc(2026, 3, 29, 0, 59)),
        (date(2026, 3, 29), time(3, 0), PARIS, utc(2026, 3, 29, 1, 0)),
        # Fall back, Paris 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens
        # twice (00:30Z and 01:30Z); the run is at the first.
        (date(2026, 10, 25), time(2, 30), PARIS, utc(2026, 10, 25, 0, 30)),
        (date(2026, 10, 25), time(3, 0), PARIS, utc(2026, 10, 25, 2, 0)),
        # New York: spring gap 02:00-03:00 on 03-08, repeated 01:00-02:00 on 11-01.
        (date(2026, 3, 8), time(2, 30), NEW_YORK, utc(2026, 3, 8, 7, 30)),
        (date(2026, 11, 1), time(1, 30), NEW_YORK, utc(2026, 11, 1, 5, 30)),
        # Lord Howe moves its clock by 30 minutes only.
        (date(2026, 10, 4), time(2, 15), LORD_HOWE, utc(2026, 10, 3, 15, 45)),
        (date(2026, 4, 5), time(1, 45), LORD_HOWE, utc(2026, 4, 4, 14, 45)),
        # Chatham (+12:45 / +13:45) changes at 02:45 / 03:45 local.
        (date(2026, 9, 27), time(3, 0), CHATHAM, utc(2026, 9, 26, 14, 15)),
        (date(2026, 4, 5), time(2, 45), CHATHAM, utc(2026, 4, 4, 13, 0)),
    ],
)
def test_due_at(day: date, at: time, tz: ZoneInfo, expected: datetime) -> None:
    due = due_at(day, at, tz)
    assert due == expected
    assert due.tzinfo is UTC


def test_due_at_in_a_spring_gap_shows_after_the_gap() -> None:
    due = due_at(date(2026, 3, 29), time(2, 30), PARIS)
    assert due.astimezone(PARIS).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


def test_due_at_ignores_the_fold_of_at() -> None:
    at = time(2, 30, fold=1)
    assert due_at(date(2026, 10, 25), at, PARIS) == utc(2026, 10, 25, 0, 30)


def test_due_at_refuses_an_aware_time_of_day() -> None:
    with pytest.raises(ValueError, match="naive"):
        due_at(date(2026, 1, 1), time(2, 0, tzinfo=UTC), PARIS)


def test_a_gap_at_the_end_of_the_day_moves_the_run_to_the_next_date() -> None:
    # Nuuk springs forward from 23:00 (-2) to 00:00 (-1) on Saturday 2026-03-28.
    nuuk = ZoneInfo("America/Nuuk")
    saturday = due_at(date(2026, 3, 28), time(23, 30), nuuk)
    sunday = due_at(date(2026, 3, 29), time(23, 30), nuuk)
    assert saturday == utc(2026, 3, 29, 1, 30)
    assert saturday.astimezone(nuuk).date() == date(2026, 3, 29)
    assert next_due(saturday, time(23, 30), nuuk) == sunday


def test_a_day_that_does_not_exist_shares_the_next_days_run() -> None:
    # Samoa went from -10 to +14 at the end of 2011-12-29: no 2011-12-30.
    apia = ZoneInfo("Pacific/Apia")
    at = time(2, 0)
    assert due_at(date(2011, 12, 30), at, apia) == due_at(date(2011, 12, 31), at, apia)
    thursday = due_at(date(2011, 12, 29), at, apia)
    saturday = due_at(date(2011, 12, 31), at, apia)
    assert next_due(thursday, at, apia) == saturday
    assert last_due(saturday - timedelta(microseconds=1), at, apia) == thursday
    assert saturday - thursday == timedelta(hours=24)


# --- last_due / next_due -----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "last", "nxt"),
    [
        # 01:59 local, the run is at 02:00: still yesterday's.
        (utc(2026, 1, 15, 0, 59), utc(2026, 1, 14, 1, 0), utc(2026, 1, 15, 1, 0)),
        # Exactly at the due instant: due now, the next is tomorrow.
        (utc(2026, 1, 15, 1, 0), utc(2026, 1, 15, 1, 0), utc(2026, 1, 16, 1, 0)),
        (
            utc(2026, 1, 15, 1, 0) - timedelta(microseconds=1),
            utc(2026, 1, 14, 1, 0),
            utc(2026, 1, 15, 1, 0),
        ),
        # Around local midnight and New Year (23:30Z is 00:30 on Jan 1 in Paris).
        (utc(2025, 12, 31, 23, 30), utc(2025, 12, 31, 1, 0), utc(2026, 1, 1, 1, 0)),
        # 02:00 does not exist on 03-29 (it runs at 03:00 CEST = 01:00Z), then
        # 23 hours until the run of 03-30.
        (utc(2026, 3, 29, 0, 30), utc(2026, 3, 28, 1, 0), utc(2026, 3, 29, 1, 0)),
        (utc(2026, 3, 29, 12, 0), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)),
        # 02:00 happens twice on 10-25: the run is at the first (CEST), then
        # 25 hours until the run of 10-26.
        (utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 0, 0), utc(2026, 10, 26, 1, 0)),
        (utc(2026, 10, 24, 23, 59), utc(2026, 10, 24, 0, 0), utc(2026, 10, 25, 0, 0)),
    ],
)
def test_last_and_next_due_in_paris_at_two(now: datetime, last: datetime, nxt: datetime) -> None:
    assert last_due(now, time(2, 0), PARIS) == last
    assert next_due(now, time(2, 0), PARIS) == nxt


def test_midnight_run_around_midnight() -> None:
    at = time(0, 0)
    midnight = utc(2026, 1, 14, 23, 0)  # 00:00 on the 15th in Paris
    assert last_due(midnight, at, PARIS) == midnight
    assert next_due(midnight, at, PARIS) == midnight + timedelta(days=1)
    just_before = midnight - timedelta(microseconds=1)
    assert last_due(just_before, at, PARIS) == midnight - timedelta(days=1)
    assert next_due(just_before, at, PARIS) == midnight


def test_a_run_late_in_the_evening() -> None:
    at = time(23, 30)
    now = utc(2026, 1, 14, 23, 0)  # 00:00 on the 15th in Paris
    assert last_due(now, at, PARIS) == utc(2026, 1, 14, 22, 30)
    assert next_due(now, at, PARIS) == utc(2026, 1, 15, 22, 30)


def test_the_ambiguous_hour_runs_once() -> None:
    at = time(2, 30)
    first, second = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)
    assert last_due(second, at, PARIS) == first
    assert next_due(first, at, PARIS) == utc(2026, 10, 26, 1, 30)


def test_the_missing_hour_still_runs() -> None:
    at = time(2, 30)
    assert next_due(utc(2026, 3, 28, 12, 0), at, PARIS) == utc(2026, 3, 29, 1, 30)
    assert last_due(utc(2026, 3, 29, 1, 30), at, PARIS) == utc(2026, 3, 29, 1, 30)
    assert next_due(utc(2026, 3, 29, 1, 30), at, PARIS) == utc(2026, 3, 30, 0, 30)


def test_now_in_any_timezone_is_the_same_instant() -> None:
    now_utc = utc(2026, 6, 1, 12, 0)
    now_ny = now_utc.astimezone(NEW_YORK)
    assert last_due(now_ny, time(2, 0), PARIS) == last_due(now_utc, time(2, 0), PARIS)
    assert next_due(now_ny, time(2, 0), PARIS) == next_due(now_utc, time(2, 0), PARIS)


def test_other_timezones() -> None:
    now = utc(2026, 6, 1, 12, 0)
    assert next_due(now, time(2, 0), NEW_YORK) == utc(2026, 6, 2, 6, 0)
    assert last_due(now, time(2, 0), KOLKATA) == utc(2026, 5, 31, 20, 30)
    assert next_due(now, time(2, 0), KOLKATA) == utc(2026, 6, 1, 20, 30)
    # Winter in the south: Chatham is on +12:45 in June.
    assert next_due(now, time(2, 0), CHATHAM) == utc(2026, 6, 1, 13, 15)


def test_naive_now_is_refused() -> None:
    naive = datetime(2026, 1, 1, 12, 0)
    for f in (last_due, next_due):
        with pytest.raises(ValueError, match="aware"):
            f(naive, time(2, 0), PARIS)
    with pytest.raises(ValueError, match="aware"):
        catch_up_due(None, naive, time(2, 0), PARIS)
    with pytest.raises(ValueError, match="aware"):
        catch_up_due(naive, utc(2026, 1, 1), time(2, 0), PARIS)


# --- catch_up_due -------------------------------------------------------------------

AT = time(2, 0)


def test_never_run_runs_for_the_last_due() -> None:
    now = utc(2026, 1, 15, 12, 0)
    assert catch_up_due(None, now, AT, PARIS) == utc(2026, 1, 15, 1, 0)


def test_not_due_again_after_the_run() -> None:
    due = utc(2026, 1, 15, 1, 0)
    assert catch_up_due(due, due, AT, PARIS) is None
    assert catch_up_due(due, utc(2026, 1, 15, 23, 59), AT, PARIS) is None
    assert catch_up_due(due, utc(2026, 1, 16, 1, 0), AT, PARIS) == utc(2026, 1, 16, 1, 0)


def test_one_catch_up_run_after_a_week_off() -> None:
    last_run = utc(2026, 1, 8, 1, 0)
    now = utc(2026, 1, 15, 9, 0)
    due = catch_up_due(last_run, now, AT, PARIS)
    assert due == utc(2026, 1, 15, 1, 0)
    assert catch_up_due(due, now, AT, PARIS) is None


def test_a_clock_that_stepped_back_does_not_stop_the_backups() -> None:
    # The last run was recorded under a clock far in the future (bad RTC).
    future = utc(2099, 1, 1, 1, 0)
    now = utc(2026, 1, 15, 9, 0)
    assert catch_up_due(future, now, AT, PARIS) == utc(2026, 1, 15, 1, 0)


def test_a_changed_time_of_day() -> None:
    # Moved from 01:00 to 03:00 local: today's 01:00 run counts for today.
    ran = due_at(date(2026, 1, 15), time(1, 0), PARIS)
    assert catch_up_due(ran, utc(2026, 1, 15, 1, 30), time(3, 0), PARIS) is None
    assert catch_up_due(ran, utc(2026, 1, 15, 2, 0), time(3, 0), PARIS) == utc(2026, 1, 15, 2, 0)


# --- properties ------------------------------------------------------------------

# The zones the brief names: their DST gaps never reach the end of a day.
COMMON_ZONES = [
    "Europe/Paris",
    "UTC",
    "America/New_York",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
]

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.timezones(),
)
# Times of day near the hours where zones change their clocks are the interesting ones.
times_of_day = st.one_of(
    st.times(),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])),
)
any_zone = st.timezones()
common_zone = st.sampled_from(COMMON_ZONES).map(ZoneInfo)
PROPERTY = settings(max_examples=300, deadline=None)


def scheduled_days(instant: datetime, at: time, tz: ZoneInfo) -> list[date]:
    """Every day d near ``instant`` whose run is at ``instant`` (found by brute force)."""
    local = instant.astimezone(tz).date()
    near = [local + timedelta(days=k) for k in range(-5, 6)]
    return [d for d in near if due_at(d, at, tz) == instant]


@PROPERTY
@given(now=moments, at=times_of_day, tz=any_zone)
def test_last_and_next_bracket_now(now: datetime, at: time, tz: ZoneInfo) -> None:
    last, nxt = last_due(now, at, tz), next_due(now, at, tz)
    assert last <= now < nxt
    assert last.tzinfo is UTC and nxt.tzinfo is UTC
    # Both are real due instants, and none lies strictly between them.
    assert scheduled_days(last, at, tz)
    assert scheduled_days(nxt, at, tz)
    local = now.astimezone(tz).date()
    for k in range(-5, 6):
        assert not last < due_at(local + timedelta(days=k), at, tz) < nxt
    assert next_due(last, at, tz) == nxt
    assert last_due(nxt, at, tz) == nxt
    assert last_due(last, at, tz) == last


@PROPERTY
@given(now=moments, at=times_of_day, tz=any_zone)
def test_consecutive_runs_are_consecutive_days(now: datetime, at: time, tz: ZoneInfo) -> None:
    # In every zone: the next run is the run of the day after the last run's
    # day (a skipped calendar day shares its run with the next day).
    last, nxt = last_due(now, at, tz), next_due(now, at, tz)
    last_day = max(scheduled_days(last, at, tz))
    assert nxt == due_at(last_day + timedelta(days=1), at, tz)


@PROPERTY
@given(now=moments, at=times_of_day, tz=common_zone)
def test_local_date_advances_by_one_day(now: datetime, at: time, tz: ZoneInfo) -> None:
    nxt = next_due(now, at, tz)
    after = next_due(nxt, at, tz)
    before = last_due(now, at, tz)
    assert after.astimezone(tz).date() - nxt.astimezone(tz).date() == timedelta(days=1)
    assert nxt.astimezone(tz).date() - before.astimezone(tz).date() == timedelta(days=1)
    # Off DST days the interval is a plain day; on them, one day minus or plus the shift.
    assert timedelta(hours=22) <= after - nxt <= timedelta(hours=26)


@PROPERTY
@given(
    start=moments,
    at=times_of_day,
    tz=any_zone,
    downtime=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
)
def test_one_run_after_downtime(
    start: datetime, at: time, tz: ZoneInfo, downtime: timedelta
) -> None:
    ran = catch_up_due(None, start, at, tz)
    assert ran == last_due(start, at, tz)
    # Not due right after a run, until the next due instant.
    assert catch_up_due(ran, start, at, tz) is None
    nxt = next_due(start, at, tz)
    assert catch_up_due(ran, nxt - timedelta(microseconds=1), at, tz) is None
    assert catch_up_due(ran, nxt, at, tz) == nxt
    # Back after the downtime: at most one run, for the latest due instant.
    now = start + downtime
    due = catch_up_due(ran, now, at, tz)
    if now < nxt:
        assert due is None
    else:
        assert due == last_due(now, at, tz)
        assert catch_up_due(due, now, at, tz) is None


@settings(max_examples=100, deadline=None)
@given(
    start=moments,
    at=times_of_day,
    tz=common_zone,
    steps=st.lists(
        st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=9)),
        min_size=1,
        max_size=30,
    ),
)
def test_a_daemon_waking_up_at_random_never_misses_nor_repeats(
    start: datetime, at: time, tz: ZoneInfo, steps: list[timedelta]
) -> None:
    # A model of the service: at each wake-up it asks what is due and runs it.
    last_run: datetime | None = None
    runs: list[datetime] = []
    now = start
    for step in steps:
        now += step
        due = catch_up_due(last_run, now, at, tz)
        if due is not None:
            runs.append(due)
            last_run = due
        # After each wake-up, the latest due instant has been run: none missed.
        assert last_run == last_due(now, at, tz)
    assert runs == sorted(set(runs))  # never twice the same run
    assert len(runs) <= len(steps)
