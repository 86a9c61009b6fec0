"""What a job says while it runs and when it ends, from the step that does the work to the CLI.

Typed where they are made (the executor, the read jobs, the lanes); Job.publish
adds ``job`` (the job's id) to each on its way to the waiters, who send them as
they are; the CLI reads them back with :func:`stream_event` and
:func:`outcomes_from_json`. TypedDicts: the JSON is these dicts, key for key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NotRequired, Required, TypeAlias, TypedDict, cast

from coffre.core.messages import ErrorInfo, other_version
from coffre.core.reports import JobView

# --- what a job did on each target ------------------------------------------------------------


class KeptView(TypedDict):
    """An archive retention keeps, and why (J, J-1, M...)."""

    name: str
    reasons: list[str]


class FindHit(TypedDict):
    """A path that matched a find, in one archive (times ISO 8601 in the box's timezone)."""

    archive: str
    archive_time: str | None
    path: str
    type: str
    size: int
    mtime: str | None


class OutcomeDetails(TypedDict, total=False):
    """What a step of a job says it did on a target, by kind (each sets its own keys).

    ``error`` when it failed; a backup carries the retention that followed it
    (``retention``).
    """

    error: ErrorInfo
    retention: TargetOutcome
    # backup (and the disk job's backup)
    archive: str | None
    nfiles: int
    original_size: int
    deduplicated_size: int
    # a backup borg made with warnings: how many files it lacks, and why
    outcome: str
    not_backed_up: int
    warning_summary: str
    # the disk job
    recovered: bool
    skipped: str
    deleted: list[str]
    pruning_frozen: list[str]
    safe_to_remove: bool
    # the disk job's checks (issue 13): what each found, and a damaged disk's plea
    checks: list[str]
    replace_disk: str
    # the disk job's restore drill at its plug, when due (one line for a person)
    drill: str
    # prune
    dry_run: bool
    keep: list[KeptView]
    delete: list[str]
    ignored: list[str]
    # prune while an incident freezes it: what retention would delete, and why not
    held: list[str]
    frozen_by: list[str]
    # init, enroll, key export
    repository_id: str
    done: str
    location: str
    fs_uuid: str
    paper: str
    # restore
    archive_time: str | None
    destinations: list[str]
    written: list[str]
    nbytes: int
    warnings: list[str]
    # find
    archives_searched: int
    total: int
    truncated: bool
    hits: list[FindHit]
    # browse
    path: str
    ended: str | None
    mounted_for: float | None
    # drill (with archive, nfiles, nbytes): the extract's time and rate, how files were compared
    extract_seconds: float
    throughput: float | None
    by_bytes: int
    by_hash: int
    mismatches: int
    # check, drill (maintenance): the kinds of check done; what took the target (outcome
    # "interrupted": not a failure, tried again later)
    checked: list[str]
    interrupted_by: str


class TargetOutcome(OutcomeDetails, total=False):
    """How a job ended on one target: ``ok``, and its ``error`` or its details."""

    ok: Required[bool]


def succeeded(details: OutcomeDetails) -> TargetOutcome:
    """The outcome of a step that did what ``details`` say."""
    return {"ok": True, **details}


def outcomes_from_json(final: Mapping[str, object]) -> dict[str, TargetOutcome]:
    """The outcome of each target in a job's result line ({} when it has none: refused)."""
    targets = final.get("targets")
    if targets is None:
        return {}
    if not isinstance(targets, dict) or not all(
        isinstance(o, dict) and isinstance(o.get("ok"), bool) for o in targets.values()
    ):
        raise other_version("targets")
    return cast(dict[str, TargetOutcome], targets)


# --- the events of a job, as its waiters get them ------------------------------------------


class JobResult(TypedDict, total=False):
    """The last event of a job: ``ok`` when every target is; each target's outcome.

    ``error`` when the job as a whole failed (cancelled, crashed); ``absent_disks``:
    the disks a key export did not wait for.
    """

    event: Required[Literal["result"]]
    ok: Required[bool]
    kind: str
    targets: dict[str, TargetOutcome]
    error: ErrorInfo
    absent_disks: list[str]
    queued: JobView


def result_from_json(final: Mapping[str, object]) -> JobResult:
    """The result line of a job (its targets' outcomes checked); DaemonUnavailable when the
    line is no result (see :func:`coffre.core.messages.other_version`)."""
    if final.get("event") != "result" or not isinstance(final.get("ok"), bool):
        raise other_version("a result")
    outcomes_from_json(final)
    return cast(JobResult, final)


class TargetStarted(TypedDict):
    event: Literal["target_started"]
    target: str


class TargetDone(TargetOutcome, total=False):
    """A target's outcome, as soon as the job is done with it."""

    event: Required[Literal["target_done"]]
    target: Required[str]


class ProgressEvent(TypedDict, total=False):
    """How far a job is on ``target``: a backup's counters, or a restore's items written."""

    event: Required[Literal["progress"]]
    target: Required[str]
    ratio: float | None
    nfiles: int
    original_size: int
    deduplicated_size: int
    items: int


class WaitingEvent(TypedDict):
    """Why a job does not start yet (another job holds its target, a disk to plug in)."""

    event: Literal["waiting"]
    message: str
    target: NotRequired[str]


class ArchiveEvent(TypedDict):
    """The archive a restore reads."""

    event: Literal["archive"]
    target: str
    archive: str


class MountedEvent(TypedDict):
    """A browse mount is there, at ``path`` (``archive`` None: every archive)."""

    event: Literal["mounted"]
    path: str
    archive: str | None


class DiskReleasedEvent(TypedDict):
    """A USB disk a read used is unmounted; powered off (``safe_to_remove``) when healthy."""

    event: Literal["disk_released"]
    target: str
    safe_to_remove: bool


class RetryWaitEvent(TypedDict):
    """Offsite ``targets`` cut by the network are tried again in ``seconds``."""

    event: Literal["retry_wait"]
    targets: list[str]
    seconds: float


#: What a job says while it works: the same for the job's own followers and on the socket.
WorkEvent: TypeAlias = (
    TargetStarted
    | TargetDone
    | ProgressEvent
    | WaitingEvent
    | ArchiveEvent
    | MountedEvent
    | DiskReleasedEvent
    | RetryWaitEvent
)

#: What a job publishes to those waiting for it (its result last).
JobEvent: TypeAlias = JobResult | WorkEvent


class QueuedEvent(TypedDict):
    """The first event a client following a job gets: the job it landed in."""

    event: Literal["queued"]
    job: JobView


#: What a client following a job reads before its final line (result or error).
StreamEvent: TypeAlias = QueuedEvent | WorkEvent

_STREAM_EVENTS = frozenset(
    {
        "queued",
        "target_started",
        "target_done",
        "progress",
        "waiting",
        "archive",
        "mounted",
        "disk_released",
        "retry_wait",
    }
)


def stream_event(line: Mapping[str, object]) -> StreamEvent | None:
    """The event of a line a client reads, typed by its ``event``; None for a final line
    (result, error: read with the reader of what was asked) or an event this CLI does not
    know (a newer daemon's: skipped, as before)."""
    if line.get("event") not in _STREAM_EVENTS:
        return None
    return cast(StreamEvent, line)
