"""When checks and restore drills run: pure, from what was done and the time.

In: now (aware), a :class:`MaintenancePolicy` (periods, the quiet margin),
the targets (the local ones and the offsite hosts; USB disks are checked and
drilled by their own disk job, at plug), what the ledgers say was done, the
nightly's time of day and timezone. Out: a :class:`MaintenancePlan`, the
work due now (first first) and when the rest may start. No I/O, no clock.

The rules (README, "When checks and drills run"):

- **Never near the nightly.** No maintenance *starts* from ``margin`` (2 h)
  before a nightly due instant until ``settle`` (10 min) after it: the nightly
  is queued within a tick of its due time, and from then on no maintenance
  starts while a backup is queued or running (the daemon's loop). One that
  runs anyway when the nightly comes is stopped at once (preemption, in
  ``coffre.jobs.queue.TargetHolds``): the margin only saves wasted work.
- **Offsite work only when the uplink is free**: outside every upload window
  of the target (the windows are where the practice's uplink is held back,
  office hours). A target whose windows cover the whole week has no free
  minute: its work runs at any time outside the margin.
- **Periods.** A rolling ``borg check --repository-only --max-duration``
  slice at most every ``repository_slice_every`` (a day) while a pass is under
  way (borg resumes where it stopped), a new pass ``repository_every`` (7 days)
  after the last complete one: a pass of a 2 TB repository read at 100 MB/s
  (5.6 h) in 1 h slices takes 6 days, so each segment is read within 13 days.
  Archives checks every ``archives_every`` (7 days), ``--verify-data`` every
  ``data_every`` (30 days) on local repositories only, drills every
  ``drill_every`` (30 days). What failed is tried again ``retry_after`` (a day)
  after its attempt.
- **One of each.** A box off for a month owes each target one of each kind,
  not one per missed period: each (target, kind) is due once, and done it
  is not due again before its period.
- **Priority**: the repository slice (bit rot, bounded), then archives,
  then drills, then verify-data (the longest); within a kind, the longest
  overdue first. The daemon runs one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from coffre.core import schedule
from coffre.core.config_types import Config, OffsiteTarget, TargetConfig, UploadWindow
from coffre.core.upload_window import limit_at, next_change

__all__ = [
    "CheckKind",
    "MaintenancePlan",
    "MaintenancePolicy",
    "Nightly",
    "Planned",
    "Site",
    "Work",
    "WorkKind",
    "plan",
    "policy_from_config",
    "sites_of",
    "start_allowed",
]

CheckKind = Literal["repository", "archives", "data"]
WorkKind = Literal["repository", "archives", "data", "drill"]

#: What each kind of target gets. Offsite: the host checks its repository itself
#: (packaging/hds); --verify-data would download the whole repository.
LOCAL_WORK: tuple[WorkKind, ...] = ("repository", "archives", "data", "drill")
OFFSITE_WORK: tuple[WorkKind, ...] = ("archives", "drill")

_RANK: dict[WorkKind, int] = {"repository": 0, "archives": 1, "drill": 2, "data": 3}

#: borg's --max-duration below this does next to nothing: a slice is never shorter.
MIN_SLICE = 60.0


@dataclass(frozen=True)
class MaintenancePolicy:
    """How often each maintenance runs, and the quiet time around the nightly."""

    repository_every: timedelta = timedelta(days=7)
    repository_slice_every: timedelta = timedelta(days=1)
    #: Seconds of one rolling slice (borg check --max-duration).
    repository_budget: float = 3600.0
    archives_every: timedelta = timedelta(days=7)
    data_every: timedelta = timedelta(days=30)
    drill_every: timedelta = timedelta(days=30)
    retry_after: timedelta = timedelta(days=1)
    margin: timedelta = timedelta(hours=2)
    settle: timedelta = timedelta(minutes=10)
    #: The plan is made again at least this often (a ledger changed by hand, a clock step).
    longest_sleep: timedelta = timedelta(hours=6)


def policy_from_config(config: Config) -> MaintenancePolicy:
    """The policy of ``config``'s ``[checks]`` and ``[drills]`` (raises nothing).

    ``checks.repository_every_days`` is how long a segment may go unread: a
    new rolling pass starts every quarter of it (a pass takes one slice a day
    until it reaches the end, a few days on a large repository), so that a
    pass is always complete well within the period.
    """
    checks, drills = config.checks, config.drills
    return MaintenancePolicy(
        repository_every=timedelta(days=checks.repository_every_days) / 4,
        repository_budget=float(checks.repository_max_duration),
        archives_every=timedelta(days=checks.archives_every_days),
        data_every=timedelta(days=checks.data_every_days),
        drill_every=timedelta(days=drills.every_days),
    )


@dataclass(frozen=True)
class Nightly:
    """The nightly run's local time of day (naive) and the box's timezone."""

    at: time
    timezone: ZoneInfo


@dataclass(frozen=True)
class Site:
    """A target as maintenance sees it: its name, offsite or not, its upload windows."""

    name: str
    offsite: bool = False
    windows: tuple[UploadWindow, ...] = ()

    @property
    def work(self) -> tuple[WorkKind, ...]:
        return OFFSITE_WORK if self.offsite else LOCAL_WORK


def sites_of(targets: Sequence[TargetConfig]) -> tuple[Site, ...]:
    """The configured targets as maintenance sites (USB disks are not configured targets)."""
    return tuple(
        Site(t.name, True, t.upload_windows) if isinstance(t, OffsiteTarget) else Site(t.name)
        for t in targets
    )


class Attempt(Protocol):
    """A check's attempt as the check ledger records it (``CheckRecord``)."""

    @property
    def at(self) -> datetime: ...
    @property
    def ok(self) -> bool: ...
    @property
    def complete(self) -> bool: ...


