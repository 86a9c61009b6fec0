"""The daemon's maintenance loop: one job at a time, only on an idle box, cut ones again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from coffre.core.messages import JobOptions
from coffre.daemon.maintenance import MaintenanceLoop, histories
from coffre.jobs import lanes
from coffre.jobs.queue import Job, JobQueue, JobRequest, JobResult
from coffre.proof.maintenance_plan import MaintenancePolicy
from coffre.storage.state import State
from tests.fakes import LOCAL, Clock, config

NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)  # 15:00 in Paris, far from the 01:30 nightly


async def _never(job: Job) -> JobResult:
    raise AssertionError("the lanes are not served in these tests")


def _loop(
    tmp_path: Path, clock: Clock, *, enabled: bool = True, initialised: bool = True
) -> MaintenanceLoop:
    queues = {
        name: JobQueue(_never)
        for name in (lanes.MAIN, lanes.NETWORK, lanes.READS, lanes.MAINTENANCE)
    }
    return MaintenanceLoop(
        config(tmp_path, LOCAL),
        clock,
        _Logger(),
        queues,
        histories(State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=NOW)),
        policy=MaintenancePolicy(),
        enabled=enabled,
        initialised=lambda target: initialised,
    )


class _Logger:
    def info(self, *args: Any, **kwargs: Any) -> None:
        pass

    def error(self, *args: Any, **kwargs: Any) -> None:
        pass


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def _end(job: Job, **outcome: Any) -> None:
    """``job`` ends with ``outcome`` on each of its targets (as the lane would set it)."""
    targets = {t: {"ok": True, **outcome} for t in job.request.targets}
    result = {"event": "result", "ok": True, "kind": job.request.kind, "targets": targets}
    job.done.set_result(cast(JobResult, result))


def test_an_idle_box_gets_the_first_due_maintenance_and_only_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = _loop(tmp_path, Clock(NOW))
        loop.turn(NOW)
        (job,) = loop.lane.pending
        assert job.request == JobRequest(
            "check",
            ("local",),
            reason="schedule",
            options=JobOptions(checks=("repository",), budget=3600.0),
        )
        loop.turn(NOW)  # it waits in its lane: nothing more is queued
        assert loop.lane.pending == (job,)

    _run(scenario)


def test_nothing_starts_while_any_other_lane_has_a_job(tmp_path: Path) -> None:
    async def scenario() -> None:
        for lane in (lanes.MAIN, lanes.NETWORK, lanes.READS):
            loop = _loop(tmp_path, Clock(NOW))
            loop._queues[lane].submit(JobRequest("backup", ("local",)))
            loop.turn(NOW)
            assert loop.lane.pending == ()

    _run(scenario)


def test_a_check_a_person_asked_and_a_backup_cut_runs_again_once_idle(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(NOW)
        loop = _loop(tmp_path, clock)
        asked = loop.ask(JobRequest("check", ("local",), options=JobOptions(checks=("data",))))
        loop.lane._pending.clear()  # the lane took it
        _end(asked, outcome="interrupted", interrupted_by="backup")
        await asyncio.sleep(0)  # the done callbacks run
        backup = loop._queues[lanes.MAIN].submit(JobRequest("backup", ("local",)))
        loop.turn(clock.now())
        assert loop.lane.pending == ()  # not while the backup runs
        loop._queues[lanes.MAIN]._pending.remove(backup)
        loop.turn(clock.now())
        assert len(loop.lane.pending) == 1
        again = loop.lane.pending[0]
        assert again.request.kind == "check"
        assert again.request.options.checks == ("data",)
        assert again.request.reason == "asked, again"

    _run(scenario)


def test_a_scheduled_check_that_failed_unrecorded_is_not_tried_again_at_once(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        clock = Clock(NOW)
        loop = _loop(tmp_path, clock)
        loop.turn(NOW)
        (first,) = loop.lane.pending
        loop.lane._pending.clear()
        first.done.set_result({"event": "result", "ok": False, "targets": {"local": {"ok": False}}})
        await asyncio.sleep(0)
        loop.turn(NOW + timedelta(minutes=5))
        (second,) = loop.lane.pending  # the next due kind, not the same one again
        assert second.request.options.checks == ("archives",)

    _run(scenario)


def test_a_scheduled_check_interrupted_is_planned_again_not_forgotten(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = _loop(tmp_path, Clock(NOW))
        loop.turn(NOW)
        (first,) = loop.lane.pending
        loop.lane._pending.clear()
        _end(first, outcome="interrupted", interrupted_by="restore")
        await asyncio.sleep(0)
        loop.turn(NOW + timedelta(minutes=1))
        (again,) = loop.lane.pending
        assert again.request == first.request

    _run(scenario)


def test_status_names_the_next_maintenance(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = _loop(tmp_path, Clock(NOW))
        loop.turn(NOW)
        view = loop.view(ZoneInfo("Europe/Paris"))
        assert view["enabled"] is True
        assert view["next_kind"] == "repository" and view["next_target"] == "local"
        assert view["next_at"] == "2026-11-28T15:00:00+01:00"
        assert [job["kind"] for job in view["queued"]] == ["check"]

    _run(scenario)


def test_a_daemon_without_checks_queues_none(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = _loop(tmp_path, Clock(NOW), enabled=False)
        loop.turn(NOW)
        assert loop.lane.pending == ()
        assert loop.view(ZoneInfo("Europe/Paris"))["next_at"] is None

    _run(scenario)


def test_the_loop_wakes_when_poked_and_turns(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock(NOW)
        loop = _loop(tmp_path, clock)
        loop._queues[lanes.MAIN].submit(JobRequest("backup", ("local",)))  # busy at first
        serving = asyncio.create_task(loop.serve())
        await asyncio.sleep(0)
        assert loop.lane.pending == ()
        loop._queues[lanes.MAIN]._pending.clear()  # the backup ended
        loop.poke()
        deadline = asyncio.get_running_loop().time() + 5
        while not loop.lane.pending:
            assert asyncio.get_running_loop().time() < deadline, "the poke was not heard"
            await asyncio.sleep(0)
        serving.cancel()

    _run(scenario)


def test_a_target_without_a_repository_yet_has_nothing_to_check(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = _loop(tmp_path, Clock(NOW), initialised=False)
        loop.turn(NOW)
        assert loop.lane.pending == ()
        assert loop.view(ZoneInfo("Europe/Paris"))["next_at"] is None

    _run(scenario)
