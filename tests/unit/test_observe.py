"""The daemon's hook: lights refreshed when a job starts, once the lane let it go, and after
disk events; facts read from state and the lanes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coffre.core.config_types import LocalTarget
from coffre.core.health import Health
from coffre.core.job_events import JobResult
from coffre.core.outcomes import BackupWarnings, Reason
from coffre.jobs.queue import Job, JobQueue, JobRequest
from coffre.observe.facts import Observer
from coffre.observe.leds import PATTERNS, Lights, Pattern
from coffre.observe.observability import Observability
from coffre.storage.state import RunStats, State
from tests.fakes import Clock, config

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
LOG = logging.getLogger("test.observe")


class Writer:
    def __init__(self) -> None:
        self.written: list[Pattern] = []

    def write(self, pattern: Pattern) -> bool:
        self.written.append(pattern)
        return True


class NoBorg:
    async def version(self) -> str:
        raise AssertionError("not asked in these tests")


def _setup(tmp_path: Path) -> tuple[Observability, Writer, State]:
    practice = config(tmp_path, LocalTarget("local", tmp_path / "repo"))
    state = State.open(tmp_path / "state.db", logger=LOG, now=T0)
    observed = Observability(practice, Observer(practice, state, Clock(T0)), NoBorg(), LOG)
    writer = Writer()
    observed.lights = Lights(writer, LOG)
    return observed, writer, state


def test_a_job_lights_working_at_its_start_and_ok_once_the_lane_let_it_go(
    tmp_path: Path,
) -> None:
    observed, writer, _ = _setup(tmp_path)

    async def go() -> list[Pattern]:
        release = asyncio.Event()
        started = asyncio.Event()

        async def execute(job: Job) -> JobResult:
            started.set()
            await release.wait()
            return {"event": "result", "ok": True}

        queue = JobQueue(observed.around(execute))
        observed.observer.main = queue
        serving = asyncio.create_task(queue.serve())
        job = queue.submit(JobRequest("backup", ("local",)))
        await started.wait()
        during = list(writer.written)
        release.set()
        # The end's refresh was scheduled before the job's result: it ran already.
        await job.done
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        return during

    during = asyncio.run(go())
    assert during == [PATTERNS[Health.WORKING]]
    assert writer.written == [PATTERNS[Health.WORKING], PATTERNS[Health.OK]]


def test_a_disk_event_is_handled_then_the_lights_refreshed(tmp_path: Path) -> None:
    observed, writer, _ = _setup(tmp_path)
    seen: list[Any] = []
    handle = observed.after(seen.append)
    handle("an event")
    assert seen == ["an event"]
    assert writer.written == [PATTERNS[Health.OK]]


def test_unreadable_state_leaves_the_lights_as_they_were(tmp_path: Path) -> None:
    observed, writer, state = _setup(tmp_path)
    observed.refresh()
    state.close()
    observed.refresh()  # logged, not raised: a job must never fail for the lights
    assert writer.written == [PATTERNS[Health.OK]]


def test_a_backup_with_warnings_is_read_as_the_last_archive_and_lights_amber(
    tmp_path: Path,
) -> None:
    observed, writer, state = _setup(tmp_path)
    partial = BackupWarnings.of({Reason.IO_ERROR: 1})
    for hours in (3, 2):
        run = state.start_run("local", "backup", T0 - timedelta(hours=hours))
        stats = RunStats(f"cabinet-{hours}", 10, 5, 1, 40, partial)
        state.finish_run(run, T0 - timedelta(hours=hours), stats=stats)
    # Then a disk-job-like run that found its archive there: it made none.
    skipped = state.start_run("local", "backup", T0 - timedelta(hours=1))
    state.finish_run(skipped, T0 - timedelta(hours=1))

    facts = observed.observer.facts()
    [local] = facts.targets
    assert local.last_success is not None and local.last_success.id == skipped
    assert local.last_stats is not None and local.last_stats.archive == "cabinet-2"
    assert local.last_stats.warnings == partial
    assert local.warnings_in_a_row == 2
    assert facts.warnings == {"local": 2}
    observed.refresh()
    assert writer.written == [PATTERNS[Health.ATTENTION]]
