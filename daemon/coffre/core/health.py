"""Pure: how the box stands, as one value the LEDs (and a metric) show, with its reasons.

The input is :class:`Facts`, read from state and the job lanes by
``coffre.observe.facts``; nothing here does I/O or reads a clock. :func:`assess`
returns a :class:`Verdict`: the most urgent :class:`Health` that applies,
and every reason found (most urgent first), for the logs and support.

Order of urgency, first match wins:

1. ``WORKING``: a job runs in the main lane (a backup, a disk job, a
   retention, an enrollment...): do not unplug the disk, do not switch off.
   Offsite uploads (the network lane, possibly for days) do not count: they
   touch no disk and a cut resumes.
2. ``FAILURE`` (call support):

   - an incident of the guard is open (``coffre.guard.incidents``): pruning
     is frozen on every target, first among the reasons ("pruning frozen:
     suspected ransomware", "pruning frozen: suspect clock"); backups go on;
   - the last backup or retention of a local target or a USB disk failed
     (any error kind);
   - a scheduled check of a local or offsite target found damage that no
     clean complete pass has cleared since (:class:`CheckFacts`);
   - the last attempt of an offsite target failed with a kind another
     attempt cannot fix (refused key, wrong host key, mismatching
     repository...); network trouble only counts once the copy is late
     (``ATTENTION``);
   - a local target's last success is older than :data:`LATE` (a target
     that never succeeded shows through its failed attempt; a new box
     waiting for its first night is fine);
   - a monthly restore point of a past month (``M-1``...) is missing on a
     local or offsite target whose history goes back to that month. Past
     daily points are not looked at: a missed night already shows through
     the lateness above while it matters, and the alert rules watch them.

3. ``ATTENTION`` for a USB disk whose check found damage (until a clean
   complete pass): it outranks the next rule, so that whoever takes the disk
   away sees it must be replaced.
4. ``SAFE_TO_REMOVE``: a USB disk's job ended less than :data:`SAFE_HOLD`
   ago with the disk powered off: it may be taken away. (Once powered off a
   USB disk sends no event when it is pulled, so the pattern is held for a
   while rather than until the disk goes.)
5. ``ATTENTION``: the last archive made on a target (local, offsite or a
   USB disk) came with borg warnings: it lacks files, or holds some that
   changed while read; a check of a local target could not run;
   a disk's swap is due, a disk was not seen for
   too long (``coffre.core.rotation``), an offsite copy is late (no success for
   :data:`LATE`) or not made yet though attempts ended (a first upload cut
   by the network).
6. ``OK``.

A backup with warnings made its archive: it is the target's last success
for lateness and restore points (``TargetFacts.last_success``), never a
failure; it is shown (ATTENTION) until a later backup of that target makes
a clean archive (a failure in between shows FAILURE first).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from coffre.core.model import COMPLETED, RETRIABLE, RunRecord, RunStats

#: A daily backup is late once its last success is older than this (a night and some slack).
LATE = timedelta(hours=26)
#: How long after a disk job the "safe to remove" pattern is shown.
SAFE_HOLD = timedelta(hours=12)

TargetKind = Literal["local", "offsite", "usb"]


class Health(enum.Enum):
    """What the lights say, most urgent last in this list's meaning (see the module doc)."""

    OK = "ok"
    WORKING = "working"
    SAFE_TO_REMOVE = "safe_to_remove"
    ATTENTION = "attention"
    FAILURE = "failure"


@dataclass(frozen=True)
class JobFacts:
    """A job running in a lane: its kind, targets, and progress (0 to 1, None if unknown)."""

    kind: str
    targets: tuple[str, ...]
    progress: float | None = None


@dataclass(frozen=True)
class CheckFacts:
    """One kind of scheduled check of a target, as the check ledger has it.

    ``kind``: "repository", "archives" or "data". ``last_attempt``: when the
    last one ended (None: never), ``last_ok`` whether it found nothing wrong
    (None: never ran), ``last_error`` its sentence; ``last_success`` the end
    of the last complete pass that found nothing wrong; ``damage_at`` when
    damage was found that no clean complete pass has cleared since.
    """

    kind: str
    last_attempt: datetime | None = None
    last_ok: bool | None = None
    last_success: datetime | None = None
    damage_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class TargetFacts:
    """What state says of one repository: a configured target or an enrolled USB disk.

    Runs are ended runs (a running one is not an attempt yet).
    ``last_success`` is the last backup that made an archive, complete or with
    warnings (``state.COMPLETED``); ``last_attempt`` the last that ended,
    whatever its outcome; ``warnings_in_a_row`` how many backups ended with
    warnings since the last clean one (``State.warnings_in_a_row``). ``slots`` are
    the retention slots present by the calendar (``retention.slots_present``),
    empty when the archive list is unknown; ``archives`` is None then too.
    ``reachable`` is the offsite host's answer to the last preflight (None:
    not offsite, or never asked).
    """

    name: str
    kind: TargetKind
    last_success: RunRecord | None = None
    last_attempt: RunRecord | None = None
    last_stats: RunStats | None = None
    last_prune: RunRecord | None = None
    #: The scheduled checks coffre runs on it, one per kind (``coffre.proof.check_ledger``).
    checks: tuple[CheckFacts, ...] = ()
    archives: int | None = None
    oldest_archive: datetime | None = None
    slots: Mapping[str, bool] = field(default_factory=dict)
    reachable: bool | None = None
    free_bytes: int | None = None
    #: Whether the repository's key was printed for escrow (None: no repository yet).
    key_exported: bool | None = None
    warnings_in_a_row: int = 0


