"""The job queue: one job at a time, merged requests, waiters told of the result."""

from __future__ import annotations

import asyncio

import pytest

from coffre.core.job_events import JobResult
from coffre.core.messages import Event, JobOptions
from coffre.jobs.queue import Job, JobQueue, JobRequest, TargetHolds


def _backup(*targets: str, reason: str = "asked") -> JobRequest:
    return JobRequest(kind="backup", targets=targets, reason=reason)


def test_a_backup_request_merges_into_the_queued_backup() -> None:
    async def scenario() -> None:
        queue = JobQueue(lambda job: asyncio.sleep(0, {"event": "result", "ok": True}))
        first = queue.submit(_backup("local"))
        second = queue.submit(_backup("usb", "local"))
        assert first is second
        assert first.request.targets == ("local", "usb")
        assert len(queue.pending) == 1

    asyncio.run(scenario())


def test_a_prune_does_not_merge_into_a_backup_nor_a_different_prune() -> None:
    async def scenario() -> None:
        queue = JobQueue(lambda job: asyncio.sleep(0, {"event": "result", "ok": True}))
        queue.submit(_backup("local"))
        dry = queue.submit(JobRequest("prune", ("local",), options=JobOptions(dry_run=True)))
        real = queue.submit(JobRequest("prune", ("local",)))
        again = queue.submit(JobRequest("prune", ("local",)))
        assert len(queue.pending) == 3
        assert dry is not real and real is again

    asyncio.run(scenario())


def test_jobs_run_one_at_a_time_in_order_and_the_running_one_is_not_merged_into() -> None:
    async def scenario() -> None:
        running = 0
        most = 0
        order: list[tuple[str, ...]] = []
        gate = asyncio.Event()
        started = asyncio.Event()

        async def execute(job: Job) -> JobResult:
            nonlocal running, most
            running += 1
            most = max(most, running)
            order.append(job.request.targets)
            started.set()
            await gate.wait()
            running -= 1
            return {"event": "result", "ok": True}

        queue = JobQueue(execute)
        server = asyncio.create_task(queue.serve())
        first = queue.submit(_backup("a"))
        await asyncio.wait_for(started.wait(), 5)
        second = queue.submit(_backup("b"))  # the running job must not absorb it
        assert second is not first
        gate.set()
        await asyncio.wait_for(asyncio.gather(first.done, second.done), timeout=5)
        server.cancel()
        assert order == [("a",), ("b",)]
        assert most == 1

    asyncio.run(scenario())


def test_listeners_receive_events_and_the_result() -> None:
    async def scenario() -> None:
        async def execute(job: Job) -> JobResult:
            job.publish({"event": "progress", "target": "a", "nfiles": 3})
            return {"event": "result", "ok": True}

        queue = JobQueue(execute)
        job = queue.submit(_backup("a"))
        events: asyncio.Queue[Event] = asyncio.Queue()
        job.listeners.append(events)
        server = asyncio.create_task(queue.serve())
        got = [await asyncio.wait_for(events.get(), 5), await asyncio.wait_for(events.get(), 5)]
        server.cancel()
        assert got == [
            {"job": job.id, "event": "progress", "target": "a", "nfiles": 3},
            {"job": job.id, "event": "result", "ok": True},
        ]

    asyncio.run(scenario())


def test_cancelling_the_queue_cancels_the_running_job_and_tells_its_waiters() -> None:
    async def scenario() -> None:
        started = asyncio.Event()
        cancelled = False

        async def execute(job: Job) -> JobResult:
            nonlocal cancelled
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled = True
                raise
            raise AssertionError("unreachable")

        queue = JobQueue(execute)
        job = queue.submit(_backup("a"))
        server = asyncio.create_task(queue.serve())
        await asyncio.wait_for(started.wait(), 5)
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        assert cancelled
        result = job.done.result()
        assert result["ok"] is False
        assert result["error"]["kind"] == "cancelled"

    asyncio.run(scenario())


def test_one_job_per_target_across_lanes_and_the_second_is_told_why() -> None:
    async def scenario() -> None:
        holds = TargetHolds()
        backup = Job(id=1, request=JobRequest("backup", ("local",)))
        backup.progress = 0.25
        restore = Job(id=2, request=JobRequest("restore", ("local",)))
        other = Job(id=3, request=JobRequest("disk", ("disque-a",)))
        told: asyncio.Queue[Event] = asyncio.Queue()
        restore.listeners.append(told)
        order: list[str] = []
        release = asyncio.Event()

        async def run(job: Job, target: str, name: str, wait: asyncio.Event | None) -> None:
            async with holds.hold(target, job):
                order.append(f"{name} in")
                if wait is not None:
                    await wait.wait()
                order.append(f"{name} out")

        first = asyncio.create_task(run(backup, "local", "backup", release))
        await asyncio.sleep(0)
        second = asyncio.create_task(run(restore, "local", "restore", None))
        # Another target is not held back by them.
        await run(other, "disque-a", "disk", None)
        assert order == ["backup in", "disk in", "disk out"]
        assert (await told.get()) == {
            "job": 2,
            "event": "waiting",
            "message": "waiting for the backup of local (25% done): the restore starts after",
        }
        release.set()
        await asyncio.gather(first, second)
        assert order[3:] == ["backup out", "restore in", "restore out"]

    asyncio.run(scenario())
