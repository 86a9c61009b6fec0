"""The job queue of one lane: its jobs one at a time, requests for a queued job merged into it.

A job is a request (what to do, on which targets) plus the people waiting for
it (control-socket clients asking ``--wait``). The queue knows nothing of
borg: the daemon hands it an ``execute`` coroutine that runs one job.

No exception leaves :meth:`JobQueue.serve` but its cancellation: whatever
escapes ``execute`` fails that one job (``on_crash`` makes its result, kind
``internal``), its waiters get that result, and the next job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from coffre.consistency.read_point import SharedPoint
from coffre.core.job_events import JobEvent, JobResult
from coffre.core.messages import Event, JobOptions
from coffre.core.reports import JobView
from coffre.jobs.supervision import job_crashed
from coffre.storage.logs import LOGGER_NAME

__all__ = [
    "MAINTENANCE_KINDS",
    "READ_KINDS",
    "Job",
    "JobEvent",
    "JobKind",
    "JobQueue",
    "JobRequest",
    "JobResult",
    "Preemption",
    "TargetHolds",
    "maintains",
    "waiting_for",
]

JobKind = Literal[
    "backup",
    "prune",
    "init",
    "disk",
    "enroll",
    "restore",
    "find",
    "browse",
    "key_export",
    "check",
    "drill",
]

#: Jobs that read a repository for a person (support): their own lane, never merged.
READ_KINDS: frozenset[JobKind] = frozenset({"restore", "find", "browse", "key_export", "drill"})

#: Jobs proving restores work (borg check, restore drills): the maintenance lane, and
#: they hold their target *yielding* (:class:`TargetHolds`): any other job takes it.
MAINTENANCE_KINDS: frozenset[JobKind] = frozenset({"check", "drill"})


def maintains(request: JobRequest) -> bool:
    """Whether ``request`` is maintenance: a check, or a drill the schedule asked.

    A drill a person asked (``coffre drill``: ``asked_by`` set) is a read, as a
    restore is: the reads lane, the target held until it is done, a USB disk
    waited for. The schedule's drills and every check yield their target.
    """
    return request.kind == "check" or (request.kind == "drill" and not request.options.asked_by)


@dataclass(frozen=True)
class JobRequest:
    """What is asked: a kind, the targets it touches (in order), why, and the kind's options."""

    kind: JobKind
    targets: tuple[str, ...]
    reason: str = "asked"
    options: JobOptions = field(default_factory=JobOptions)
    #: The read point the parts of one run share (its snapshot); None: the job's own.
    shared: SharedPoint | None = field(default=None, compare=False)


