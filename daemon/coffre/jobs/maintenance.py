"""A maintenance job on one target: a check or a drill that lets go at once when asked.

The work itself is another module's (``coffre.jobs.checking.check_target``,
``coffre.jobs.drilling.drill_target``): they are handed in as
:class:`EntryPoints`, so the lane, the preemption and the daemon's loop are
tested with fakes. The target is held *yielding*
(:class:`coffre.jobs.queue.TargetHolds`): when a backup, a disk job or a
restore asks for it, the work is cancelled (the runner stops borg: SIGTERM
for a check or an extract), the target is let go, and the job ends
*interrupted*, which is not a failure: no run in state, no red light, no
failing metric. It is recorded (state's meta, the journal) and the scheduler
tries it again later: a rolling ``--max-duration`` check resumes where borg
last stopped, a drill starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from coffre.core.errors import CoffreError
from coffre.core.job_events import TargetOutcome
from coffre.core.messages import error_info
from coffre.jobs.queue import Preemption
from coffre.jobs.services import Services
from coffre.proof.maintenance_plan import Attempt, CheckKind, Drill
from coffre.storage.state import State

__all__ = [
    "INTERRUPTED",
    "CheckEntry",
    "DrillEntry",
    "EntryPoints",
    "checks_asked",
    "failed",
    "interrupted_key",
    "last_interruption",
    "record_interruption",
    "run_maintenance",
    "until_preempted",
]

#: The outcome of a maintenance job another job took the target from.
INTERRUPTED = "interrupted"

_T = TypeVar("_T")


class CheckEntry(Protocol):
    """``check_target``: borg check ``kind`` of ``target``, recorded; CoffreError as borg fails."""

    async def __call__(
        self, services: Services, target: str, kind: CheckKind, *, budget: float | None
    ) -> Attempt: ...


class DrillEntry(Protocol):
    """``drill_target``: a restore drill of ``target``'s latest archive, audited and recorded."""

    async def __call__(
        self, services: Services, target: str, *, person: Mapping[str, str] | None
    ) -> Drill: ...


@dataclass(frozen=True)
class EntryPoints:
    """The check and the drill, as the daemon runs them."""

    check: CheckEntry
    drill: DrillEntry


def checks_asked(asked: tuple[str, ...], offsite: bool) -> tuple[CheckKind, ...]:
    """The kinds of check to run on a target: those ``asked``, or its routine ones.

    Routine: a repository check and an archives check; an offsite target's
    repository is checked by its host, so only the archives. Raises
    ValueError for a kind that is not one.
    """
    if not asked:
        return ("archives",) if offsite else ("repository", "archives")
    known: dict[str, CheckKind] = {
        "repository": "repository",
        "archives": "archives",
        "data": "data",
    }
    unknown = [kind for kind in asked if kind not in known]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is no kind of check: repository, archives or data")
    return tuple(known[kind] for kind in asked)


async def until_preempted(
    work: Coroutine[Any, Any, _T], preemption: Preemption
) -> tuple[bool, _T | None]:
    """Await ``work`` unless the target is asked for first; ``(True, None)`` when it was.

    Asked for before it starts, ``work`` never runs; asked for while it runs,
    it is cancelled and awaited (borg stopped): whatever it raises then is
    dropped, the interruption is the outcome. Raises what ``work`` raises when
    it ends by itself; cancelled, cancels ``work`` too.
    """
    if preemption.asked.is_set():
        work.close()
        return True, None
    task = asyncio.ensure_future(work)
    asked = asyncio.create_task(preemption.asked.wait())
    try:
        await asyncio.wait({task, asked}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise
    finally:
        asked.cancel()
    if task.done():
        return False, task.result()
    task.cancel()
    # The work may record its cut short as it likes; the job's outcome is the interruption.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return True, None


def interrupted_key(target: str, kind: str) -> str:
    """State's meta key of the last interruption of ``kind`` on ``target``."""
    return f"maintenance.interrupted.{kind}.{target}"


def record_interruption(state: State, target: str, kind: str, at: datetime, by: str) -> None:
    """Remember that ``kind`` on ``target`` let go at ``at`` for a job of kind ``by``.

    Raises StateError when state cannot write.
    """
    state.set_meta(interrupted_key(target, kind), json.dumps({"at": at.isoformat(), "by": by}))


def last_interruption(state: State, target: str, kind: str) -> tuple[datetime, str] | None:
    """When ``kind`` on ``target`` was last interrupted, and for what kind of job; or None."""
    raw = state.get_meta(interrupted_key(target, kind))
    if raw is None:
        return None
    loaded = json.loads(raw)
    return datetime.fromisoformat(loaded["at"]), str(loaded["by"])


def _interrupted(
    services: Services, target: str, kind: str, preemption: Preemption, done: list[str]
) -> TargetOutcome:
    by = preemption.by or "another job"
    what = "drill" if kind == "drill" else f"{kind} check"
    services.logger.info(
        "%s of %s interrupted: a %s needs the target; it runs again later", what, target, by
    )
    with contextlib.suppress(CoffreError):  # a record lost: the scheduler tries again anyway
        record_interruption(services.state, target, kind, services.clock.now(), by)
    return {"ok": True, "outcome": INTERRUPTED, "interrupted_by": by, "checked": done}


async def run_maintenance(
    entries: EntryPoints,
    services: Services,
    target: str,
    work: tuple[CheckKind, ...] | None,
    preemption: Preemption,
    *,
    budget: float | None = None,
) -> TargetOutcome:
    """Run the checks ``work`` (None: a drill) on ``target`` until done or preempted.

    Out: ``ok`` and ``checked`` (the kinds done) or the drill's ``outcome``;
    ``outcome`` ``interrupted`` (still ok) when another job took the target;
    a check that found damage or a drill that did not pass is not ok.
    Raises CoffreError as the work does (the lane makes it the job's error).
    """
    done: list[str] = []
    if work is None:
        cut, drill = await until_preempted(entries.drill(services, target, person=None), preemption)
        if cut or drill is None:
            return _interrupted(services, target, "drill", preemption, done)
        return {"ok": drill.outcome == "ok", "outcome": drill.outcome}
    for kind in work:
        cut, attempt = await until_preempted(
            entries.check(services, target, kind, budget=budget), preemption
        )
        if cut or attempt is None:
            return _interrupted(services, target, kind, preemption, done)
        done.append(kind)
        if not attempt.ok:
            return {
                "ok": False,
                "checked": done,
                "error": {
                    "kind": "check_failed",
                    "message": f"the {kind} check of {target} found damage",
                    "hint": "docs/ says what to do; never `borg check --repair` alone",
                },
            }
    return {"ok": True, "checked": done}


def failed(error: CoffreError, done: list[str] | None = None) -> TargetOutcome:
    """The outcome of maintenance that raised ``error``."""
    return {"ok": False, "error": error_info(error), "checked": done or []}
