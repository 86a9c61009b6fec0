"""Three lanes of jobs: the practice never waits on the network, nor support on backups.

A first upload to an HDS host can take days on a practice's uplink. Offsite
targets therefore get a lane of their own (a second :class:`JobQueue`, the
*network* lane); local targets and USB disks stay in the *main* lane and run
at once, whatever uploads. Reads for support (restore, find, browse, key
export), of any target, have the *reads* lane: a restore from the local
repository does not wait for a USB disk's first backup. "One job per
repository" is kept by the executor, which holds each target for the job
working on it; a read of the very target a backup works on waits for it.
Checks and restore drills (maintenance, ``coffre.proof``) have the
*maintenance* lane: one of them at a time on the box, each holding its target
yielding, so that any other job that wants the target stops it at once
(:class:`coffre.jobs.queue.TargetHolds`).

A request naming targets of both lanes (``coffre backup``, the nightly run)
becomes a :class:`Run`: its main part is queued at once, its network part
when the main part is done (the local copy is made first, the upload reads
the share after it; a snapshot, where there is one, is shared). The CLI
follows a Run as one job: one stream of events, one result.

The network lane retries (:func:`retrying`): a backup cut by the network is
tried again, with back-off, for the target's ``retry_for`` minutes; each
attempt resumes from the last checkpoint borg left in the repository.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from coffre.consistency.read_point import SharedPoint
from coffre.core.clock import Clock
from coffre.core.config_types import Config, OffsiteTarget
from coffre.core.job_events import JobResult, TargetOutcome
from coffre.core.messages import Event, Send
from coffre.core.model import RETRIABLE
from coffre.core.reports import JobView
from coffre.jobs.queue import READ_KINDS, Job, JobQueue, JobRequest, maintains

__all__ = [
    "MAIN",
    "MAINTENANCE",
    "NETWORK",
    "READS",
    "RETRIABLE",
    "Run",
    "lane_of",
    "retrying",
    "split",
]

MAIN = "main"
NETWORK = "network"
READS = "reads"
MAINTENANCE = "maintenance"


#: The longest wait between two attempts.
MAX_RETRY_DELAY = 1800.0


def lane_of(config: Config, target: str) -> str:
    """The lane of the target (or USB disk) called ``target``: offsite targets go to the network."""
    for configured in config.targets:
        if configured.name == target:
            return NETWORK if isinstance(configured, OffsiteTarget) else MAIN
    return MAIN


def split(
    config: Config, targets: tuple[str, ...], kind: str = "backup", *, maintenance: bool = False
) -> list[tuple[str, tuple[str, ...]]]:
    """``targets`` by lane, main first, each in the order asked; lanes without targets left out.

    Maintenance (``maintenance``, see :func:`coffre.jobs.queue.maintains`, or
    a check) goes to the maintenance lane whole, a read (``kind`` in
    READ_KINDS: a drill a person asked too) to the reads lane whole.
    """
    if maintenance or kind == "check":
        return [(MAINTENANCE, targets)] if targets else []
    if kind in READ_KINDS:
        return [(READS, targets)] if targets else []
    parts = []
    for lane in (MAIN, NETWORK):
        mine = tuple(t for t in targets if lane_of(config, t) == lane)
        if mine:
            parts.append((lane, mine))
    return parts


def _combine(kind: str, results: list[JobResult]) -> JobResult:
    """One result for the parts of a run: every target's outcome; ok when all are."""
    if len(results) == 1:
        return results[0]
    targets: dict[str, TargetOutcome] = {}
    for result in results:
        targets.update(result.get("targets", {}))
    combined: JobResult = {
        "event": "result",
        "ok": all(r["ok"] for r in results),
        "kind": kind,
        "targets": targets,
    }
    error = next((r["error"] for r in results if "error" in r), None)
    if error is not None:
        combined["error"] = error
    return combined


class Run:
    """A request spread over the lanes: the main part now, the network part after it.

    ``done`` gets the combined result once every part is done (or the
    network part is dropped because the main one was cancelled by a stop).
    """

    def __init__(self, lanes: Mapping[str, JobQueue], config: Config, request: JobRequest) -> None:
        self.request = request
        self.done: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        self.jobs: list[Job] = []
        self._lanes = lanes
        self._parts = split(config, request.targets, request.kind, maintenance=maintains(request))
        #: Every part of a backup reads the share as the first one did (one snapshot).
        self._shared = SharedPoint() if request.kind == "backup" else None
        self._results: list[JobResult] = []
        self._followers: list[asyncio.Queue[Event]] = []
        #: The run's result, as put in its followers' queues: told apart from a
        #: part's result (published by the part's job) by identity.
        self._combined: Event | None = None
        if not self._parts:
            raise ValueError("a run needs at least one target")
        self._submit(0)

    def _submit(self, index: int) -> None:
        lane, targets = self._parts[index]
        job = self._lanes[lane].submit(
            JobRequest(
                kind=self.request.kind,
                targets=targets,
                reason=self.request.reason,
                options=self.request.options,
                shared=self._shared,
            )
        )
        self.jobs.append(job)
        for follower in self._followers:
            job.listeners.append(follower)
            follower.put_nowait({"event": "queued", "job": job.describe()})
        job.done.add_done_callback(lambda done: self._part_done(index, done))

    def _part_done(self, index: int, done: asyncio.Future[JobResult]) -> None:
        job = self.jobs[index]
        for follower in self._followers:
            if follower in job.listeners:
                job.listeners.remove(follower)
        result = done.result() if not done.cancelled() else cancelled_result()
        self._results.append(result)
        error = result.get("error")
        stopped = error is not None and error["kind"] == "cancelled" and not result.get("targets")
        if index + 1 < len(self._parts) and not stopped:
            self._submit(index + 1)
            return
        combined = _combine(self.request.kind, self._results)
        if self._shared is not None:
            self._shared.close()
        if not self.done.done():
            self.done.set_result(combined)
        self._combined = {**combined}
        for follower in self._followers:
            follower.put_nowait(self._combined)

    def ahead(self) -> tuple[Job, ...]:
        """The jobs of its lane that the run's current part waits for (none: it runs now)."""
        lane, _ = self._parts[len(self.jobs) - 1]
        return self._lanes[lane].ahead_of(self.jobs[-1])

    def describe(self) -> JobView:
        """The first part's job as the CLI shows it, naming every target of the run."""
        first = self.jobs[0].describe()
        first["targets"] = list(self.request.targets)
        return first

    async def follow(self, send: Send) -> None:
        """Send every event of every part to ``send``, then the combined result."""
        events: asyncio.Queue[Event] = asyncio.Queue()
        if self.done.done():
            await send(self.done.result())
            return
        self._followers.append(events)
        current = self.jobs[-1]
        current.listeners.append(events)
        try:
            for job in self.jobs:
                await send({"event": "queued", "job": job.describe()})
            while True:
                event = await events.get()
                if event["event"] == "result":
                    if event is not self._combined:
                        continue  # a part's result: the run goes on
                    await send(event)
                    return
                await send(event)
        finally:
            self._followers.remove(events)
            for job in self.jobs:
                if events in job.listeners:
                    job.listeners.remove(events)