class CheckHistory(Protocol):
    """What the check ledger says (``coffre.proof.check_ledger.CheckLedger``)."""

    def last_attempt(self, target: str, kind: CheckKind) -> Attempt | None: ...
    def last_success(self, target: str, kind: CheckKind) -> datetime | None: ...


class Drill(Protocol):
    """A drill as the drill ledger records it (``DrillRecord``): when, and its outcome."""

    @property
    def at(self) -> datetime: ...
    @property
    def outcome(self) -> str: ...


class DrillHistory(Protocol):
    """What the drill ledger says (``coffre.proof.drill_ledger.DrillLedger``)."""

    def last(self, target: str) -> Drill | None: ...


@dataclass(frozen=True)
class Work:
    """One maintenance job: a kind on a target; ``budget``: the seconds it may take (checks)."""

    target: str
    kind: WorkKind
    budget: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Planned:
    """``work`` may start at ``at``."""

    at: datetime
    work: Work


@dataclass(frozen=True)
class MaintenancePlan:
    """The work due now (first first), the rest with when it may start (soonest first),
    and when to make the plan again if nothing else wakes the daemon."""

    due: tuple[Work, ...]
    upcoming: tuple[Planned, ...]
    wake: datetime

    @property
    def next(self) -> Planned | None:
        """The next maintenance to start: the first due (at the plan's time) or the soonest."""
        return self.upcoming[0] if self.upcoming else None


def wanted_at(
    target: str,
    kind: WorkKind,
    checks: CheckHistory,
    drills: DrillHistory,
    policy: MaintenancePolicy,
) -> datetime | None:
    """When ``kind`` on ``target`` is due by its period (None: never done, due at once)."""
    if kind == "drill":
        drill = drills.last(target)
        if drill is None:
            return None
        return drill.at + (policy.drill_every if drill.outcome == "ok" else policy.retry_after)
    attempt = checks.last_attempt(target, kind)
    if attempt is None:
        return None
    if not attempt.ok:
        return attempt.at + policy.retry_after
    if kind == "repository" and not attempt.complete:
        return attempt.at + policy.repository_slice_every  # the pass goes on, a slice a day
    every = {
        "repository": policy.repository_every,
        "archives": policy.archives_every,
        "data": policy.data_every,
    }[kind]
    return (checks.last_success(target, kind) or attempt.at) + every


def _quiet_until(moment: datetime, nightly: Nightly, policy: MaintenancePolicy) -> datetime | None:
    """The end of the quiet time around a nightly that ``moment`` falls in; None outside."""
    due = schedule.next_due(moment - policy.settle, nightly.at, nightly.timezone)
    return due + policy.settle if moment >= due - policy.margin else None


