"""A check or a drill is never in the way: any other job takes its target at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coffre.core.errors import BorgError
from coffre.core.messages import JobOptions
from coffre.daemon.executor import Executor
from coffre.jobs.maintenance import EntryPoints, checks_asked, last_interruption, until_preempted
from coffre.jobs.queue import Job, JobQueue, JobRequest, JobResult, Preemption, TargetHolds
from coffre.jobs.services import Services
from coffre.proof.maintenance_plan import CheckKind
from coffre.storage.state import State
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, FakeRepository, config

NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Checked:
    at: datetime
    ok: bool = True
    complete: bool = True


@dataclass(frozen=True)
class Drilled:
    at: datetime
    outcome: str = "ok"


class FakeWork:
    """Fakes of check_target and drill_target: each runs until released (a long borg),
    and says when it was stopped (as the runner stops borg on cancellation)."""

    def __init__(self, *, ok: bool = True) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.stopped: list[str] = []
        self.calls: list[tuple[str, str, float | None]] = []
        self._ok = ok

    async def _long(self, what: str) -> None:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.stopped.append(what)
            raise

    async def check(
        self, services: Services, target: str, kind: CheckKind, *, budget: float | None
    ) -> Checked:
        self.calls.append((target, kind, budget))
        await self._long(kind)
        return Checked(NOW, ok=self._ok)

    async def drill(
        self, services: Services, target: str, *, person: Mapping[str, str] | None
    ) -> Drilled:
        self.calls.append((target, "drill", None))
        await self._long("drill")
        return Drilled(NOW, "ok" if self._ok else "mismatch")

    def entries(self) -> EntryPoints:
        return EntryPoints(check=self.check, drill=self.drill)


def _services(tmp_path: Path) -> Services:
    state = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=NOW)
    state.record_repository("local", REPO_ID, "/srv/repo", NOW)
    return Services(
        config=config(tmp_path, LOCAL),
        state=state,
        borg=FakeBorg(),
        clock=Clock(NOW),
        logger=logging.getLogger("t"),
    )


def _check(target: str = "local", *kinds: str) -> JobRequest:
    return JobRequest("check", (target,), reason="schedule", options=JobOptions(checks=kinds))


def test_a_backup_takes_the_target_of_a_running_check_at_once(tmp_path: Path) -> None:
    """The issue's case in miniature: a long check runs when the nightly comes."""

    async def scenario() -> tuple[JobResult, JobResult, FakeWork, list[str]]:
        work = FakeWork()
        executor = Executor(
            _services(tmp_path), {"local": FakeRepository()}, maintenance=work.entries()
        )
        order: list[str] = []

        async def execute(job: Job) -> JobResult:
            order.append(f"{job.request.kind} starts")
            result = await executor(job)
            order.append(f"{job.request.kind} ends")
            return result

        maintenance, main = JobQueue(execute), JobQueue(execute)
        lanes = [asyncio.create_task(maintenance.serve()), asyncio.create_task(main.serve())]
        check = maintenance.submit(_check("local", "data"))
        await work.started.wait()
        backup = main.submit(JobRequest("backup", ("local",), reason="nightly"))
        # Never released: without preemption this would hang (pytest's timeout).
        results = await asyncio.wait_for(asyncio.gather(check.done, backup.done), 5)
        for lane in lanes:
            lane.cancel()
        return results[0], results[1], work, order

    checked, backed_up, work, order = asyncio.run(scenario())
    assert work.stopped == ["data"]  # borg's check was stopped, not waited for
    assert checked["ok"] is True  # an interruption is no failure
    outcome = checked["targets"]["local"]
    assert outcome["outcome"] == "interrupted"
    assert outcome["interrupted_by"] == "backup"
    assert backed_up["ok"] is True
    assert order.index("check ends") < order.index("backup ends")


def test_the_interruption_is_recorded_not_as_a_failure(tmp_path: Path) -> None:
    services = _services(tmp_path)

    async def scenario() -> None:
        work = FakeWork()
        executor = Executor(services, {"local": FakeRepository()}, maintenance=work.entries())
        check = asyncio.create_task(executor(Job(1, JobRequest("drill", ("local",)))))
        await work.started.wait()
        await executor(Job(2, JobRequest("restore", ("local",))))
        await check

    asyncio.run(scenario())
    assert last_interruption(services.state, "local", "drill") == (NOW, "restore")
    # No run of the target in state: no red light, no failing metric.
    assert services.state.last_failure("local") is None


def test_a_check_left_alone_runs_its_kinds_and_reports_them(tmp_path: Path) -> None:
    async def scenario() -> tuple[JobResult, FakeWork]:
        work = FakeWork()
        work.release.set()
        executor = Executor(
            _services(tmp_path), {"local": FakeRepository()}, maintenance=work.entries()
        )
        request = JobRequest("check", ("local",), options=JobOptions(budget=900.0))
        return await executor(Job(1, request)), work

    result, work = asyncio.run(scenario())
    assert result["ok"] is True
    assert result["targets"]["local"]["checked"] == ["repository", "archives"]
    assert work.calls == [("local", "repository", 900.0), ("local", "archives", 900.0)]