@dataclass(frozen=True)
class DiskFacts:
    """An enrolled USB disk and where it stands in the rotation."""

    name: str
    present: bool
    safe_to_remove: bool
    last_seen: datetime | None
    free_bytes: int | None
    swap_due: bool
    missing: bool
    days_since_seen: float | None = None


@dataclass(frozen=True)
class IncidentFacts:
    """An open incident of the guard: its kind ("ransomware", "clock"), since when, why.

    Counts and reasons only: the evidence (which may name files) stays in state.
    """

    kind: str
    opened_at: datetime
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class NightFacts:
    """The change signal's figures of the latest backup of ``target``, taken ``at``.

    ``figures`` are by name (``added``, ``modified``, ``vanished``, ``sampled``,
    ``suspects``, ``canaries_checked``...: whatever the guard measured; a
    reader takes the names it knows and leaves the others). Numbers only.
    """

    target: str
    at: datetime | None
    figures: Mapping[str, float] = field(default_factory=dict)


#: The red light's reason for an open incident, by kind (an unknown kind is named as is).
FROZEN_REASONS = {
    "ransomware": "pruning frozen: suspected ransomware",
    "clock": "pruning frozen: suspect clock",
}


def frozen_reason(kind: str) -> str:
    """The reason health gives for an open incident of ``kind``."""
    return FROZEN_REASONS.get(kind, f"pruning frozen: {kind} incident")


@dataclass(frozen=True)
class Facts:
    """Everything health (and the metrics) look at, at ``now`` (aware) in the box's ``tz``."""

    now: datetime
    tz: ZoneInfo
    targets: tuple[TargetFacts, ...] = ()
    disks: tuple[DiskFacts, ...] = ()
    main_job: JobFacts | None = None
    network_job: JobFacts | None = None
    #: The running read for support (restore, find, browse, key export), if any.
    read_job: JobFacts | None = None
    #: Failed runs by (target, error kind), kinds bounded by errors.ERROR_KINDS.
    errors: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: Backups that ended with warnings, by target.
    warnings: Mapping[str, int] = field(default_factory=dict)
    #: Failures outside state's runs (coffre.jobs.supervision.Incidents): what the box
    #: lacks (share, passphrase file), failures state could not record.
    problems: tuple[str, ...] = ()
    #: The guard's open incidents (ransomware first): each freezes pruning everywhere.
    incidents: tuple[IncidentFacts, ...] = ()
    #: The latest night's figures of each target (and enrolled disk) that has some.
    nights: tuple[NightFacts, ...] = ()
    #: Whether the box's clock is NTP-synchronised (None: unknown).
    clock_synchronised: bool | None = None


@dataclass(frozen=True)
class Verdict:
    """The health shown, and every reason found, most urgent first (empty when OK)."""

    health: Health
    reasons: tuple[str, ...] = ()


def assess(facts: Facts) -> Verdict:
    """The :class:`Verdict` for ``facts`` (see the module doc for the rules). Raises nothing."""
    working = _working(facts)
    # First: a frozen pruning is the one failure that needs support even though
    # every backup succeeds.
    failures = [frozen_reason(incident.kind) for incident in facts.incidents]
    failures += facts.problems
    failures += [reason for target in facts.targets for reason in _failures(target, facts)]
    # A damaged disk outranks "safe to remove": whoever unplugs it must see that it
    # is not to go back into the rotation (it is powered off all the same).
    damaged = [reason for target in facts.targets for reason in _damaged_disk(target)]
    safe = _safe_to_remove(facts)
    attention = _attention(facts)
    reasons = (*working, *failures, *damaged, *safe, *attention)
    for health, found in (
        (Health.WORKING, working),
        (Health.FAILURE, failures),
        (Health.ATTENTION, damaged),
        (Health.SAFE_TO_REMOVE, safe),
        (Health.ATTENTION, attention),
    ):
        if found:
            return Verdict(health, tuple(reasons))
    return Verdict(Health.OK)


def _working(facts: Facts) -> list[str]:
    # Not the upload: it may run for days, and "working" tells the practice
    # not to pull a disk or power the box off for a job that is quick.
    jobs = [job for job in (facts.main_job, facts.read_job) if job is not None]
    return [f"{job.kind} of {', '.join(job.targets) or 'nothing'} running" for job in jobs]


