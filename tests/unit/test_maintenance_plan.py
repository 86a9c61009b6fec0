"""The maintenance scheduler: when checks and drills may start, what is due, in what order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from coffre.core.config_types import LocalTarget, OffsiteTarget, UploadWindow
from coffre.core.upload_window import parse_days
from coffre.proof.maintenance_plan import (
    CheckKind,
    MaintenancePolicy,
    Nightly,
    Site,
    Work,
    plan,
    sites_of,
    start_allowed,
)

PARIS = ZoneInfo("Europe/Paris")
NIGHTLY = Nightly(time(1, 30), PARIS)
POLICY = MaintenancePolicy()
LOCAL = Site("local")
HDS = Site("hds", offsite=True)


@dataclass(frozen=True)
class Attempt:
    at: datetime
    ok: bool = True
    complete: bool = True


@dataclass(frozen=True)
class DrillDone:
    at: datetime
    outcome: str = "ok"


@dataclass
class Ledgers:
    """Fakes of the check and drill ledgers: what was attempted, and succeeded, when."""

    attempts: dict[tuple[str, CheckKind], Attempt] = field(default_factory=dict)
    successes: dict[tuple[str, CheckKind], datetime] = field(default_factory=dict)
    drills: dict[str, DrillDone] = field(default_factory=dict)

    def last_attempt(self, target: str, kind: CheckKind) -> Attempt | None:
        return self.attempts.get((target, kind))

    def last_success(self, target: str, kind: CheckKind) -> datetime | None:
        return self.successes.get((target, kind))

    def last(self, target: str) -> DrillDone | None:
        return self.drills.get(target)

    def checked(self, target: str, kind: CheckKind, at: datetime, **how: bool) -> None:
        attempt = Attempt(at, **how)
        self.attempts[(target, kind)] = attempt
        if attempt.ok and attempt.complete:
            self.successes[(target, kind)] = at

    def all_done(self, target: str, at: datetime) -> None:
        kinds: tuple[CheckKind, ...] = ("repository", "archives", "data")
        for kind in kinds:
            self.checked(target, kind, at)
        self.drills[target] = DrillDone(at)


def paris(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def window(days: str, start: str, end: str, limit: int = 500) -> UploadWindow:
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return UploadWindow(parse_days(days), h1 * 60 + m1, h2 * 60 + m2, limit)


def kinds(works: tuple[Work, ...], target: str) -> list[str]:
    return [w.kind for w in works if w.target == target]


# --- what is due, in what order ------------------------------------------------------


def test_a_new_box_owes_every_kind_local_first_by_kind_rank() -> None:
    now = paris(2026, 6, 10, 14, 0)
    got = plan(now, POLICY, (LOCAL, HDS), Ledgers(), Ledgers(), NIGHTLY)
    assert [(w.target, w.kind) for w in got.due] == [
        ("local", "repository"),
        ("hds", "archives"),
        ("local", "archives"),
        ("hds", "drill"),
        ("local", "drill"),
        ("local", "data"),
    ]
    assert got.next is not None and got.next.at == now


def test_offsite_gets_no_repository_nor_data_check_the_host_does() -> None:
    got = plan(paris(2026, 6, 10, 14, 0), POLICY, (HDS,), Ledgers(), Ledgers(), NIGHTLY)
    assert kinds(got.due, "hds") == ["archives", "drill"]


def test_a_box_off_for_a_month_owes_one_of_each_not_a_storm() -> None:
    ledgers = Ledgers()
    ledgers.all_done("local", paris(2026, 5, 1, 14, 0))
    now = paris(2026, 6, 20, 14, 0)  # seven weekly archives checks were missed
    got = plan(now, POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert kinds(got.due, "local") == ["repository", "archives", "drill", "data"]
    # Once each is done, none is due again that day.
    ledgers.all_done("local", now)
    later = plan(now + timedelta(hours=1), POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert later.due == ()


def test_the_longest_overdue_of_a_kind_goes_first() -> None:
    ledgers = Ledgers()
    ledgers.all_done("a", paris(2026, 6, 1, 14, 0))
    ledgers.all_done("b", paris(2026, 5, 1, 14, 0))
    got = plan(paris(2026, 7, 15, 14, 0), POLICY, (Site("a"), Site("b")), ledgers, ledgers, NIGHTLY)
    assert [(w.kind, w.target) for w in got.due][:2] == [("repository", "b"), ("repository", "a")]


def test_a_check_done_is_due_again_after_its_period() -> None:
    ledgers = Ledgers()
    done = paris(2026, 6, 10, 14, 0)
    ledgers.all_done("local", done)
    got = plan(done + timedelta(days=3), POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert got.due == ()
    archives = next(p for p in got.upcoming if p.work.kind == "archives")
    assert archives.at == done + timedelta(days=7)
    data = next(p for p in got.upcoming if p.work.kind == "data")
    assert data.at == done + timedelta(days=30)
    assert got.wake == done + timedelta(days=3) + POLICY.longest_sleep


def test_a_rolling_pass_under_way_gets_a_slice_a_day() -> None:
    ledgers = Ledgers()
    ledgers.all_done("local", paris(2026, 6, 1, 14, 0))
    sliced = paris(2026, 6, 9, 14, 0)
    ledgers.checked("local", "repository", sliced, complete=False)
    got = plan(sliced + timedelta(hours=5), POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert "repository" not in kinds(got.due, "local")
    slice_ = next(p for p in got.upcoming if p.work.kind == "repository")
    assert slice_.at == sliced + timedelta(days=1)
    again = plan(sliced + timedelta(days=1), POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert kinds(again.due, "local")[0] == "repository"


def test_a_failed_check_or_drill_is_tried_again_the_next_day_not_at_once() -> None:
    ledgers = Ledgers()
    ledgers.all_done("local", paris(2026, 6, 8, 14, 0))
    failed = paris(2026, 6, 10, 14, 0)
    ledgers.checked("local", "archives", failed, ok=False)
    ledgers.drills["local"] = DrillDone(failed, "mismatch")
    soon = plan(failed + timedelta(hours=2), POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert soon.due == ()
    retried = plan(failed + timedelta(days=1), POLICY, (LOCAL,), ledgers, ledgers, NIGHTLY)
    assert kinds(retried.due, "local") == ["archives", "drill"]


# --- the nightly's quiet time ---------------------------------------------------------


def test_nothing_starts_within_the_margin_before_the_nightly() -> None:
    now = paris(2026, 6, 10, 23, 45)  # 1 h 45 before 01:30
    got = plan(now, POLICY, (LOCAL,), Ledgers(), Ledgers(), NIGHTLY)
    assert got.due == ()
    assert got.next is not None and got.next.at == paris(2026, 6, 11, 1, 40)
    assert got.wake == paris(2026, 6, 11, 1, 40)


def test_just_outside_the_margin_maintenance_starts_with_a_slice_ending_before_it() -> None:
    now = paris(2026, 6, 10, 23, 0)  # 2 h 30 before the nightly: 30 min until the margin
    got = plan(now, POLICY, (LOCAL,), Ledgers(), Ledgers(), NIGHTLY)
    repository = next(w for w in got.due if w.kind == "repository")
    assert repository.budget == 1800
    # The others run to their end (the nightly stops them if it must).
    assert [w.budget for w in got.due if w.kind != "repository"] == [None, None, None]


def test_a_slice_in_the_afternoon_takes_its_whole_budget() -> None:
    got = plan(paris(2026, 6, 10, 14, 0), POLICY, (LOCAL,), Ledgers(), Ledgers(), NIGHTLY)
    assert got.due[0].budget == POLICY.repository_budget


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        # Spring forward: 02:30 does not exist on 2026-03-29; the run is at 01:30Z (03:30 CEST).
        (datetime(2026, 3, 28, 23, 29, tzinfo=UTC), datetime(2026, 3, 28, 23, 29, tzinfo=UTC)),
        (datetime(2026, 3, 28, 23, 31, tzinfo=UTC), datetime(2026, 3, 29, 1, 40, tzinfo=UTC)),
        # Fall back: 02:30 happens twice on 2026-10-25; the run is the first, 00:30Z.
        (datetime(2026, 10, 24, 22, 31, tzinfo=UTC), datetime(2026, 10, 25, 0, 40, tzinfo=UTC)),
        # The second 02:30 (01:30Z) is no nightly: maintenance may start.
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    ],
)
def test_dst_nights_keep_the_margin_around_the_one_nightly(
    now: datetime, allowed: datetime
) -> None:
    nightly = Nightly(time(2, 30), PARIS)
    assert start_allowed(now, LOCAL, nightly, POLICY) == allowed


def test_another_timezone_and_an_evening_nightly() -> None:
    york = ZoneInfo("America/New_York")
    nightly = Nightly(time(23, 0), york)
    at = datetime(2026, 1, 15, 21, 30, tzinfo=york)  # 1 h 30 before 23:00 EST
    assert start_allowed(at, LOCAL, nightly, POLICY) == datetime(
        2026, 1, 15, 23, 10, tzinfo=york
    ).astimezone(UTC)
    free = datetime(2026, 1, 15, 20, 59, tzinfo=york)
    assert start_allowed(free, LOCAL, nightly, POLICY) == free


# --- offsite: the uplink ---------------------------------------------------------------


def test_offsite_work_waits_for_the_end_of_the_office_window() -> None:
    hds = Site("hds", True, (window("mon-fri", "08:00", "19:00"),))
    now = paris(2026, 6, 10, 14, 0)  # a Wednesday
    got = plan(now, POLICY, (LOCAL, hds), Ledgers(), Ledgers(), NIGHTLY)
    assert kinds(got.due, "hds") == []
    assert kinds(got.due, "local") == ["repository", "archives", "drill", "data"]
    archives = next(p for p in got.upcoming if p.work == Work("hds", "archives"))
    assert archives.at == paris(2026, 6, 10, 19, 0)


def test_a_window_crossing_midnight_holds_offsite_work_until_it_closes() -> None:
    hds = Site("hds", True, (window("all", "22:00", "06:00"),))
    nightly = Nightly(time(13, 0), PARIS)
    at = paris(2026, 6, 12, 23, 0)  # Friday night, in the window begun at 22:00
    assert start_allowed(at, hds, nightly, POLICY) == paris(2026, 6, 13, 6, 0)
    early = paris(2026, 6, 13, 3, 0)  # the morning part of the same window
    assert start_allowed(early, hds, nightly, POLICY) == paris(2026, 6, 13, 6, 0)
    assert start_allowed(early, LOCAL, nightly, POLICY) == early  # local work: no uplink


def test_a_window_ending_in_the_nightly_margin_waits_for_the_nightly_too() -> None:
    hds = Site("hds", True, (window("all", "08:00", "00:30"),))
    at = paris(2026, 6, 10, 14, 0)
    # The window closes at 00:30, inside the margin of the 01:30 nightly: after it, 01:40.
    assert start_allowed(at, hds, NIGHTLY, POLICY) == paris(2026, 6, 11, 1, 40)


def test_windows_covering_the_whole_week_leave_offsite_work_at_any_time() -> None:
    hds = Site("hds", True, (window("all", "00:00", "24:00"),))
    now = paris(2026, 6, 10, 14, 0)
    assert start_allowed(now, hds, NIGHTLY, POLICY) == now


def test_two_windows_covering_the_week_with_two_limits_never_loop() -> None:
    hds = Site(
        "hds",
        True,
        (window("all", "08:00", "19:00", 500), window("all", "19:00", "08:00", 2000)),
    )
    now = paris(2026, 6, 10, 14, 0)
    assert start_allowed(now, hds, NIGHTLY, POLICY) == now


def test_sites_of_the_configuration_carry_their_windows() -> None:
    windows = (window("mon-fri", "08:00", "19:00"),)
    got = sites_of(
        (
            LocalTarget(name="local", path=__import__("pathlib").Path("/srv/depot")),
            OffsiteTarget(
                name="hds", user="u", host="h", port=22, path="/r", upload_windows=windows
            ),
        )
    )
    assert got == (Site("local"), Site("hds", True, windows))


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(datetime(2026, 6, 10, 14, 0), POLICY, (LOCAL,), Ledgers(), Ledgers(), NIGHTLY)
