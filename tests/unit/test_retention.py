"""coffre.core.retention: the keep-set (J, J-1, ..., M, M-1, ...) and the calendar slots."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffre.core.model import Archive
from coffre.core.retention import (
    CHECKPOINT,
    FUTURE,
    Kept,
    Plan,
    future_archives,
    plan,
    slot_names,
    slots_present,
)

PARIS = ZoneInfo("Europe/Paris")
UTC_ZONE = ZoneInfo("UTC")


def local(text: str, tz: ZoneInfo = PARIS, *, fold: int = 0) -> datetime:
    """The UTC instant of a local wall time like ``"2026-03-15 02:00"``."""
    wall = datetime.fromisoformat(text).replace(tzinfo=tz, fold=fold)
    return wall.astimezone(UTC)


def arc(text: str, name: str | None = None, *, tz: ZoneInfo = PARIS, fold: int = 0) -> Archive:
    """An archive made at local ``text`` in ``tz``, named like coffre names them."""
    when = local(text, tz, fold=fold)
    return Archive(when, name or f"box-{text.replace(' ', 'T')}", id=f"id{when.timestamp():.0f}")


def utc_arc(text: str, name: str | None = None) -> Archive:
    """An archive made at the UTC instant ``text``."""
    when = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return Archive(when, name or f"box-{text.replace(' ', 'T')}Z")


def run(archives: list[Archive], *, daily: int = 3, monthly: int = 2, tz: ZoneInfo = PARIS) -> Plan:
    return plan(archives, prefix="box", daily=daily, monthly=monthly, tz=tz)


def reasons(p: Plan) -> dict[str, tuple[str, ...]]:
    return {k.archive.name: k.reasons for k in p.keep}


def names(archives: tuple[Archive, ...]) -> list[str]:
    return [a.name for a in archives]


# --- slot_names ----------------------------------------------------------------------


def test_slot_names() -> None:
    assert slot_names(3, 2) == ("J", "J-1", "J-2", "M", "M-1")
    assert slot_names(1, 0) == ("J",)
    assert slot_names(2, 3) == ("J", "J-1", "M", "M-1", "M-2")


@pytest.mark.parametrize(("daily", "monthly"), [(0, 2), (-1, 0), (3, -1)])
def test_counts_out_of_range_are_refused(daily: int, monthly: int) -> None:
    with pytest.raises(ValueError):
        slot_names(daily, monthly)
    with pytest.raises(ValueError):
        plan([], prefix="box", daily=daily, monthly=monthly, tz=PARIS)
    with pytest.raises(ValueError):
        slots_present(
            [], prefix="box", daily=daily, monthly=monthly, now=local("2026-01-01 00:00"), tz=PARIS
        )


# --- plan: examples -----------------------------------------------------------------


def test_empty() -> None:
    assert run([]) == Plan(keep=(), delete=(), ignored=())


def test_a_normal_month() -> None:
    nights = [date(2026, 2, 1) + timedelta(days=k) for k in range(43)]  # 02-01 .. 03-15
    archives = [arc(f"{d} 02:00") for d in nights]
    p = run(archives)
    assert reasons(p) == {
        "box-2026-03-15T02:00": ("J",),
        "box-2026-03-14T02:00": ("J-1",),
        "box-2026-03-13T02:00": ("J-2",),
        "box-2026-03-01T02:00": ("M",),
        "box-2026-02-01T02:00": ("M-1",),
    }
    assert len(p.delete) == 43 - 5
    assert p.ignored == ()
    # Newest first, everywhere.
    assert names(tuple(k.archive for k in p.keep)) == [
        "box-2026-03-15T02:00",
        "box-2026-03-14T02:00",
        "box-2026-03-13T02:00",
        "box-2026-03-01T02:00",
        "box-2026-02-01T02:00",
    ]
    assert list(p.delete) == sorted(p.delete, reverse=True)


def test_days_without_backup_use_no_slot() -> None:
    archives = [arc(f"2026-03-{d:02d} 02:00") for d in (1, 2, 10, 15)]
    assert reasons(run(archives)) == {
        "box-2026-03-15T02:00": ("J",),
        "box-2026-03-10T02:00": ("J-1",),
        "box-2026-03-02T02:00": ("J-2",),
        "box-2026-03-01T02:00": ("M",),
    }


def test_several_a_day_keeps_the_last_of_the_day_and_the_first_of_the_month() -> None:
    archives = [
        arc("2026-03-01 02:00"),
        arc("2026-03-01 09:00"),
        arc("2026-03-01 18:00"),
        arc("2026-03-02 02:00"),
        arc("2026-03-02 12:30"),
        arc("2026-03-03 02:00"),
        arc("2026-03-03 11:00"),
        arc("2026-03-03 16:45"),
    ]
    p = run(archives)
    assert reasons(p) == {
        "box-2026-03-03T16:45": ("J",),
        "box-2026-03-02T12:30": ("J-1",),
        "box-2026-03-01T18:00": ("J-2",),
        "box-2026-03-01T02:00": ("M",),
    }
    assert names(p.delete) == [
        "box-2026-03-03T11:00",
        "box-2026-03-03T02:00",
        "box-2026-03-02T02:00",
        "box-2026-03-01T09:00",
    ]


def test_one_archive_can_carry_several_reasons() -> None:
    p = run([arc("2026-03-31 02:00"), arc("2026-04-01 02:00")])
    assert reasons(p) == {
        "box-2026-04-01T02:00": ("J", "M"),
        "box-2026-03-31T02:00": ("J-1", "M-1"),
    }
    assert p.delete == ()


def test_the_first_of_the_month_and_the_last_of_today_are_both_kept() -> None:
    p = run([arc("2026-04-01 02:00"), arc("2026-04-01 14:00")], monthly=1)
    assert reasons(p) == {"box-2026-04-01T14:00": ("J",), "box-2026-04-01T02:00": ("M",)}


def test_month_ends_are_local() -> None:
    archives = [
        arc("2026-01-05 02:00"),
        arc("2026-01-31 23:30"),
        # 00:30 on 02-01 in Paris is still 01-31 in UTC: February here.
        arc("2026-02-01 00:30"),
        arc("2026-02-01 02:00"),
    ]
    assert archives[2].time.date() == date(2026, 1, 31)
    assert reasons(run(archives)) == {
        "box-2026-02-01T02:00": ("J",),
        "box-2026-02-01T00:30": ("M",),
        "box-2026-01-31T23:30": ("J-1",),
        "box-2026-01-05T02:00": ("J-2", "M-1"),
    }
    # In UTC the 00:30 archive is January's last, and February's first is 02:00.
    p = run(archives, tz=UTC_ZONE)
    assert reasons(p) == {
        "box-2026-02-01T02:00": ("J", "M"),
        "box-2026-02-01T00:30": ("J-1",),
        "box-2026-01-05T02:00": ("J-2", "M-1"),
    }
    assert names(p.delete) == ["box-2026-01-31T23:30"]


def test_a_short_month_and_a_leap_day() -> None:
    archives = [arc(f"2028-02-{d} 02:00") for d in (27, 28, 29)] + [arc("2028-03-01 02:00")]
    assert reasons(run(archives)) == {
        "box-2028-03-01T02:00": ("J", "M"),
        "box-2028-02-29T02:00": ("J-1",),
        "box-2028-02-28T02:00": ("J-2",),
        "box-2028-02-27T02:00": ("M-1",),
    }


def test_the_year_boundary() -> None:
    archives = [
        arc("2025-11-20 02:00"),
        arc("2025-12-01 02:00"),
        arc("2025-12-31 02:00"),
        arc("2025-12-31 23:59"),
        arc("2026-01-01 00:01"),
        arc("2026-01-01 02:00"),
    ]
    assert reasons(run(archives, monthly=3)) == {
        "box-2026-01-01T02:00": ("J",),
        "box-2026-01-01T00:01": ("M",),
        "box-2025-12-31T23:59": ("J-1",),
        "box-2025-12-01T02:00": ("J-2", "M-1"),
        "box-2025-11-20T02:00": ("M-2",),
    }


def test_spring_forward_local_days() -> None:
    # Paris, 2026-03-29: 02:00 CET -> 03:00 CEST (01:00Z).
    archives = [
        utc_arc("2026-03-28 22:30"),  # 23:30 CET on the 28th
        utc_arc("2026-03-28 23:30"),  # 00:30 CET on the 29th
        utc_arc("2026-03-29 00:30"),  # 01:30 CET on the 29th
    ]
    assert reasons(run(archives, monthly=0)) == {
        "box-2026-03-29T00:30Z": ("J",),
        "box-2026-03-28T22:30Z": ("J-1",),
    }
    # UTC sees three archives on two other days.
    assert reasons(run(archives, monthly=0, tz=UTC_ZONE)) == {
        "box-2026-03-29T00:30Z": ("J",),
        "box-2026-03-28T23:30Z": ("J-1",),
    }
    # 03:30 CEST, after the jump, is the same local day again.
    later = [*archives, utc_arc("2026-03-29 01:30")]
    assert reasons(run(later, monthly=0)) == {
        "box-2026-03-29T01:30Z": ("J",),
        "box-2026-03-28T22:30Z": ("J-1",),
    }


def test_fall_back_local_days() -> None:
    # Paris, 2026-10-25: 03:00 CEST -> 02:00 CET (01:00Z); 02:30 happens twice.
    first = arc("2026-10-25 02:30", "box-2026-10-25T02:30:00", fold=0)
    second = arc("2026-10-25 02:30", "box-2026-10-25T02:30:00-2", fold=1)
    assert (first.time, second.time) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    archives = [
        utc_arc("2026-10-24 21:59"),  # 23:59 CEST on the 24th
        utc_arc("2026-10-24 22:30"),  # 00:30 CEST on the 25th
        first,
        second,
    ]
    assert reasons(run(archives, monthly=0)) == {
        "box-2026-10-25T02:30:00-2": ("J",),  # the later instant, same wall time
        "box-2026-10-24T21:59Z": ("J-1",),
    }
    # November's first archive, 00:30 CET, is still October in UTC.
    november = utc_arc("2026-10-31 23:30")
    assert reasons(run([*archives, november], daily=1, monthly=2)) == {
        november.name: ("J", "M"),
        "box-2026-10-24T21:59Z": ("M-1",),
    }


def test_archives_of_others_are_left_alone() -> None:
    theirs = [
        arc("2026-03-16 02:00", "other-2026-03-16"),
        arc("2026-03-16 03:00", "boxer-2026-03-16"),  # "box" does not claim "boxer-..."
        arc("2026-03-16 04:00", "box"),
        arc("2026-03-16 05:00", "box_2026-03-16"),
        arc("2026-03-16 06:00", "Box-2026-03-16"),
        arc("2026-03-01 01:00", "other-2026-03-01.checkpoint"),
    ]
    ours = [arc("2026-03-14 02:00"), arc("2026-03-15 02:00")]
    p = run(ours + theirs)
    assert set(p.ignored) == set(theirs)
    assert list(p.ignored) == sorted(theirs, reverse=True)
    # They neither take a slot nor hide ours.
    assert reasons(p) == {
        "box-2026-03-15T02:00": ("J",),
        "box-2026-03-14T02:00": ("J-1", "M"),
    }
    assert p.delete == ()


def test_prefix_boxer_claims_only_its_own() -> None:
    archives = [arc("2026-03-15 02:00"), arc("2026-03-15 03:00", "boxer-2026-03-15")]
    p = plan(archives, prefix="boxer", daily=1, monthly=0, tz=PARIS)
    assert reasons(p) == {"boxer-2026-03-15": ("J",)}
    assert names(p.ignored) == ["box-2026-03-15T02:00"]


def test_monthly_zero_keeps_no_first_of_month() -> None:
    archives = [arc(f"2026-03-{d:02d} 02:00") for d in range(1, 11)]
    p = run(archives, daily=2, monthly=0)
    assert reasons(p) == {"box-2026-03-10T02:00": ("J",), "box-2026-03-09T02:00": ("J-1",)}
    assert len(p.delete) == 8


def test_more_slots_than_history() -> None:
    archives = [arc("2026-03-15 02:00"), arc("2026-03-15 03:00")]
    assert reasons(run(archives, daily=7, monthly=12)) == {
        "box-2026-03-15T03:00": ("J",),
        "box-2026-03-15T02:00": ("M",),
    }


def test_ties_in_time_are_broken_by_name() -> None:
    at = local("2026-03-15 02:00")
    # The ids run against the names: the name decides, not the id.
    a, b, c = Archive(at, "box-a", "3"), Archive(at, "box-b", "2"), Archive(at, "box-c", "1")
    expected = run([a, b, c], daily=1, monthly=1)
    assert reasons(expected) == {"box-c": ("J",), "box-a": ("M",)}
    assert names(expected.delete) == ["box-b"]
    for order in ([c, b, a], [b, a, c], [b, c, a]):
        assert run(order, daily=1, monthly=1) == expected


# --- plan: checkpoints ------------------------------------------------------------------


def test_a_newer_checkpoint_is_kept_for_resuming() -> None:
    archives = [
        arc("2026-03-14 02:00"),
        arc("2026-03-15 02:00"),
        arc("2026-03-15 12:00", "box-2026-03-15T12:00.checkpoint"),
        arc("2026-03-16 02:00", "box-2026-03-16T02:00.checkpoint"),
        arc("2026-03-16 03:00", "box-2026-03-16T02:00.checkpoint.1"),
    ]
    p = run(archives, monthly=0)
    assert reasons(p) == {
        "box-2026-03-16T02:00.checkpoint.1": ("checkpoint",),
        "box-2026-03-15T02:00": ("J",),
        "box-2026-03-14T02:00": ("J-1",),
    }
    assert names(p.delete) == [
        "box-2026-03-16T02:00.checkpoint",
        "box-2026-03-15T12:00.checkpoint",
    ]


def test_a_checkpoint_older_than_a_complete_archive_goes() -> None:
    archives = [
        arc("2026-03-15 01:00", "box-2026-03-15T01:00.checkpoint"),
        arc("2026-03-15 02:00"),
    ]
    p = run(archives)
    assert reasons(p) == {"box-2026-03-15T02:00": ("J", "M")}
    assert names(p.delete) == ["box-2026-03-15T01:00.checkpoint"]


def test_a_checkpoint_as_old_as_the_newest_archive_goes() -> None:
    at = local("2026-03-15 02:00")
    archives = [Archive(at, "box-x"), Archive(at, "box-x.checkpoint")]
    assert names(run(archives).delete) == ["box-x.checkpoint"]


def test_a_checkpoint_is_never_a_restore_point() -> None:
    # The first upload was cut twice: no complete archive yet.
    archives = [
        arc("2026-03-01 02:00", "box-2026-03-01T02:00.checkpoint"),
        arc("2026-03-02 02:00", "box-2026-03-02T02:00.checkpoint"),
    ]
    p = run(archives)
    assert reasons(p) == {"box-2026-03-02T02:00.checkpoint": ("checkpoint",)}
    assert names(p.delete) == ["box-2026-03-01T02:00.checkpoint"]
    # A day with only a checkpoint is not a day with a backup.
    with_backup = [arc("2026-02-27 02:00"), *archives]
    assert reasons(run(with_backup)) == {
        "box-2026-03-02T02:00.checkpoint": ("checkpoint",),
        "box-2026-02-27T02:00": ("J", "M"),
    }


def test_a_name_merely_containing_checkpoint_is_a_complete_archive() -> None:
    archives = [
        arc("2026-03-15 02:00", "box-checkpoint"),
        arc("2026-03-15 03:00", "box-.checkpointx"),
    ]
    assert not any(a.is_checkpoint for a in archives)
    assert reasons(run(archives, monthly=0)) == {"box-.checkpointx": ("J",)}


# --- plan: the future set aside -----------------------------------------------------------


def test_the_issue_example_a_2030_archive_pushes_out_nothing() -> None:
    # Issue 12: nightly archives Oct 1 - Dec 5 plus one dated 2030-01-01. Without
    # "now" the 2030 archive is J and M and the real J-2 (Dec 3) and M-1 (Nov 1) go.
    nights = [date(2025, 10, 1) + timedelta(days=k) for k in range(66)]  # 10-01 .. 12-05
    real = [arc(f"{d} 02:00") for d in nights]
    forged = arc("2030-01-01 02:00")
    blind = run([*real, forged])
    assert {"box-2025-12-03T02:00", "box-2025-11-01T02:00"} <= set(names(blind.delete))

    p = plan(
        [*real, forged], prefix="box", daily=3, monthly=2, tz=PARIS, now=local("2025-12-05 21:00")
    )
    assert reasons(p) == {
        "box-2030-01-01T02:00": (FUTURE,),
        "box-2025-12-05T02:00": ("J",),
        "box-2025-12-04T02:00": ("J-1",),
        "box-2025-12-03T02:00": ("J-2",),
        "box-2025-12-01T02:00": ("M",),
        "box-2025-11-01T02:00": ("M-1",),
    }
    assert len(p.delete) == 66 - 5
    assert forged not in p.delete


def plan_at(
    archives: list[Archive], now: datetime, tolerance: timedelta = timedelta(0), **policy: int
) -> Plan:
    counts = {"daily": 3, "monthly": 2, **policy}
    return plan(archives, prefix="box", tz=PARIS, now=now, future_tolerance=tolerance, **counts)


def test_the_tolerance_is_inclusive_and_only_ours_are_future() -> None:
    now = local("2026-03-15 10:00")
    archives = [
        arc("2026-03-14 02:00"),
        Archive(now + timedelta(minutes=60), "box-at-the-edge"),
        Archive(now + timedelta(minutes=60, seconds=1), "box-past-the-edge"),
        Archive(now + timedelta(days=400), "other-far-ahead"),
    ]
    p = plan_at(archives, now, timedelta(minutes=60), monthly=0)
    assert reasons(p) == {
        "box-past-the-edge": (FUTURE,),
        "box-at-the-edge": ("J",),
        "box-2026-03-14T02:00": ("J-1",),
    }
    assert names(p.ignored) == ["other-far-ahead"]
    # No tolerance: an archive one second ahead of now is already future.
    p = plan_at(archives, now, monthly=0)
    assert reasons(p)["box-at-the-edge"] == (FUTURE,)


def test_a_future_checkpoint_is_set_aside_and_does_not_hide_the_real_one() -> None:
    now = local("2026-03-16 10:00")
    archives = [
        arc("2026-03-15 02:00"),
        arc("2026-03-16 02:00", "box-2026-03-16T02:00.checkpoint"),
        arc("2027-01-01 02:00", "box-2027-01-01T02:00.checkpoint"),
        arc("2027-01-02 02:00"),
    ]
    p = plan_at(archives, now, monthly=0)
    assert reasons(p) == {
        "box-2027-01-02T02:00": (FUTURE,),
        "box-2027-01-01T02:00.checkpoint": (FUTURE,),
        "box-2026-03-16T02:00.checkpoint": (CHECKPOINT,),
        "box-2026-03-15T02:00": ("J",),
    }
    assert p.delete == ()


def test_without_now_the_future_is_ranked_as_before() -> None:
    archives = [arc("2026-03-15 02:00"), arc("2030-01-01 02:00")]
    assert reasons(run(archives, daily=1, monthly=1)) == {"box-2030-01-01T02:00": ("J", "M")}


def test_a_negative_tolerance_and_a_naive_now_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        plan_at([], local("2026-03-15 10:00"), timedelta(seconds=-1))
    with pytest.raises(ValueError, match="aware"):
        plan_at([], datetime(2026, 3, 15, 10, 0))


def test_future_archives_lists_ours_newest_first() -> None:
    now = local("2026-03-15 10:00")
    archives = [arc("2026-03-20 02:00"), arc("2026-04-01 02:00"), arc("2026-03-14 02:00")]
    found = future_archives(
        [*archives, arc("2031-01-01 02:00", "other-x")],
        prefix="box",
        now=now,
        tolerance=timedelta(0),
    )
    assert names(found) == ["box-2026-04-01T02:00", "box-2026-03-20T02:00"]
    assert future_archives(archives, prefix="box", now=None, tolerance=timedelta(0)) == ()


# --- plan: refusals -----------------------------------------------------------------------


def test_a_duplicate_name_is_refused() -> None:
    # Deleting is by name: a duplicate could take a kept archive with it.
    archives = [arc("2026-03-15 02:00", "box-x"), arc("2026-03-16 02:00", "box-x")]
    with pytest.raises(ValueError, match="twice"):
        run(archives)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        run([Archive(datetime(2026, 3, 15, 2, 0), "box-x")])


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        plan([], prefix="", daily=3, monthly=2, tz=PARIS)


# --- slots_present ------------------------------------------------------------------------


def present(archives: list[Archive], now: datetime, tz: ZoneInfo = PARIS) -> list[str]:
    slots = slots_present(archives, prefix="box", daily=3, monthly=2, now=now, tz=tz)
    assert list(slots) == list(slot_names(3, 2))
    return [name for name, ok in slots.items() if ok]


def test_slots_on_new_years_day() -> None:
    archives = [
        arc("2025-11-30 02:00"),
        arc("2025-12-30 02:00"),  # nothing on the 31st
        arc("2026-01-01 00:30"),
    ]
    assert present(archives, local("2026-01-01 10:00")) == ["J", "J-2", "M", "M-1"]
    # The day before: the 30th is J-1, December is M, November M-1.
    assert present(archives[:2], local("2025-12-31 10:00")) == ["J-1", "M", "M-1"]
    # On 01-02 with nothing since: January (M) and December (M-1) are there, J is not.
    assert present(archives, local("2026-01-02 10:00")) == ["J-1", "M", "M-1"]


def test_slots_are_calendar_slots_not_ranks() -> None:
    archives = [arc("2026-03-10 02:00"), arc("2026-03-12 02:00")]
    # plan() calls these J and J-1; by the calendar of the 16th neither is recent.
    assert present(archives, local("2026-03-16 10:00")) == ["M"]
    assert present(archives, local("2026-03-14 10:00")) == ["J-2", "M"]
    assert present(archives, local("2026-03-12 23:59")) == ["J", "J-2", "M"]


def test_slots_on_the_first_of_the_month() -> None:
    archives = [arc("2026-02-27 02:00"), arc("2026-02-28 02:00")]
    assert present(archives, local("2026-03-01 01:00")) == ["J-1", "J-2", "M-1"]


def test_slots_around_spring_forward() -> None:
    archives = [utc_arc("2026-03-28 23:30")]  # 00:30 CET on the 29th
    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert present(archives, now) == ["J", "M"]
    assert present(archives, now, tz=UTC_ZONE) == ["J-1", "M"]


def test_slots_around_fall_back() -> None:
    archives = [utc_arc("2026-10-25 01:30")]  # the second 02:30, CET
    assert present(archives, datetime(2026, 10, 25, 22, 59, tzinfo=UTC)) == ["J", "M"]
    # 23:00Z is 00:00 CET on the 26th.
    assert present(archives, datetime(2026, 10, 25, 23, 0, tzinfo=UTC)) == ["J-1", "M"]


def test_slots_count_only_our_complete_archives() -> None:
    now = local("2026-03-15 10:00")
    archives = [
        arc("2026-03-15 02:00", "box-2026-03-15.checkpoint"),
        arc("2026-03-15 03:00", "other-2026-03-15"),
        arc("2026-03-15 04:00", "boxer-2026-03-15"),
    ]
    assert present(archives, now) == []
    # Tomorrow's archive (a clock ahead) is no day slot, but it is in this month.
    assert present([*archives, arc("2026-03-16 02:00")], now) == ["M"]


def test_slots_without_monthly() -> None:
    slots = slots_present(
        [arc("2026-03-15 02:00")],
        prefix="box",
        daily=1,
        monthly=0,
        now=local("2026-03-15 10:00"),
        tz=PARIS,
    )
    assert slots == {"J": True}


def test_slots_refuse_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        slots_present([], prefix="box", daily=3, monthly=2, now=datetime(2026, 1, 1), tz=PARIS)


# --- properties ------------------------------------------------------------------------------

# The zones of the brief, plus two whose clock changes sit at the edges of the day.
ZONES = [
    "Europe/Paris",
    "UTC",
    "America/New_York",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Nuuk",
]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 3 * 366
# Seconds of the day that sit on UTC hour and local-midnight boundaries, so
# ties in time and DST edges come up often.
EDGE_SECONDS = [0, 1, 1800, 3599, 3600, 5400, 7200, 37800, 79200, 81000, 82800, 84600, 86399]
PREFIX = "box"


# Days that see clock changes, month and year ends in these zones: archives
# pile up on them, so several a day, ties and DST edges come up often.
BUSY_DAYS = [
    (date.fromisoformat(d) - BASE.date()).days
    for d in (
        "2024-03-31",
        "2024-04-01",
        "2024-10-27",
        "2024-12-31",
        "2025-01-01",
        "2025-03-09",
        "2025-03-30",
        "2025-04-06",
        "2025-09-07",
        "2025-09-28",
        "2025-10-26",
        "2026-02-28",
        "2026-03-01",
    )
]
# How an archive is named: ours, our checkpoint (both spellings), or someone else's.
NAME_FORMS = [f"{PREFIX}-{{}}"] * 6 + [
    f"{PREFIX}-{{}}.checkpoint",
    f"{PREFIX}-{{}}.checkpoint.1",
    "boxer-{}",
    "other-{}",
    "box_{}",
    "Box-{}",
]

archive_parts = st.tuples(
    st.one_of(st.sampled_from(BUSY_DAYS), st.integers(0, HISTORY_DAYS)),
    st.one_of(st.sampled_from(EDGE_SECONDS), st.integers(0, 86399)),
    st.sampled_from(NAME_FORMS),
    # A random tag makes name order differ from time order (ties are broken by name).
    st.sampled_from("abcxyz"),
    st.sampled_from(["", "1a", "2b"]),
)


def histories(salt: str = "") -> st.SearchStrategy[list[Archive]]:
    """A repository's archive lists: ours, our checkpoints, and others', several a day.

    Names are unique within a list; ``salt`` makes them unique across lists.
    """

    def build(parts: list[tuple[int, int, str, str, str]]) -> list[Archive]:
        return [
            Archive(
                BASE + timedelta(days=day, seconds=second),
                form.format(f"{salt}{tag}{i}"),
                id=archive_id,
            )
            for i, (day, second, form, tag, archive_id) in enumerate(parts)
        ]

    sizes = st.integers(0, 30)
    return sizes.flatmap(lambda n: st.lists(archive_parts, min_size=n, max_size=n)).map(build)


@dataclass(frozen=True)
class Policy:
    daily: int
    monthly: int
    tz: ZoneInfo


policies = st.builds(
    Policy,
    daily=st.integers(1, 5),
    monthly=st.integers(0, 4),
    tz=st.sampled_from(ZONES).map(ZoneInfo),
)
PROPERTY = settings(max_examples=150, deadline=None)


def order(a: Archive) -> tuple[datetime, str, str]:
    return (a.time, a.name, a.id)


class Oracle:
    """The policy restated the slow and obvious way, to check plan() against."""

    def __init__(self, archives: list[Archive], daily: int, monthly: int, tz: ZoneInfo) -> None:
        self.ours = [a for a in archives if a.name.startswith(PREFIX + "-")]
        self.complete = [a for a in self.ours if not a.is_checkpoint]
        self.checkpoints = [a for a in self.ours if a.is_checkpoint]
        self.tz = tz
        self.days = sorted({self.day(a) for a in self.complete}, reverse=True)
        self.months = sorted({self.month(a) for a in self.complete}, reverse=True)
        self.top_days = self.days[:daily]
        self.top_months = self.months[:monthly]

    def day(self, a: Archive) -> date:
        return a.time.astimezone(self.tz).date()

    def month(self, a: Archive) -> tuple[int, int]:
        local = a.time.astimezone(self.tz)
        return (local.year, local.month)

    def last_of_day(self, d: date) -> Archive:
        return max((a for a in self.complete if self.day(a) == d), key=order)

    def first_of_month(self, m: tuple[int, int]) -> Archive:
        return min((a for a in self.complete if self.month(a) == m), key=order)

    def checkpoint_kept(self) -> Archive | None:
        if not self.checkpoints:
            return None
        newest = max(self.checkpoints, key=order)
        if self.complete and newest.time <= max(a.time for a in self.complete):
            return None
        return newest


def run_policy(archives: list[Archive], policy: Policy) -> Plan:
    return plan(archives, prefix=PREFIX, daily=policy.daily, monthly=policy.monthly, tz=policy.tz)


def kept_archives(p: Plan) -> list[Archive]:
    return [k.archive for k in p.keep]


@PROPERTY
@given(archives=histories(), policy=policies, seed=st.integers(0, 2**32 - 1))
def test_plan_partitions_the_archives(archives: list[Archive], policy: Policy, seed: int) -> None:
    p = run_policy(archives, policy)
    out = kept_archives(p) + list(p.delete) + list(p.ignored)
    assert Counter(out) == Counter(archives)
    assert len(out) == len(archives)
    # Theirs are exactly the ignored; none is ever kept or deleted.
    theirs = {a for a in archives if not a.name.startswith(PREFIX + "-")}
    assert set(p.ignored) == theirs
    assert not theirs & (set(p.delete) | set(kept_archives(p)))
    # Newest first, each list.
    for listed in (kept_archives(p), list(p.delete), list(p.ignored)):
        assert listed == sorted(listed, key=order, reverse=True)
    # Deterministic: the order of borg's list does not matter.
    shuffled = list(archives)
    random.Random(seed).shuffle(shuffled)
    assert run_policy(shuffled, policy) == p
    check_policy(archives, policy, p)


def check_policy(archives: list[Archive], policy: Policy, p: Plan) -> None:
    """Check ``p`` against the policy restated by :class:`Oracle`."""
    daily, monthly = policy.daily, policy.monthly
    oracle = Oracle(archives, daily, monthly, policy.tz)

    by_reason: dict[str, Archive] = {}
    for kept in p.keep:
        assert kept.reasons, "every kept archive says why"
        assert len(kept.reasons) == len(set(kept.reasons))
        for reason in kept.reasons:
            assert reason not in by_reason, "each slot is filled once"
            by_reason[reason] = kept.archive

    # Daily: one per day, the latest of its day, on the newest days, ranked.
    daily_kept = [by_reason[r] for r in slot_names(daily, 0) if r in by_reason]
    assert len({oracle.day(a) for a in daily_kept}) == min(daily, len(oracle.days))
    assert len(daily_kept) == len(oracle.top_days)
    for rank, (a, d) in enumerate(zip(daily_kept, oracle.top_days, strict=True)):
        assert oracle.day(a) == d
        assert a == oracle.last_of_day(d)
        assert by_reason["J" if rank == 0 else f"J-{rank}"] == a

    # Monthly: the first of its month, on the newest months, ranked.
    monthly_kept = [by_reason[r] for r in slot_names(1, monthly)[1:] if r in by_reason]
    assert len(monthly_kept) == min(monthly, len(oracle.months))
    for rank, (a, m) in enumerate(zip(monthly_kept, oracle.top_months, strict=True)):
        assert oracle.month(a) == m
        assert a == oracle.first_of_month(m)
        assert by_reason["M" if rank == 0 else f"M-{rank}"] == a

    # Checkpoint: the newest, only if newer than every complete archive.
    assert by_reason.get("checkpoint") == oracle.checkpoint_kept()
    assert set(by_reason) <= {*slot_names(daily, monthly), "checkpoint"}

    # Deleted: ours, and neither a daily, a monthly, nor the resumable checkpoint.
    for a in p.delete:
        assert a.name.startswith(PREFIX + "-")
        assert a not in {oracle.last_of_day(d) for d in oracle.top_days}
        assert a not in {oracle.first_of_month(m) for m in oracle.top_months}
        assert a != oracle.checkpoint_kept()


@PROPERTY
@given(archives=histories(), policy=policies, data=st.data())
def test_plan_is_idempotent(archives: list[Archive], policy: Policy, data: st.DataObject) -> None:
    # Once deleted, the next prune over what is left keeps everything, for the same reasons.
    p = run_policy(archives, policy)
    again = run_policy(kept_archives(p) + list(p.ignored), policy)
    assert again.delete == ()
    assert again.keep == p.keep
    assert again.ignored == p.ignored
    # Any part of the deletions done (a cut mid-`borg delete`) changes nothing kept.
    done = data.draw(st.sets(st.sampled_from(p.delete)) if p.delete else st.just(set[Archive]()))
    partly = run_policy([a for a in archives if a not in done], policy)
    assert partly.keep == p.keep
    assert set(partly.delete) == set(p.delete) - done


@PROPERTY
@given(archives=histories(), policy=policies, extra=histories(salt="new"), newer=st.booleans())
def test_a_new_archive_never_brings_a_deleted_one_back(
    archives: list[Archive], policy: Policy, extra: list[Archive], newer: bool
) -> None:
    # Adding archives (any time, any kind, in particular newer ones) only ever
    # adds to what is deleted: a keep set is never revived by more history.
    # (What gets *kept* does change: yesterday's J becomes J-1, J-2 falls out.)
    p = run_policy(archives, policy)
    if newer and archives:
        shift = max(a.time for a in archives) - BASE + timedelta(seconds=1)
        extra = [Archive(a.time + shift, a.name, a.id) for a in extra]
    bigger = run_policy(archives + extra, policy)
    assert set(p.delete) <= set(bigger.delete)
    # And each kept archive of the bigger history was kept before, or is new.
    assert set(kept_archives(bigger)) <= set(kept_archives(p)) | set(extra)


@PROPERTY
@given(
    archives=histories(),
    policy=policies,
    after=st.one_of(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100)),
    ),
)
def test_slots_present_follow_the_calendar(
    archives: list[Archive], policy: Policy, after: timedelta
) -> None:
    daily, monthly, tz = policy.daily, policy.monthly, policy.tz
    newest = max((a.time for a in archives), default=BASE)
    now = newest + after
    slots = slots_present(archives, prefix=PREFIX, daily=daily, monthly=monthly, now=now, tz=tz)
    assert tuple(slots) == slot_names(daily, monthly)

    oracle = Oracle(archives, daily, monthly, tz)
    today = now.astimezone(tz).date()
    for k in range(daily):
        assert slots["J" if k == 0 else f"J-{k}"] == (today - timedelta(days=k) in oracle.days)
    y, m = today.year, today.month
    for k in range(monthly):
        assert slots["M" if k == 0 else f"M-{k}"] == ((y, m) in oracle.months)
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)

    # A slot shown present is a restore point the plan keeps, on that day or month.
    p = run_policy(archives, policy)
    # (now is after every archive, so no archive is on a later local date:
    # these zones never set their clocks back across midnight.)
    assert not oracle.days or oracle.days[0] <= today
    kept_days = {oracle.day(k.archive) for k in p.keep if any(r[0] == "J" for r in k.reasons)}
    kept_months = {oracle.month(k.archive) for k in p.keep if any(r[0] == "M" for r in k.reasons)}
    for k in range(daily):
        if slots["J" if k == 0 else f"J-{k}"]:
            assert today - timedelta(days=k) in kept_days
    y, m = today.year, today.month
    for k in range(monthly):
        if slots["M" if k == 0 else f"M-{k}"]:
            assert (y, m) in kept_months
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)


# --- properties: the future never pushes out the past -------------------------------------

nows = st.integers(0, (HISTORY_DAYS + 30) * 86400).map(lambda s: BASE + timedelta(seconds=s))
tolerances = st.one_of(
    st.just(timedelta(0)),
    st.sampled_from([timedelta(seconds=1), timedelta(minutes=60)]),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)


def plan_now(archives: list[Archive], policy: Policy, now: datetime, tolerance: timedelta) -> Plan:
    return plan(
        archives,
        prefix=PREFIX,
        daily=policy.daily,
        monthly=policy.monthly,
        tz=policy.tz,
        now=now,
        future_tolerance=tolerance,
    )


def is_future(a: Archive, now: datetime, tolerance: timedelta) -> bool:
    return a.name.startswith(PREFIX + "-") and a.time > now + tolerance


@PROPERTY
@given(archives=histories(), policy=policies, now=nows, tolerance=tolerances)
def test_with_now_the_past_is_planned_alone_and_the_future_kept(
    archives: list[Archive], policy: Policy, now: datetime, tolerance: timedelta
) -> None:
    # The plan with "now" is the plan (without now) of the archives up to
    # now + tolerance, plus each of ours beyond it kept for the single reason "future".
    p = plan_now(archives, policy, now, tolerance)
    future = [a for a in archives if is_future(a, now, tolerance)]
    past = run_policy([a for a in archives if a not in future], policy)
    assert p.delete == past.delete
    assert p.ignored == past.ignored
    expected = [*past.keep, *(Kept(a, (FUTURE,)) for a in future)]
    assert p.keep == tuple(sorted(expected, key=lambda k: order(k.archive), reverse=True))
    # So the policy holds over the past, checked by the oracle.
    check_policy([a for a in archives if a not in future], policy, past)


@PROPERTY
@given(
    archives=histories(),
    policy=policies,
    now=nows,
    tolerance=tolerances,
    extra=histories(salt="new"),
    ahead=st.one_of(
        st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=2)),
        st.timedeltas(min_value=timedelta(days=2), max_value=timedelta(days=20 * 366)),
    ),
)
def test_archives_in_the_future_change_nothing_for_the_others(
    archives: list[Archive],
    policy: Policy,
    now: datetime,
    tolerance: timedelta,
    extra: list[Archive],
    ahead: timedelta,
) -> None:
    # Any number of archives, at any times after now + tolerance (ours, our
    # checkpoints, others'), never change what is kept (and why) or deleted
    # among the archives already there.
    horizon = now + tolerance
    first = min((a.time for a in extra), default=BASE)
    extra = [Archive(horizon + ahead + (a.time - first), a.name, a.id) for a in extra]
    p = plan_now(archives, policy, now, tolerance)
    bigger = plan_now(archives + extra, policy, now, tolerance)

    assert bigger.delete == p.delete
    assert [k for k in bigger.keep if k.archive not in extra] == list(p.keep)
    ours = [a for a in extra if a.name.startswith(PREFIX + "-")]
    assert {k.archive: k.reasons for k in bigger.keep if k.archive in extra} == {
        a: (FUTURE,) for a in ours
    }
    assert set(bigger.ignored) == set(p.ignored) | (set(extra) - set(ours))


@PROPERTY
@given(archives=histories(), policy=policies, now=nows, tolerance=tolerances, data=st.data())
def test_plan_with_now_is_idempotent(
    archives: list[Archive],
    policy: Policy,
    now: datetime,
    tolerance: timedelta,
    data: st.DataObject,
) -> None:
    p = plan_now(archives, policy, now, tolerance)
    again = plan_now(kept_archives(p) + list(p.ignored), policy, now, tolerance)
    assert again.delete == ()
    assert again.keep == p.keep
    done = data.draw(st.sets(st.sampled_from(p.delete)) if p.delete else st.just(set[Archive]()))
    partly = plan_now([a for a in archives if a not in done], policy, now, tolerance)
    assert partly.keep == p.keep
    assert set(partly.delete) == set(p.delete) - done
