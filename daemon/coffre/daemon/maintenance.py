"""The daemon's maintenance loop: checks and drills when the plan says, never in the way.

It wakes when the plan (``coffre.proof.maintenance_plan``) says the next
maintenance may start, when a job ends in any lane (``poke``), and at least
every :data:`RECHECK` seconds. Each turn it makes the plan again from the
ledgers and, only when no job is queued or running in any lane (2 cores, one
disk: a backup, a disk job, a restore or another check all count), queues
the first due maintenance in the maintenance lane. One at a time, then.

A maintenance job interrupted by another job (``coffre.jobs.maintenance``)
is tried again: a scheduled one when the plan lists it again (its ledger did
not record it done), one a person asked (``coffre check``) once the box is
idle again, with the same request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from coffre.core.clock import Clock
from coffre.core.config_types import Config
from coffre.core.errors import CoffreError
from coffre.core.messages import JobOptions
from coffre.core.reports import JobView, MaintenanceView
from coffre.jobs import lanes
from coffre.jobs.maintenance import INTERRUPTED, EntryPoints
from coffre.jobs.queue import Job, JobQueue, JobRequest, JobResult
from coffre.proof.check_ledger import CheckLedger
from coffre.proof.drill_ledger import DrillLedger
from coffre.proof.maintenance_plan import (
    CheckHistory,
    DrillHistory,
    MaintenancePlan,
    MaintenancePolicy,
    Nightly,
    Work,
    plan,
    sites_of,
)
from coffre.storage.state import State
from coffre.targets.checking import check_target, drill_configured

__all__ = ["RECHECK", "MaintenanceLoop", "default_entry_points", "histories"]

#: The loop looks again at least this often (seconds): a lane's end pokes it sooner.
RECHECK = 300.0


def default_entry_points() -> EntryPoints:
    """The check and the drill the daemon runs, on targets reached by their names."""
    return EntryPoints(check=check_target, drill=drill_configured)


def histories(state: State) -> tuple[CheckHistory, DrillHistory]:
    """What the check and drill ledgers say was done."""
    return CheckLedger(state), DrillLedger(state)


def _request(work: Work) -> JobRequest:
    """The maintenance lane's job for ``work``, as the schedule asks it."""
    if work.kind == "drill":
        return JobRequest("drill", (work.target,), reason="schedule")
    options = JobOptions(checks=(work.kind,), budget=work.budget)
    return JobRequest("check", (work.target,), reason="schedule", options=options)


class MaintenanceLoop:
    """Queues due checks and drills in the maintenance lane, one at a time, on an idle box."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        logger: Any,
        queues: Mapping[str, JobQueue],
        ledgers: tuple[CheckHistory, DrillHistory],
        *,
        policy: MaintenancePolicy,
        enabled: bool = True,
        initialised: Callable[[str], bool] = lambda target: True,
    ) -> None:
        """``initialised``: whether a target's repository exists (state records its ID): a
        target without one has nothing to check yet. Raises nothing."""
        self._config = config
        self._clock = clock
        self._logger = logger
        self._queues = queues
        self._checks, self._drills = ledgers
        self._policy = policy
        self._enabled = enabled
        self._initialised = initialised
        self._wakeup = asyncio.Event()
        #: Asked by a person and interrupted: asked again once the box is idle.
        self._again: list[JobRequest] = []
        #: When each (target, kind) last ended here, whatever its ledger says: what failed
        #: before its ledger could record it is not tried again at once.
        self._tried: dict[tuple[str, str], datetime] = {}
        self.plan: MaintenancePlan | None = None

    @property
    def lane(self) -> JobQueue:
        return self._queues[lanes.MAINTENANCE]

    def poke(self) -> None:
        """Look again now (a job ended, a request came)."""
        self._wakeup.set()

    def busy(self) -> bool:
        """Whether any lane has a job queued or running (maintenance waits for an idle box)."""
        return any(q.running is not None or q.pending for q in self._queues.values())

    async def serve(self) -> None:
        """Turn until cancelled; raises nothing else (a turn that fails is logged)."""
        while True:
            self._wakeup.clear()
            now = self._clock.now()
            try:
                wake = self.turn(now)
            except CoffreError as error:
                self._logger.error("cannot tell which maintenance is due: %s", error)
                wake = now + timedelta(seconds=RECHECK)
            delay = min(max((wake - now).total_seconds(), 0.0), RECHECK)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)

    def turn(self, now: datetime) -> datetime:
        """Plan at ``now``; on an idle box queue the first due maintenance. Returns when to
        look again. Raises CoffreError when a ledger cannot be read."""
        if not self._enabled:
            return now + timedelta(seconds=RECHECK)
        schedule = self._config.schedule
        self.plan = plan(
            now,
            self._policy,
            [site for site in sites_of(self._config.targets) if self._initialised(site.name)],
            self._checks,
            self._drills,
            Nightly(schedule.daily, schedule.timezone),
        )
        if self.busy():
            return self.plan.wake
        if self._again:
            self._queue(self._again.pop(0), None)
            return self.plan.wake
        for work in self.plan.due:
            tried = self._tried.get((work.target, work.kind))
            if tried is None or now - tried >= self._policy.retry_after:
                self._queue(_request(work), work)
                break
        return self.plan.wake

    def ask(self, request: JobRequest) -> Job:
        """Queue a check or drill a person asked for; tried again if another job cuts it."""
        return self._queue(request, None)

    def _queue(self, request: JobRequest, work: Work | None) -> Job:
        job = self.lane.submit(request)
        self._logger.info(
            "%s of %s queued (%s)", request.kind, ", ".join(request.targets), request.reason
        )
        job.done.add_done_callback(lambda done: self._ended(request, work, done))
        return job

    def _ended(
        self, request: JobRequest, work: Work | None, done: asyncio.Future[JobResult]
    ) -> None:
        if done.cancelled():
            return
        result = done.result()
        cut = tuple(
            target
            for target, outcome in result.get("targets", {}).items()
            if outcome.get("outcome") == INTERRUPTED
        )
        if work is not None and not cut:
            self._tried[(work.target, work.kind)] = self._clock.now()
        again = JobRequest(request.kind, cut, reason="asked, again", options=request.options)
        # Two people asking the same check share one job: it is asked again once.
        if work is None and cut and again not in self._again:
            self._again.append(again)
        self.poke()

    def view(self, timezone: ZoneInfo) -> MaintenanceView:
        """What ``coffre status`` shows: the maintenance running or queued, and the next one."""
        lane = self.lane
        running: JobView | None = lane.running.describe() if lane.running else None
        upcoming = self.plan.next if self.plan is not None and self._enabled else None
        return {
            "enabled": self._enabled,
            "running": running,
            "queued": [job.describe() for job in lane.pending],
            "next_at": upcoming.at.astimezone(timezone).isoformat() if upcoming else None,
            "next_kind": upcoming.work.kind if upcoming else None,
            "next_target": upcoming.work.target if upcoming else None,
        }
