"""Nothing dies quietly: what the daemon knows of failures that state cannot hold.

Three things live here, in memory, for the daemon's life:

- the *box problems*: what every backup needs and the box lacks now (the
  share, the passphrase file, a data volume: ``config.check_environment``),
  checked at each tick of the daemon's timer and at each ``coffre status``;
- the failures state could not record (its filesystem full): without them a
  failed backup would leave the last recorded outcome, maybe "ok", on show;
- the jobs that failed on an error coffre has no type for (kind
  ``internal``) outside any run in state: a support read, or a crash between
  two targets. Runs in state count theirs in state.

Health (the LEDs), the metrics and ``coffre status`` read them beside state.
:func:`job_crashed` is the one place where an exception that escaped a job
becomes that job's failed result: the lanes call it, and go on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from coffre.core.errors import CoffreError, InternalError
from coffre.core.messages import error_info
from coffre.core.printable import controls_escaped
from coffre.storage import logs

if TYPE_CHECKING:
    from coffre.jobs.queue import Job, JobQueue, JobResult


@dataclass(frozen=True)
class Unrecorded:
    """A run's failure that state could not record (``error`` says why it failed)."""

    target: str
    kind: str
    at: datetime
    error_kind: str
    message: str


class Incidents:
    """What went wrong that state does not hold; read by health, metrics and status.

    Used from the event loop only.
    """

    def __init__(self) -> None:
        self.box_problems: tuple[str, ...] = ()
        self._unrecorded: dict[tuple[str, str], Unrecorded] = {}
        self._internal: Counter[str] = Counter()
        #: Changes whenever anything here does: readers cache against it.
        self.generation = 0

    # --- box problems -----------------------------------------------------------

    def set_box_problems(self, problems: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Replace the box problems; returns (those that appeared, those that are gone)."""
        now = tuple(problems)
        appeared = tuple(p for p in now if p not in self.box_problems)
        gone = tuple(p for p in self.box_problems if p not in now)
        if appeared or gone:
            self.box_problems = now
            self.generation += 1
        return appeared, gone

    # --- failures state could not record --------------------------------------

    def unrecorded(self, target: str, kind: str, at: datetime, error: CoffreError) -> None:
        """Keep the failure of the ``kind`` run of ``target`` that state could not record."""
        self._unrecorded[(target, kind)] = Unrecorded(target, kind, at, error.kind, error.message)
        self.generation += 1

    def recorded(self, target: str, kind: str) -> None:
        """State recorded a newer ``kind`` run of ``target``: the one kept here is history."""
        if self._unrecorded.pop((target, kind), None) is not None:
            self.generation += 1

    @property
    def unrecorded_failures(self) -> tuple[Unrecorded, ...]:
        return tuple(self._unrecorded.values())

    # --- internal errors outside state --------------------------------------------

    def crashed(self, target: str) -> None:
        """Count a job on ``target`` (or "" for none) that failed on an unexpected error."""
        self._internal[target] += 1
        self.generation += 1

    def internal_errors(self) -> dict[str, int]:
        """Unexpected errors outside state's runs, by target ("" for a job of no target)."""
        return dict(self._internal)

    def failures(self) -> tuple[str, ...]:
        """Every reason here for the lights to show a failure, most urgent first."""
        reasons = [f"box: {problem}" for problem in self.box_problems]
        reasons += [
            f"last {u.kind} of {u.target} failed ({u.error_kind}) and state could not record it"
            for u in self._unrecorded.values()
        ]
        return tuple(reasons)


def unexpected(error: Exception, where: str, logger: logging.Logger) -> InternalError:
    """The InternalError a job fails with when ``error`` escaped it in ``where``
    ("backup of local"); its traceback goes to the journal at ERROR with MESSAGE_ID
    :data:`coffre.storage.logs.MSG_JOB_CRASHED`. Raises nothing."""
    internal = InternalError.from_exception(error, where)
    logger.error(
        "%s",
        controls_escaped(internal.message),  # the error's text may quote a name from the share
        exc_info=error,
        extra={"MESSAGE_ID": logs.MSG_JOB_CRASHED, "COFFRE_ERROR_KIND": internal.kind},
    )
    return internal


def job_crashed(
    job: Job, error: Exception, logger: logging.Logger, incidents: Incidents | None = None
) -> JobResult:
    """The failed result of ``job``, out of which ``error`` escaped (logged by
    :func:`unexpected`); ``incidents`` (when given) counts the crash against the job's
    current target. Raises nothing.
    """
    request = job.request
    target = job.current_target or ", ".join(request.targets)
    where = f"{request.kind.replace('_', ' ')} of {target}" if target else request.kind
    internal = unexpected(error, where, logger)
    if incidents is not None:
        incidents.crashed(job.current_target or "")
    return {
        "event": "result",
        "ok": False,
        "kind": request.kind,
        "error": error_info(internal),
    }


def stalled_lanes(lanes: Mapping[str, JobQueue | None], now: float, grace: float) -> list[str]:
    """The names of ``lanes`` whose jobs have waited over ``grace`` seconds at ``now``
    (monotonic) while they ran none: dead or wedged. The watchdog is pinged only when
    there is none."""
    return [name for name, lane in lanes.items() if lane is not None and lane.stalled(now, grace)]
