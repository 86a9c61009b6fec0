"""Which Previous Versions are kept, which go, and when the office ones are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coffre.consistency.gmt_names import name_of, taken_at
from coffre.consistency.version_plan import (
    OfficeHours,
    Version,
    by_age,
    expired,
    next_office,
    office_due,
)

PARIS = ZoneInfo("Europe/Paris")
OFFICE = OfficeHours(frozenset(range(5)), 8 * 60, 19 * 60, 60, PARIS)


def version(local: str, kind: str = "office", tz: ZoneInfo = PARIS) -> Version:
    at = datetime.fromisoformat(local).replace(tzinfo=tz)
    return Version(name_of(at), at, "backup" if kind == "backup" else "office")


def test_names_are_samba_s_gmt_tokens_in_utc_and_read_back() -> None:
    at = datetime(2026, 7, 1, 1, 30, 5, tzinfo=PARIS)  # summer: UTC+2
    assert name_of(at) == "@GMT-2026.06.30-23.30.05"
    assert taken_at("@GMT-2026.06.30-23.30.05") == at.astimezone(UTC)
    for other in ("@GMT-2026.06.30-23.30", "partage", "@GMT-2026.13.30-23.30.05", ".vues"):
        assert taken_at(other) is None
    with pytest.raises(ValueError, match="timezone"):
        name_of(datetime(2026, 7, 1, 1, 30))


def test_every_version_younger_than_keep_hours_stays_and_older_office_ones_go() -> None:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=PARIS)
    young = [version(t) for t in ("2026-12-04T10:30", "2026-12-05T09:00", "2026-12-06T09:00")]
    old = [version("2026-12-03T18:00"), version("2026-12-04T09:59")]
    gone = expired([*young, *old], now, PARIS, keep_hours=48, keep_nights=3)
    assert [v.name for v in gone] == [v.name for v in old]


def test_the_last_backup_of_each_of_the_last_three_days_having_one_is_kept() -> None:
    now = datetime(2026, 12, 20, 12, 0, tzinfo=PARIS)
    nights = [
        version("2026-12-10T01:30", "backup"),
        version("2026-12-12T01:30", "backup"),
        version("2026-12-12T14:00", "backup"),  # a second backup that day: the day's last
        version("2026-12-15T01:30", "backup"),
        version("2026-12-16T01:30", "backup"),
    ]
    office = version("2026-12-16T09:00")
    gone = expired([*nights, office], now, PARIS, keep_hours=48, keep_nights=3)
    kept = {v.name for v in [*nights, office]} - {v.name for v in gone}
    # Days without a backup take no slot: J, J-1, J-2 are the 16th, 15th and 12th.
    assert kept == {nights[2].name, nights[3].name, nights[4].name}


def test_a_backup_just_after_midnight_belongs_to_the_local_day_not_utc_s() -> None:
    # 00:30 in Paris on the 6th is still the 5th in UTC: it is the 6th's night.
    now = datetime(2026, 12, 9, 12, 0, tzinfo=PARIS)
    fifth = version("2026-12-05T20:00", "backup")
    sixth = version("2026-12-06T00:30", "backup")
    gone = expired([fifth, sixth], now, PARIS, keep_hours=0, keep_nights=1)
    assert [v.name for v in gone] == [fifth.name]


def test_a_version_dated_after_now_is_kept() -> None:
    now = datetime(2026, 12, 6, 10, 0, tzinfo=PARIS)
    future = version("2027-01-01T10:00")
    assert expired([future], now, PARIS, keep_hours=48, keep_nights=0) == ()


def test_for_space_the_oldest_go_first_whatever_their_kind_never_a_held_one() -> None:
    a = version("2026-12-04T01:30", "backup")
    b = version("2026-12-04T09:00")
    c = version("2026-12-05T01:30", "backup")
    assert [v.name for v in by_age([c, b, a], held=set())] == [a.name, b.name, c.name]
    assert [v.name for v in by_age([c, b, a], held={a.name})] == [b.name, c.name]


def test_office_versions_are_due_at_each_slot_of_the_office_hours_only() -> None:
    monday_0905 = datetime(2026, 12, 7, 9, 5, tzinfo=PARIS)
    assert office_due(None, monday_0905, OFFICE)
    taken_0900 = datetime(2026, 12, 7, 9, 0, 30, tzinfo=PARIS)
    assert not office_due(taken_0900, monday_0905, OFFICE)
    assert office_due(taken_0900, monday_0905 + timedelta(hours=1), OFFICE)
    assert not office_due(None, datetime(2026, 12, 7, 19, 0, tzinfo=PARIS), OFFICE)
    assert not office_due(None, datetime(2026, 12, 7, 7, 59, tzinfo=PARIS), OFFICE)
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=PARIS)
    assert not office_due(None, saturday, OFFICE)


def test_the_next_office_slot_skips_the_evening_and_the_week_end() -> None:
    friday_evening = datetime(2026, 12, 4, 18, 30, tzinfo=PARIS)
    assert next_office(friday_evening, OFFICE) == datetime(2026, 12, 7, 8, 0, tzinfo=PARIS)
    assert next_office(datetime(2026, 12, 7, 8, 0, tzinfo=PARIS), OFFICE) == datetime(
        2026, 12, 7, 9, 0, tzinfo=PARIS
    )


def test_office_slots_stay_on_the_wall_clock_across_the_spring_change() -> None:
    # 29 March 2027: the clocks went forward on Sunday 28th; Monday 08:00 is 06:00 UTC.
    sunday = datetime(2027, 3, 28, 12, 0, tzinfo=PARIS)
    monday_8 = next_office(sunday, OFFICE)
    assert monday_8.astimezone(UTC) == datetime(2027, 3, 29, 6, 0, tzinfo=UTC)


def test_an_office_week_without_days_still_wakes_the_loop() -> None:
    none = OfficeHours(frozenset(), 8 * 60, 19 * 60, 60, PARIS)
    now = datetime(2026, 12, 7, 9, 0, tzinfo=PARIS)
    assert next_office(now, none) == now + timedelta(days=8)
    assert not office_due(None, now, none)