@dataclass
class Job:
    """A queued or running job and who waits for its events."""

    id: int
    request: JobRequest
    listeners: list[asyncio.Queue[Event]] = field(default_factory=list)
    done: asyncio.Future[JobResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    progress: float | None = None
    current_target: str | None = None
    #: Borg's latest counters for the current target (files, bytes read so far).
    counters: dict[str, int] = field(default_factory=dict)
    #: Set when the person who asked is gone: a browse mount ends with them.
    released: asyncio.Event = field(default_factory=asyncio.Event)
    #: When (time.monotonic) the asker last said a browse mount is in use.
    last_used: float = 0.0

    def publish(self, event: JobEvent) -> None:
        """Hand ``event``, with the job's id, to every listener (never blocks: unbounded queues)."""
        stamped: Event = {"job": self.id, **event}
        for queue in self.listeners:
            queue.put_nowait(stamped)

    def describe(self) -> JobView:
        """The job as the CLI shows it (status, a ``queued`` event)."""
        return {
            "id": self.id,
            "kind": self.request.kind,
            "targets": list(self.request.targets),
            "reason": self.request.reason,
            "current_target": self.current_target,
            "progress": self.progress,
            "counters": dict(self.counters),
        }


def _mergeable(queued: JobRequest, new: JobRequest) -> bool:
    # Only a backup absorbs another: two backups queued would read the share
    # twice for nothing. A prune or an init is cheap and keeps its own options.
    if queued.kind != new.kind or queued.kind in READ_KINDS:
        # A person's read is theirs alone (a browse ends when its asker leaves).
        return False
    if queued.kind == "backup":
        return True
    return queued == new


class JobQueue:
    """FIFO of jobs, run one at a time by ``execute``.

    ``submit`` returns the job the request landed in: a new one, or the queued
    one it was merged into (a backup request joins a queued backup, its
    targets added). The running job is never merged into: it may have passed
    the targets already.
    """

    def __init__(
        self,
        execute: Callable[[Job], Awaitable[JobResult]],
        *,
        on_crash: Callable[[Job, Exception], JobResult] | None = None,
    ) -> None:
        self._execute = execute
        self._on_crash = on_crash or (
            lambda job, error: job_crashed(job, error, logging.getLogger(LOGGER_NAME))
        )
        self._pending: list[Job] = []
        self._wakeup = asyncio.Event()
        self._ids = itertools.count(1)
        self.running: Job | None = None
        #: time.monotonic() when a job was last queued while none ran (None: none waits).
        self._waiting_since: float | None = None

    @property
    def pending(self) -> tuple[Job, ...]:
        return tuple(self._pending)

    def touches(self, target: str) -> bool:
        """Whether a queued or running job names ``target``."""
        jobs = [*self._pending, *([self.running] if self.running else [])]
        return any(target in job.request.targets for job in jobs)

    def ahead_of(self, job: Job) -> tuple[Job, ...]:
        """The jobs that run before ``job``: the running one, then those queued before it."""
        running = () if self.running is None or self.running is job else (self.running,)
        if job not in self._pending:
            return running
        return (*running, *self._pending[: self._pending.index(job)])

    def submit(self, request: JobRequest) -> Job:
        """Queue ``request`` (or merge it into a queued job of the same kind)."""
        for job in self._pending:
            if _mergeable(job.request, request):
                extra = tuple(t for t in request.targets if t not in job.request.targets)
                if extra:
                    job.request = JobRequest(
                        kind=job.request.kind,
                        targets=job.request.targets + extra,
                        reason=job.request.reason,
                        options=job.request.options,
                        shared=job.request.shared,
                    )
                return job
        job = Job(id=next(self._ids), request=request)
        self._pending.append(job)
        if self.running is None and self._waiting_since is None:
            self._waiting_since = time.monotonic()
        self._wakeup.set()
        return job

    def stalled(self, now: float, grace: float) -> bool:
        """Whether jobs wait for more than ``grace`` seconds (at ``now``, monotonic) and none runs.

        A serving lane picks a waiting job within one turn of the loop: one
        that does not is dead or wedged, and the watchdog must stop being pinged.
        """
        return (
            self.running is None
            and bool(self._pending)
            and self._waiting_since is not None
            and now - self._waiting_since > grace
        )

    async def serve(self) -> None:
        """Run jobs one after the other until cancelled; never raises anything else.

        An exception escaping a job (anything but cancellation) fails that job
        only: ``on_crash`` turns it into the job's result (and logs it), its
        waiters get it, and the next job runs. When cancelled while a job runs,
        the job's coroutine is cancelled too (borg gets SIGINT and leaves a
        checkpoint), the job's waiters are told, and CancelledError propagates.
        """
        while True:
            while not self._pending:
                self._waiting_since = None
                self._wakeup.clear()
                await self._wakeup.wait()
            job = self._pending.pop(0)
            self.running = job
            self._waiting_since = None
            try:
                result = await self._execute(job)
            except Exception as error:  # noqa: BLE001 - the lane's one net: the job fails, not the lane
                result = self._on_crash(job, error)
            except asyncio.CancelledError:
                cancelled: JobResult = {
                    "event": "result",
                    "ok": False,
                    "error": {
                        "kind": "cancelled",
                        "message": "the daemon is stopping; the job was interrupted",
                        "hint": "it runs again at the next start",
                    },
                }
                job.publish(cancelled)
                if not job.done.done():
                    job.done.set_result(cancelled)
                raise
            finally:
                self.running = None
                if self._pending:
                    self._waiting_since = time.monotonic()
            job.publish(result)
            if not job.done.done():
                job.done.set_result(result)


def waiting_for(kind: str, ahead: Sequence[Job]) -> str:
    """What a person asking a ``kind`` job is told when ``ahead`` run first (the first runs).

    ``"waiting for the backup of disque-a (40% done) and 1 more job(s): the
    restore starts after"``. Names targets and kinds only, never paths.
    """
    first = ahead[0]
    what = f"the {first.request.kind} of {', '.join(first.request.targets)}"
    if first.progress is not None:
        what += f" ({first.progress:.0%} done)"
    more = f" and {len(ahead) - 1} more job(s)" if len(ahead) > 1 else ""
    return f"waiting for {what}{more}: the {kind.replace('_', ' ')} starts after"


@dataclass
class Preemption:
    """What a yielding holder of a target is told: ``asked`` is set when another job wants it.

    ``by`` is the kind of the first job that asked (``"backup"``, ``"restore"``...).
    """

    asked: asyncio.Event = field(default_factory=asyncio.Event)
    by: str | None = None

    def ask(self, kind: str) -> None:
        """Another job (of ``kind``) wants the target: tell the holder (the first asker named)."""
        if self.by is None:
            self.by = kind
        self.asked.set()


class TargetHolds:
    """One job at a time on each target, across the lanes.

    The lanes (main, network, reads, maintenance) run side by side; two of their
    jobs may reach one repository (a restore from the disk a backup writes to).
    The second waits in :meth:`hold` (borg would make it wait on the
    repository's lock, then fail), and its people are told what for.

    A maintenance job (a check, a drill) holds its target *yielding*: it is
    never in the way. A job that asks for a target a yielding job holds sets
    that holder's :class:`Preemption` at once; the holder stops its work (borg
    gets its stop signal) and lets go, and the asker gets the target without
    waiting for the check to end. A yielding job that gets a target another
    job already waits for is told at once too.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, Job] = {}
        self._preemptions: dict[str, Preemption] = {}
        #: Jobs (not yielding) waiting for each target: a yielding one that gets it yields.
        self._wanting: dict[str, list[str]] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, target: str, job: Job, *, yielding: bool = False
    ) -> AsyncIterator[Preemption]:
        """Hold ``target`` for ``job`` inside the block; wait (and say so) while another does.

        Yields the job's :class:`Preemption`: only a ``yielding`` holder is
        ever asked to let go (others' is never set). Raises nothing of its own.
        """
        lock = self._locks.setdefault(target, asyncio.Lock())
        holder = self._holders.get(target)
        if not yielding:
            preemption = self._preemptions.get(target)
            if preemption is not None:
                preemption.ask(job.request.kind)
        if lock.locked() and holder is not None:
            job.publish({"event": "waiting", "message": waiting_for(job.request.kind, [holder])})
        wanting = self._wanting.setdefault(target, [])
        if not yielding:
            wanting.append(job.request.kind)
        try:
            await lock.acquire()
        finally:
            if not yielding:
                wanting.remove(job.request.kind)
        mine = Preemption()
        if yielding:
            self._preemptions[target] = mine
            if wanting:
                mine.ask(wanting[0])
        self._holders[target] = job
        try:
            yield mine
        finally:
            del self._holders[target]
            if yielding:
                del self._preemptions[target]
            lock.release()