def test_damage_found_fails_the_target_and_names_it(tmp_path: Path) -> None:
    async def scenario() -> JobResult:
        work = FakeWork(ok=False)
        work.release.set()
        executor = Executor(
            _services(tmp_path), {"local": FakeRepository()}, maintenance=work.entries()
        )
        return await executor(Job(1, _check("local", "repository", "archives")))

    result = asyncio.run(scenario())
    outcome = result["targets"]["local"]
    assert outcome["ok"] is False
    assert outcome["checked"] == ["repository"]  # it stops at the damage
    assert outcome["error"]["kind"] == "check_failed"
    assert "local" in outcome["error"]["message"]


def test_a_borg_error_of_the_check_is_the_targets_error(tmp_path: Path) -> None:
    async def failing(
        services: Services, target: str, kind: CheckKind, *, budget: float | None
    ) -> Checked:
        raise BorgError("Repository /srv/repo does not exist.", rc=13)

    async def scenario() -> JobResult:
        entries = EntryPoints(check=failing, drill=FakeWork().drill)
        executor = Executor(_services(tmp_path), {"local": FakeRepository()}, maintenance=entries)
        return await executor(Job(1, _check("local", "archives")))

    outcome = asyncio.run(scenario())["targets"]["local"]
    assert outcome["ok"] is False
    assert outcome["error"]["kind"] == "borg"


def test_without_entry_points_a_check_fails_saying_so(tmp_path: Path) -> None:
    async def scenario() -> JobResult:
        executor = Executor(_services(tmp_path), {"local": FakeRepository()})
        return await executor(Job(1, _check("local")))

    outcome = asyncio.run(scenario())["targets"]["local"]
    assert outcome["ok"] is False
    assert "no checks" in outcome["error"]["message"]


def test_routine_checks_of_a_target() -> None:
    assert checks_asked((), offsite=False) == ("repository", "archives")
    assert checks_asked((), offsite=True) == ("archives",)
    assert checks_asked(("data",), offsite=False) == ("data",)
    with pytest.raises(ValueError, match="verify"):
        checks_asked(("verify",), offsite=False)


# --- TargetHolds alone ---------------------------------------------------------------------


def test_a_yielding_holder_is_asked_and_a_plain_one_never() -> None:
    async def scenario() -> None:
        holds = TargetHolds()
        check = Job(1, JobRequest("check", ("local",)))
        backup = Job(2, JobRequest("backup", ("local",)))
        drill = Job(3, JobRequest("drill", ("local",)))
        async with holds.hold("local", check, yielding=True) as preemption:
            waiting = asyncio.create_task(_enter(holds, backup))
            await asyncio.sleep(0)
            assert preemption.asked.is_set() and preemption.by == "backup"
        await waiting
        async with holds.hold("local", backup) as plain:
            yielding = asyncio.create_task(_enter(holds, drill, yielding=True))
            await asyncio.sleep(0)
            assert not plain.asked.is_set()  # a backup never lets go for a drill
        await yielding

    asyncio.run(scenario())


def test_a_yielding_job_getting_a_target_someone_waits_for_yields_at_once() -> None:
    async def scenario() -> None:
        holds = TargetHolds()
        backup = Job(1, JobRequest("backup", ("local",)))
        check = Job(2, JobRequest("check", ("local",)))
        restore = Job(3, JobRequest("restore", ("local",)))
        got: list[bool] = []

        async def check_in() -> None:
            async with holds.hold("local", check, yielding=True) as preemption:
                got.append(preemption.asked.is_set())

        async with holds.hold("local", backup):
            first = asyncio.create_task(check_in())  # queued first on the lock
            await asyncio.sleep(0)
            second = asyncio.create_task(_enter(holds, restore))
            await asyncio.sleep(0)
        await asyncio.gather(first, second)
        assert got == [True]

    asyncio.run(scenario())


async def _enter(holds: TargetHolds, job: Job, *, yielding: bool = False) -> None:
    async with holds.hold("local", job, yielding=yielding):
        pass


# --- until_preempted alone -------------------------------------------------------------------


def test_work_asked_for_before_it_started_never_runs() -> None:
    ran: list[str] = []

    async def work() -> str:
        ran.append("work")
        return "done"

    async def scenario() -> tuple[bool, str | None]:
        preemption = Preemption()
        preemption.ask("restore")
        return await until_preempted(work(), preemption)

    assert asyncio.run(scenario()) == (True, None)
    assert ran == []


def test_work_that_ends_first_gives_its_result_or_its_error() -> None:
    async def fails() -> str:
        raise BorgError("Repository /srv/repo does not exist.", rc=13)

    async def scenario() -> tuple[bool, str | None]:
        assert await until_preempted(asyncio.sleep(0, result="done"), Preemption()) == (
            False,
            "done",
        )
        return await until_preempted(fails(), Preemption())

    with pytest.raises(BorgError):
        asyncio.run(scenario())


def test_cancelled_itself_it_cancels_the_work_too() -> None:
    stopped: list[str] = []

    async def long() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append("borg stopped")
            raise

    async def scenario() -> None:
        waiting = asyncio.create_task(until_preempted(long(), Preemption()))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(scenario())
    assert stopped == ["borg stopped"]