def _failed(run: RunRecord | None) -> bool:
    # A run with warnings did its work (the archive exists): attention, not failure.
    return run is not None and run.outcome not in COMPLETED


def _describe(run: RunRecord) -> str:
    return f"last {run.kind} of {run.target} failed ({run.error_kind or 'unknown'})"


def _failures(target: TargetFacts, facts: Facts) -> list[str]:
    found: list[str] = []
    runs = (target.last_attempt, target.last_prune)
    for run in runs:
        if run is None or not _failed(run):
            continue
        if target.kind == "offsite" and run.error_kind in RETRIABLE:
            continue  # the network lane tries again; lateness says when it matters
        found.append(_describe(run))
    if target.kind == "local" and _late(target, facts.now):
        found.append(f"no successful backup of {target.name} for more than {_hours(LATE)} h")
    if target.kind != "usb":
        found += _missing_months(target, facts)
        found += [
            f"the {c.kind} check of {target.name} found damage on {c.damage_at:%Y-%m-%d}"
            for c in target.checks
            if c.damage_at is not None
        ]
    return found


def _damaged_disk(target: TargetFacts) -> list[str]:
    """A USB disk whose check found damage no clean complete pass cleared: replace it."""
    damaged = [c.damage_at for c in target.checks if c.damage_at is not None]
    if target.kind != "usb" or not damaged:
        return []
    return [
        f"disk {target.name} is damaged (its check found damage on "
        f"{max(damaged):%Y-%m-%d}): replace it"
    ]


def _check_not_run(target: TargetFacts) -> list[str]:
    """A check of the box's repository that could not run (a lock held by another borg)."""
    if target.kind != "local":
        # A disk's job failed with it: the failure shows. An offsite host away is
        # network trouble: its lateness shows it when it matters, and the alert.
        return []
    # A backup that succeeded since reached the repository: what kept the check
    # from running (a passphrase away, a lock) is gone, and the check runs again.
    since = target.last_success.finished_at if target.last_success else None
    return [
        f"the last {c.kind} check of {target.name} could not run"
        for c in target.checks
        if c.last_ok is False
        and c.damage_at is None
        and not (since is not None and c.last_attempt is not None and since > c.last_attempt)
    ]


def _late(target: TargetFacts, now: datetime) -> bool:
    """The last success is older than LATE (a target that never succeeded is told apart)."""
    ended = None if target.last_success is None else target.last_success.finished_at
    return ended is not None and now - ended > LATE


def _never(target: TargetFacts) -> bool:
    """Attempts ended, none succeeded (a target never tried is new, neither late nor failed)."""
    return target.last_success is None and target.last_attempt is not None


def _missing_months(target: TargetFacts, facts: Facts) -> list[str]:
    if target.oldest_archive is None:
        return []
    oldest = target.oldest_archive.astimezone(facts.tz)
    today = facts.now.astimezone(facts.tz)
    found = []
    for slot, present in target.slots.items():
        if present or not slot.startswith("M-"):
            continue
        back = int(slot[2:])
        year, month0 = divmod(today.year * 12 + today.month - 1 - back, 12)
        # The slot's month is one the repository lived through: it should hold an archive.
        if (oldest.year, oldest.month) <= (year, month0 + 1):
            found.append(f"restore point {slot} of {target.name} is missing")
    return found


def _safe_to_remove(facts: Facts) -> list[str]:
    return [
        f"disk {disk.name} may be removed"
        for disk in facts.disks
        if disk.safe_to_remove
        and disk.last_seen is not None
        and facts.now - disk.last_seen <= SAFE_HOLD
    ]


def _warned(target: TargetFacts) -> list[str]:
    """The reason to show when the last archive made on ``target`` came with warnings.

    The last archive, not the last attempt: a disk job that found today's
    archive already there made none, and the disk's newest archive still
    lacks the files. Counts only, no file name.
    """
    stats = target.last_stats
    if stats is None or stats.warnings is None:
        return []
    return [f"last backup of {target.name} ended with warnings: {stats.warnings.summary}"]


def _attention(facts: Facts) -> list[str]:
    found = [reason for target in facts.targets for reason in _warned(target)]
    found += [reason for target in facts.targets for reason in _check_not_run(target)]
    for disk in facts.disks:
        if disk.swap_due:
            found.append(f"disk {disk.name} is due for a swap")
        if disk.missing:
            days = "" if disk.days_since_seen is None else f" for {disk.days_since_seen:.0f} days"
            found.append(f"disk {disk.name} not seen{days}")
    for target in facts.targets:
        if target.kind != "offsite":
            continue
        if _late(target, facts.now):
            found.append(f"offsite copy {target.name} late: no success for {_hours(LATE)} h")
        elif _never(target):
            found.append(f"offsite copy {target.name} not made yet: no attempt succeeded")
    return found


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)