def cancelled_result() -> JobResult:
    """The result of a job the daemon stopped before it could run."""
    return {
        "event": "result",
        "ok": False,
        "error": {
            "kind": "cancelled",
            "message": "the daemon stopped before this job could run",
            "hint": "ask again once it is back",
        },
    }


def _retriable(outcome: TargetOutcome) -> bool:
    error = outcome.get("error")
    return not outcome["ok"] and error is not None and error["kind"] in RETRIABLE


def retrying(
    execute: Callable[[Job], Awaitable[JobResult]],
    config: Config,
    clock: Clock,
    logger: Any,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Callable[[Job], Awaitable[JobResult]]:
    """``execute`` for the network lane: backups cut by the network are tried again.

    Every target of the job is tried once; those that failed with a
    :data:`RETRIABLE` kind are tried again after their ``retry_delay``
    (doubled each time, up to :data:`MAX_RETRY_DELAY`), until ``retry_for``
    minutes after the job began. Hosts are independent: one host down delays
    no other's first attempt. During a retry the job's request names only
    the targets retried (what status shows); the result has every target's
    last outcome. Other job kinds run once.
    """
    offsite = {t.name: t for t in config.targets if isinstance(t, OffsiteTarget)}

    async def run(job: Job) -> JobResult:
        asked = job.request
        retries = _Retries(offsite, clock.now())
        result = await execute(job)
        if asked.kind != "backup":
            return result
        outcomes: dict[str, TargetOutcome] = dict(result.get("targets", {}))
        try:
            while True:
                now = clock.now()
                due = retries.due(outcomes, now)
                if not due:
                    break
                wait = retries.wait(due, now)
                logger.warning(
                    "offsite backup of %s failed (%s): trying again in %.0f s",
                    ", ".join(due),
                    ", ".join(_error_kind(outcomes[name]) for name in due),
                    wait,
                )
                job.publish({"event": "retry_wait", "targets": due, "seconds": wait})
                await sleep(wait)
                retries.backed_off(due)
                job.request = dataclasses.replace(asked, targets=tuple(due))
                again = await execute(job)
                outcomes.update(again.get("targets", {}))
        finally:
            job.request = asked
        return {
            **result,
            "ok": all(o["ok"] for o in outcomes.values()),
            "targets": outcomes,
        }

    return run


class _Retries:
    """The retry schedule of one network job begun at ``began``: who is due, and when.

    Each offsite target waits its own ``retry_delay``, doubled after each
    attempt (up to :data:`MAX_RETRY_DELAY`), until ``retry_for`` minutes after
    ``began``.
    """

    def __init__(self, offsite: Mapping[str, OffsiteTarget], began: datetime) -> None:
        self._offsite = offsite
        self._began = began
        self._delays = {name: float(t.retry_delay) for name, t in offsite.items()}

    def _deadline(self, name: str) -> datetime:
        return _deadline(self._began, self._offsite[name].retry_for)

    def due(self, outcomes: Mapping[str, TargetOutcome], now: datetime) -> list[str]:
        """The offsite targets to try again: failed with a RETRIABLE kind, time left."""
        return [
            name
            for name, outcome in outcomes.items()
            if name in self._offsite and _retriable(outcome) and now < self._deadline(name)
        ]

    def wait(self, due: list[str], now: datetime) -> float:
        """Seconds before trying ``due`` again: the shortest delay, never past the last deadline."""
        wait = min(self._delays[name] for name in due)
        last = max(self._deadline(name) for name in due)
        return max(min(wait, (last - now).total_seconds()), 0.0)

    def backed_off(self, due: list[str]) -> None:
        """``due`` were tried again: their next delay doubles."""
        for name in due:
            self._delays[name] = min(self._delays[name] * 2, MAX_RETRY_DELAY)


def _error_kind(outcome: TargetOutcome) -> str:
    error = outcome.get("error")
    return "unknown" if error is None else error["kind"]


def _deadline(began: datetime, minutes: int) -> datetime:
    return began + timedelta(minutes=minutes)
