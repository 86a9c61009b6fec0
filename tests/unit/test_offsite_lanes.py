"""coffre.jobs.lanes: a run over two lanes, and the network lane's retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coffre.consistency.quiet import Consistency
from coffre.consistency.read_point import ReadPoint
from coffre.core.config_types import Config, LocalTarget, OffsiteTarget
from coffre.core.job_events import JobResult
from coffre.core.messages import Event
from coffre.jobs import lanes
from coffre.jobs.queue import Job, JobQueue, JobRequest, waiting_for
from tests.fakes import Clock, config

T0 = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)


def _config(retry_for: int = 10) -> Config:
    def offsite(name: str) -> OffsiteTarget:
        return OffsiteTarget(
            name=name, user="u", host="h", port=22, path="/r", retry_for=retry_for, retry_delay=5
        )

    local = LocalTarget("local", Path("/srv/repo"))
    return config(Path("/srv"), local, offsite("hds1"), offsite("hds2"), make_share=False)


def _ok(job: Job) -> JobResult:
    return {
        "event": "result",
        "ok": True,
        "kind": job.request.kind,
        "targets": {t: {"ok": True} for t in job.request.targets},
    }


def test_targets_go_to_their_lane() -> None:
    config = _config()
    assert lanes.split(config, ("hds2", "local", "hds1", "disque-a")) == [
        (lanes.MAIN, ("local", "disque-a")),
        (lanes.NETWORK, ("hds2", "hds1")),
    ]


def test_a_run_queues_the_network_part_after_the_main_part() -> None:
    order: list[tuple[str, tuple[str, ...]]] = []

    def lane(name: str) -> Callable[[Job], Awaitable[JobResult]]:
        async def execute(job: Job) -> JobResult:
            order.append((name, job.request.targets))
            job.publish({"event": "target_done", "target": job.request.targets[0], "ok": True})
            return _ok(job)

        return execute

    async def go() -> tuple[list[Event], JobResult]:
        main, network = JobQueue(lane("main")), JobQueue(lane("network"))
        workers = [asyncio.create_task(main.serve()), asyncio.create_task(network.serve())]
        run = lanes.Run(
            {lanes.MAIN: main, lanes.NETWORK: network},
            _config(),
            JobRequest("backup", ("local", "hds1", "hds2")),
        )
        assert len(network.pending) == 0  # not before the main part is done
        sent: list[Event] = []

        async def send(event: Mapping[str, object]) -> None:
            sent.append(dict(event))

        await run.follow(send)
        for worker in workers:
            worker.cancel()
        return sent, await run.done

    sent, result = asyncio.run(go())
    assert order == [("main", ("local",)), ("network", ("hds1", "hds2"))]
    kinds = [e["event"] for e in sent]
    assert kinds == ["queued", "target_done", "queued", "target_done", "result"]
    assert result["ok"] is True and set(result["targets"]) == {"local", "hds1", "hds2"}
    assert sent[-1] == result


def test_a_run_stopped_in_its_main_part_never_uploads() -> None:
    async def go() -> tuple[JobResult, int]:
        main, network = (
            JobQueue(lambda job: asyncio.sleep(0, _ok(job))),
            JobQueue(lambda job: asyncio.sleep(0, _ok(job))),
        )
        run = lanes.Run(
            {lanes.MAIN: main, lanes.NETWORK: network},
            _config(),
            JobRequest("backup", ("local", "hds1")),
        )
        job = main.pending[0]
        job.done.set_result(
            {
                "event": "result",
                "ok": False,
                "error": {"kind": "cancelled", "message": "", "hint": ""},
            }
        )
        return await run.done, len(network.pending)

    result, uploads = asyncio.run(go())
    assert uploads == 0 and result["error"]["kind"] == "cancelled"


def _retry(
    outcomes: dict[str, list[str | None]], retry_for: int = 10
) -> tuple[JobResult, list[tuple[str, ...]], list[float]]:
    """Run a network backup whose attempts end with ``outcomes`` (an error kind, or None: ok)."""
    clock = Clock(T0)
    attempts: list[tuple[str, ...]] = []
    waits: list[float] = []

    async def execute(job: Job) -> JobResult:
        attempts.append(job.request.targets)
        targets: dict[str, Any] = {}
        for name in job.request.targets:
            kind = outcomes[name].pop(0)
            targets[name] = {"ok": True} if kind is None else {"ok": False, "error": {"kind": kind}}
        return {"event": "result", "ok": all(t["ok"] for t in targets.values()), "targets": targets}

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    run = lanes.retrying(execute, _config(retry_for), clock, logging.getLogger("t"), sleep=sleep)

    async def go() -> JobResult:
        job = Job(id=1, request=JobRequest("backup", ("hds1", "hds2"), reason="nightly"))
        result = await run(job)
        assert job.request.targets == ("hds1", "hds2")
        return result

    return asyncio.run(go()), attempts, waits


def test_a_cut_upload_is_retried_with_back_off_and_the_other_host_is_not_delayed() -> None:
    result, attempts, waits = _retry(
        {"hds1": ["connection_closed", "unreachable", None], "hds2": [None]}
    )
    assert result["ok"] is True
    assert attempts == [("hds1", "hds2"), ("hds1",), ("hds1",)]
    assert waits == [5.0, 10.0]


def test_refusals_are_not_retried() -> None:
    result, attempts, _ = _retry({"hds1": ["host_key_mismatch"], "hds2": ["auth_refused"]})
    assert result["ok"] is False and attempts == [("hds1", "hds2")]
    assert result["targets"]["hds1"]["error"]["kind"] == "host_key_mismatch"


def test_retries_stop_at_the_end_of_the_retry_window() -> None:
    result, attempts, waits = _retry({"hds1": ["unreachable"] * 50, "hds2": [None]}, retry_for=1)
    assert result["ok"] is False
    assert sum(waits) <= 60 and len(attempts) == 1 + len(waits)
    assert waits[:3] == [5.0, 10.0, 20.0]


def test_reads_have_a_lane_of_their_own_and_say_what_they_wait_for() -> None:
    """A restore asked during a USB disk's backup does not queue behind it."""

    async def scenario() -> None:
        gate = asyncio.Event()
        started = asyncio.Event()

        async def execute(job: Job) -> JobResult:
            started.set()
            await gate.wait()
            return _ok(job)

        main, network, reads = JobQueue(execute), JobQueue(execute), JobQueue(execute)
        servers = [asyncio.create_task(lane.serve()) for lane in (main, reads)]
        queues = {lanes.MAIN: main, lanes.NETWORK: network, lanes.READS: reads}
        backup = lanes.Run(queues, _config(), JobRequest("backup", ("disque-a",)))
        await started.wait()
        restore = lanes.Run(queues, _config(), JobRequest("restore", ("local",)))
        assert restore.jobs[0] in reads.pending and restore.ahead() == ()
        # Offsite reads too: an upload does not hold them back in its lane.
        find = lanes.Run(queues, _config(), JobRequest("find", ("hds1",)))
        assert find.jobs[0] in reads.pending and not network.pending
        # Reads queue behind reads (a browse held open, say), and say so.
        assert find.ahead() == (restore.jobs[0],)
        restore.jobs[0].progress = 0.4
        assert waiting_for("find", find.ahead()) == (
            "waiting for the restore of local (40% done): the find starts after"
        )
        assert backup.ahead() == ()
        gate.set()
        await asyncio.gather(backup.done, restore.done, find.done)
        for server in servers:
            server.cancel()

    asyncio.run(scenario())


def test_both_parts_of_a_backup_run_read_one_point_let_go_when_the_run_ends() -> None:
    taken: list[str] = []
    released: list[ReadPoint] = []
    point = ReadPoint(Consistency("snapshot", True, 0.0, 0, T0), {Path("/srv/p"): "@GMT-x"})

    async def take() -> ReadPoint:
        taken.append("taken")
        return point

    async def execute(job: Job) -> JobResult:
        shared = job.request.shared
        assert shared is not None
        assert await shared.get(take, released.append) is point
        assert released == [], "held while a part still runs"
        return _ok(job)

    async def go() -> JobResult:
        main, network = JobQueue(execute), JobQueue(execute)
        workers = [asyncio.create_task(main.serve()), asyncio.create_task(network.serve())]
        run = lanes.Run(
            {lanes.MAIN: main, lanes.NETWORK: network},
            _config(),
            JobRequest("backup", ("local", "hds1")),
        )
        result = await run.done
        for worker in workers:
            worker.cancel()
        return result

    assert asyncio.run(go())["ok"]
    assert taken == ["taken"] and released == [point]