def _has_free_minute(windows: Sequence[UploadWindow], tz: ZoneInfo, moment: datetime) -> bool:
    """Whether some minute of the week from ``moment`` is outside every window."""
    local = moment.astimezone(tz).replace(second=0, microsecond=0)
    # Windows start and end on whole minutes: every minute of a week (10 080) is looked at.
    return any(limit_at(windows, local + timedelta(minutes=m)) is None for m in range(7 * 1440))


def _uplink_busy_until(moment: datetime, site: Site, tz: ZoneInfo) -> datetime | None:
    """When a window in force on ``site``'s uplink at ``moment`` changes; None when free."""
    local = moment.astimezone(tz)
    if not site.offsite or limit_at(site.windows, local) is None:
        return None
    change = next_change(site.windows, local)
    return None if change is None else change.astimezone(UTC)


def start_allowed(
    moment: datetime, site: Site, nightly: Nightly, policy: MaintenancePolicy
) -> datetime:
    """The earliest instant at or after ``moment`` when maintenance of ``site`` may start.

    Outside the nightly's quiet time and, offsite, outside the upload windows
    (unless they leave no free minute in the week). Raises ValueError when
    ``moment`` is naive.
    """
    free = site.offsite and _has_free_minute(site.windows, nightly.timezone, moment)
    return _first_start(moment, site, free, nightly, policy)


def _first_start(
    moment: datetime, site: Site, free: bool, nightly: Nightly, policy: MaintenancePolicy
) -> datetime:
    """:func:`start_allowed`, told whether ``site``'s uplink has a free minute at all.

    Each step moves past a quiet time or a window's edge; a hundred of them
    cover weeks of any sane configuration, and the last instant reached is
    returned if not (the daemon plans again long before it).
    """
    for _ in range(100):
        later = _quiet_until(moment, nightly, policy)
        if later is None and free:
            later = _uplink_busy_until(moment, site, nightly.timezone)
        if later is None:
            return moment
        moment = later
    return moment


def _budget(
    kind: WorkKind, moment: datetime, nightly: Nightly, policy: MaintenancePolicy
) -> float | None:
    """Seconds a rolling repository slice started at ``moment`` may take: its budget, and
    never past the next quiet time. None for the other kinds: they run to their end, or
    until another job takes their target."""
    if kind != "repository":
        return None
    quiet = schedule.next_due(moment, nightly.at, nightly.timezone) - policy.margin
    left = (quiet - moment).total_seconds()
    return max(min(left, policy.repository_budget), MIN_SLICE)


def plan(
    now: datetime,
    policy: MaintenancePolicy,
    sites: Sequence[Site],
    checks: CheckHistory,
    drills: DrillHistory,
    nightly: Nightly,
) -> MaintenancePlan:
    """What maintenance is due at ``now`` (first first) and when the rest may start.

    In: ``now`` (aware), the policy, the sites (:func:`sites_of`), the check and
    drill ledgers, the nightly. Out: a :class:`MaintenancePlan` whose ``due``
    holds each (target, kind) at most once, the rolling slice first; its
    ``upcoming`` starts with the due ones (at ``now``), then the rest by the
    instant each may start; its ``wake`` is the soonest of those, at most
    ``policy.longest_sleep`` away. Raises ValueError when ``now`` (or a
    ledger's time) is naive.
    """
    due: list[tuple[tuple[int, datetime, str], Work]] = []
    upcoming: list[Planned] = []
    for site in sites:
        free = site.offsite and _has_free_minute(site.windows, nightly.timezone, now)
        for kind in site.work:
            wanted = wanted_at(site.name, kind, checks, drills, policy)
            start = _first_start(max(wanted or now, now), site, free, nightly, policy)
            work = Work(site.name, kind, _budget(kind, start, nightly, policy))
            if start == now:
                due.append(
                    ((_RANK[kind], wanted or datetime.min.replace(tzinfo=UTC), site.name), work)
                )
            else:
                upcoming.append(Planned(start, work))
    due.sort(key=lambda item: item[0])
    upcoming.sort(key=lambda p: (p.at, _RANK[p.work.kind], p.work.target))
    wake = min([p.at for p in upcoming] + [now + policy.longest_sleep])
    ready = tuple(work for _, work in due)
    return MaintenancePlan(
        due=ready,
        upcoming=tuple(Planned(now, w) for w in ready) + tuple(upcoming),
        wake=wake,
    )
