"""What ``coffre status``, ``archives``, ``disk list`` and ``offsite enroll`` are answered.

TypedDicts: the JSON the daemon sends is these dicts as they are (``--json``
prints them), and mypy checks every key either side writes or reads. The CLI
reads them through the ``*_from_json`` functions, which turn an answer of a
daemon of another version into a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NotRequired, TypedDict, cast

from coffre.core.messages import other_version

# --- what `coffre status`, `archives` and `disk list` show ------------------------------------


class JobView(TypedDict):
    """A queued or running job as the CLI shows it."""

    id: int
    kind: str
    targets: list[str]
    reason: str
    current_target: str | None
    progress: float | None
    counters: dict[str, int]


class RunView(TypedDict):
    """A run of a target as status shows it (times ISO 8601 in the box's timezone).

    A run with warnings (outcome "warning") says how many files its archive
    lacks and why, as counts only: file names stay in the journal.
    """

    started_at: str | None
    finished_at: str | None
    outcome: str | None
    duration: float | None
    error_kind: str | None
    error_message: str | None
    archive: str | None
    nfiles: int | None
    original_size: int | None
    deduplicated_size: int | None
    not_backed_up: int | None
    warnings: dict[str, int] | None
    warning_summary: str | None


class ArchiveView(TypedDict):
    """One archive of a target, with why retention keeps it (none: it goes at the next prune)."""

    name: str
    time: str | None
    reasons: list[str]
    ours: bool


class ArchivesReport(TypedDict):
    """A target's archives, newest first (``listed`` False: never listed yet), and its slots."""

    listed: bool
    archives: list[ArchiveView]
    slots: dict[str, bool]


class KeyEscrowView(TypedDict):
    """A repository and when its key was last exported on paper (None: never)."""

    target: str
    repository_id: str
    exported_at: str | None


class OffsiteView(TypedDict):
    """What status shows of an offsite target beyond the common fields."""

    last_error_kind: str | None
    reachable: bool | None
    checked_at: str | None
    preflight_error: str | None
    bytes_sent: int


class TargetStatus(ArchivesReport):
    """A configured target in status: its repository, last runs and archives."""

    kind: str
    location: str
    repository_id: str | None
    last_success: RunView | None
    last_attempt: RunView | None
    last_failure: RunView | None
    offsite: NotRequired[OffsiteView]


class DiskFailure(TypedDict):
    kind: str | None
    message: str | None
    at: str | None


class DiskView(TypedDict):
    """An enrolled USB disk, as ``coffre disk list`` and status show it."""

    name: str
    fs_uuid: str
    present: bool
    busy: bool
    safe_to_remove: bool
    last_backup: str | None
    last_seen: str | None
    days_since_swap: float | None
    swap_due: bool
    missing: bool
    free_bytes: int | None
    last_failure: DiskFailure | None


class IncidentView(TypedDict):
    """An open incident of the guard as status shows it: reasons and figures, never a file name.

    ``figures`` are the latest sighting's (by name, numbers only); the
    evidence stays on the box (``coffre incident show``).
    """

    kind: str
    opened_at: str | None
    reasons: list[str]
    sightings: int
    latest_at: str | None
    latest_target: str
    figures: dict[str, float]


class NightView(TypedDict):
    """The change signal's figures of a target's latest backup (by name, numbers only)."""

    at: str | None
    figures: dict[str, float]


class GuardView(TypedDict):
    """The guard in status: open incidents, whether pruning is frozen, the clock, each night.

    ``clock_synchronised``: whether the clock is NTP-synchronised (None:
    unknown). ``nights``: by target (configured ones and enrolled disks)
    that has figures.
    """

    incidents: list[IncidentView]
    pruning_frozen: bool
    clock_synchronised: bool | None
    nights: dict[str, NightView]


class _GuardPart(TypedDict, total=False):
    """Status's ``guard``: absent only from a daemon that predates the guard (none to show).

    A class of its own, ``total=False``: a ``NotRequired`` in a postponed
    annotation is not seen by Python 3.11's ``__required_keys__``, which
    :func:`status_from_json` checks.
    """

    guard: GuardView


class CheckView(TypedDict):
    """One kind of scheduled check of a target, as status shows it (times in the box's zone).

    ``last_success``: the end of the last complete pass that found nothing
    wrong; ``pass_started``: when the pass under way began (None: none);
    ``last_ok``/``last_error``/``archive``: the last attempt's outcome (None:
    never ran); ``damage_at``: damage found that no clean complete pass has
    cleared since. ``last_error`` may quote borg (escape it to print).
    """

    kind: str
    last_attempt: str | None
    last_ok: bool | None
    last_error: str | None
    archive: str | None
    last_success: str | None
    pass_started: str | None
    damage_at: str | None


class _ChecksPart(_GuardPart, total=False):
    """Status's ``checks``, by target (configured and enrolled disks): absent from a daemon
    that predates the scheduled checks (issue 13)."""

    checks: dict[str, list[CheckView]]


class MaintenanceView(TypedDict):
    """Checks and drills in ``coffre status``: the one running or queued, the next one due.

    ``enabled`` false: this daemon runs none. ``next_kind``: repository,
    archives, data (checks) or drill; ``next_at`` ISO 8601 in the box's timezone.
    """

    enabled: bool
    running: JobView | None
    queued: list[JobView]
    next_at: str | None
    next_kind: str | None
    next_target: str | None


class _MaintenancePart(TypedDict, total=False):
    """Status's ``maintenance``: absent from a daemon without checks nor drills (as _GuardPart)."""

    maintenance: MaintenanceView


class RestoreEstimateView(TypedDict):
    """How long getting everything back from a target takes (``coffre.proof.restore_estimate``).

    ``seconds`` None: unknown, and ``unknown`` says why ("no drill yet"...).
    ``rate``: the bytes per second the last drill measured; ``drill_at`` its
    time (ISO 8601, the box's timezone). ``bytes`` and ``files``: what a full
    restore writes (the latest archive's original size). ``over_link``: an
    offsite target, whose figure is the practice's Internet link. ``stale``:
    the drill is older than ``stale_after_days``.
    """

    seconds: float | None
    unknown: str | None
    drill_at: str | None
    rate: float | None
    bytes: int | None
    files: int | None
    over_link: bool
    stale: bool
    over_objective: bool


class RestoreView(TypedDict):
    """Status's restore times: the objective (``restore.rto_hours``) and each target's."""

    objective_hours: int
    stale_after_days: int
    estimates: dict[str, RestoreEstimateView]


class _RestorePart(TypedDict, total=False):
    """Status's ``restore``: absent only from a daemon that predates the estimate."""

    restore: RestoreView


class VersionView(TypedDict):
    """A Previous Version kept: its ``@GMT-...`` name, when (box's time), its kind."""

    name: str
    at: str | None
    kind: str


class ReadView(TypedDict):
    """How a target's last backup read the share (``coffre.consistency.quiet``)."""

    method: str
    quiet: bool
    waited: float
    writers: int | None
    at: str | None
    why_live: str


class ShareView(TypedDict):
    """Status's share: snapshots or why not, the versions kept, the filesystem's room,
    and how each target's last backup read the share."""

    snapshots: bool
    why_not: str
    versions: list[VersionView]
    free_bytes: int | None
    total_bytes: int | None
    reads: dict[str, ReadView]


class _SharePart(TypedDict, total=False):
    """Status's ``share``: absent only from a daemon that predates snapshots."""

    share: ShareView


class StatusReport(_ChecksPart, _MaintenancePart, _RestorePart, _SharePart):
    """Everything ``coffre status`` shows (times ISO 8601 in the box's timezone)."""

    key_escrow: list[KeyEscrowView]
    now: str | None
    timezone: str
    next_nightly: str | None
    running: JobView | None
    queued: list[JobView]
    uploading: JobView | None
    reading: JobView | None
    targets: dict[str, TargetStatus]
    disks: list[DiskView]
    problems: list[str]


# --- what `coffre offsite enroll` is answered ------------------------------------------------


class PreflightView(TypedDict):
    """Whether the host took the box's key; why not (kind, message, hint) when it did not."""

    ok: bool
    error: NotRequired[dict[str, str]]


class OffsiteEnrollment(TypedDict):
    """The result of an ``offsite_enroll`` request: the host's key, the pin, the preflight."""

    event: Literal["result"]
    ok: bool
    target: str
    host: str
    host_key: str
    fingerprint: str
    pinned: bool
    pinned_now: bool
    pinned_before: bool
    pinned_in_config: bool
    key_created: bool
    public_key: str
    authorized_keys: str
    preflight: PreflightView | None


def enrollment_from_json(final: Mapping[str, object]) -> OffsiteEnrollment:
    """The result line of an ``offsite_enroll`` request; DaemonUnavailable when a key lacks."""
    missing = OffsiteEnrollment.__required_keys__ - final.keys()
    if missing:
        raise other_version(", ".join(sorted(missing)))
    return cast(OffsiteEnrollment, final)


def status_from_json(final: Mapping[str, object]) -> StatusReport:
    """The status report of a ``status`` result line; DaemonUnavailable when a key lacks."""
    report = final.get("status")
    if not isinstance(report, dict):
        raise other_version("status")
    missing = StatusReport.__required_keys__ - report.keys()
    if missing:
        raise other_version(f"status ({', '.join(sorted(missing))})")
    return cast(StatusReport, report)


def disks_from_json(final: Mapping[str, object]) -> list[DiskView]:
    """The disks of a ``disks`` result line; DaemonUnavailable when it has none."""
    disks = final.get("disks")
    if not isinstance(disks, list):
        raise other_version("disks")
    return cast(list[DiskView], disks)


def archives_from_json(final: Mapping[str, object]) -> dict[str, ArchivesReport]:
    """The archives by target of an ``archives`` result line; DaemonUnavailable without."""
    targets = final.get("targets")
    if not isinstance(targets, dict):
        raise other_version("targets")
    return cast(dict[str, ArchivesReport], targets)
