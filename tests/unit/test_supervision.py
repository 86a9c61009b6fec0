"""Nothing dies quietly: an unexpected error fails one job, never a lane; what state cannot
record is shown all the same; a wedged lane stops the watchdog's pings."""

from __future__ import annotations

import asyncio
import errno
import importlib
import inspect
import logging
import os
import pkgutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import coffre
from coffre.core.errors import ERROR_KINDS, CoffreError, StateError
from coffre.core.health import Facts, Health, assess
from coffre.core.job_events import JobResult
from coffre.core.messages import Event
from coffre.core.sshkeys import parse_public_key
from coffre.daemon.executor import Executor
from coffre.jobs.queue import Job, JobQueue, JobRequest
from coffre.jobs.services import Services
from coffre.jobs.supervision import Incidents, stalled_lanes
from coffre.observe.facts import Observer
from coffre.storage import atomic, logs
from coffre.storage.state import State
from coffre.targets.offsite import ssh
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, FakeRepository, Journal, config

NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
KEY = parse_public_key(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)


@pytest.fixture
def records() -> Iterator[Journal]:
    """The records of the ``coffre`` logger during the test."""
    with Journal.of(logging.getLogger("coffre")) as journal:
        yield journal


def test_a_job_that_raises_fails_alone_and_the_lane_runs_the_next(records: Journal) -> None:
    async def scenario() -> tuple[JobResult, JobResult, list[Event]]:
        async def execute(job: Job) -> JobResult:
            if job.request.kind == "prune":
                # What a refused argv or a vanished file did to the lane.
                raise FileNotFoundError(2, "No such file or directory", "/etc/coffre/passphrase")
            return {"event": "result", "ok": True}

        queue = JobQueue(execute)
        server = asyncio.create_task(queue.serve())
        first = queue.submit(JobRequest("prune", ("local",)))
        heard: asyncio.Queue[Event] = asyncio.Queue()
        first.listeners.append(heard)
        second = queue.submit(JobRequest("backup", ("local",)))
        failed, then = await asyncio.wait_for(asyncio.gather(first.done, second.done), 10)
        assert not server.done(), "the lane's worker must survive"
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        return failed, then, [heard.get_nowait() for _ in range(heard.qsize())]

    failed, then, heard = asyncio.run(scenario())
    assert failed["ok"] is False
    assert failed["error"]["kind"] == "internal"
    assert "FileNotFoundError" in failed["error"]["message"]
    assert "prune of local" in failed["error"]["message"]
    assert heard[-1] == {**failed, "job": 1}, "a --wait client gets the answer"
    assert then["ok"] is True
    crashed = records.with_id(logs.MSG_JOB_CRASHED)
    assert len(crashed) == 1
    assert crashed[0].levelno == logging.ERROR
    assert crashed[0].exc_info is not None, "the traceback goes to the journal"


def test_a_lane_with_jobs_waiting_and_none_running_is_stalled() -> None:
    async def scenario() -> None:
        queue = JobQueue(lambda job: asyncio.sleep(0, {"event": "result", "ok": True}))
        assert not queue.stalled(now=1e12, grace=60)
        queue.submit(JobRequest("backup", ("local",)))
        # Nobody serves this queue: the job waits, nothing runs.
        assert not queue.stalled(now=time.monotonic(), grace=60)
        assert queue.stalled(now=time.monotonic() + 61, grace=60)
        idle = JobQueue(lambda job: asyncio.sleep(0, {"event": "result", "ok": True}))
        lanes = {"main": queue, "reads": idle, "network": None}
        assert stalled_lanes(lanes, time.monotonic() + 61, grace=60) == ["main"]
        server = asyncio.create_task(queue.serve())
        await asyncio.sleep(0)  # one turn: the serving lane picks it
        await asyncio.sleep(0)
        assert not queue.stalled(now=time.monotonic() + 61, grace=60)
        assert stalled_lanes(lanes, time.monotonic() + 61, grace=60) == []
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server

    asyncio.run(scenario())


class BrokenRepository(FakeRepository):
    """A repository whose opening hits an error coffre has no type for."""

    def opened(self, expected_id: str) -> Any:
        raise KeyError("a bug")


async def _backup(executor: Executor, *targets: str) -> JobResult:
    return await executor(Job(id=1, request=JobRequest("backup", targets)))


def _services(tmp_path: Path, state: State) -> Services:
    return Services(
        config=config(tmp_path, LOCAL),
        state=state,
        borg=FakeBorg(),
        clock=Clock(NOW),
        logger=logging.getLogger("coffre"),
    )


def test_an_unexpected_error_fails_that_target_as_internal_and_the_next_target_runs(
    tmp_path: Path, records: Journal
) -> None:
    state = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=NOW)
    for name in ("broken", "local"):
        state.record_repository(name, REPO_ID, "/srv/repo", NOW)
    executor = Executor(
        _services(tmp_path, state),
        {"broken": BrokenRepository("broken"), "local": FakeRepository()},
    )
    result = asyncio.run(_backup(executor, "broken", "local"))
    assert result["targets"]["broken"]["error"]["kind"] == "internal"
    assert "KeyError" in result["targets"]["broken"]["error"]["message"]
    assert result["targets"]["local"]["ok"] is True
    failure = state.last_failure("broken")
    assert failure is not None and failure.error_kind == "internal"
    assert state.error_counts()[("broken", "internal")] == 1
    assert records.with_id(logs.MSG_JOB_CRASHED)[0].exc_info is not None


class FullState:
    """State whose every write fails as on a full filesystem; reads answer."""

    def __init__(self, real: State) -> None:
        self._real = real

    def start_run(self, *args: object) -> int:
        raise StateError("state database write failed: database or disk is full")

    def finish_run(self, *args: object, **kwargs: object) -> None:
        raise StateError("state database write failed: database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_failure_state_cannot_record_is_kept_and_shown_until_a_run_is_recorded(
    tmp_path: Path,
) -> None:
    real = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=NOW)
    real.record_repository("local", REPO_ID, "/srv/repo", NOW)
    incidents = Incidents()
    full = Executor(
        _services(tmp_path, FullState(real)),  # type: ignore[arg-type]
        {"local": FakeRepository()},
        incidents=incidents,
    )
    result = asyncio.run(_backup(full, "local"))
    assert result["ok"] is False
    assert result["targets"]["local"]["error"]["kind"] == "state"
    assert incidents.unrecorded_failures[0].target == "local"
    shown = assess(Facts(now=NOW, tz=ZoneInfo("Europe/Paris"), problems=incidents.failures()))
    assert shown.health is Health.FAILURE
    assert "state could not record it" in shown.reasons[0]
    # The metrics' last attempt is the failed one, not the success state last recorded.
    observer = Observer(config(tmp_path, LOCAL), real, Clock(NOW), incidents=incidents)
    attempt = observer.facts().targets[0].last_attempt
    assert attempt is not None and (attempt.outcome, attempt.error_kind) == ("failed", "state")

    # Space is back: the next backup is recorded, and what was kept is history.
    again = Executor(_services(tmp_path, real), {"local": FakeRepository()}, incidents=incidents)
    assert asyncio.run(_backup(again, "local"))["ok"]
    assert incidents.failures() == ()
    attempt = observer.facts().targets[0].last_attempt
    assert attempt is not None and attempt.outcome == "success"


def test_a_file_the_state_disk_cannot_take_is_a_state_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts_hds1"
    known_hosts.parent.mkdir()
    known_hosts.write_text("before\n")
    write_all = atomic._write_all

    def full(fd: int, data: bytes) -> None:
        # Part of the file goes, then ENOSPC, as on a full state disk.
        write_all(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "_write_all", full)
    with pytest.raises(StateError, match="No space left on device") as raised:
        ssh.write_known_hosts(known_hosts, "hds1.example.fr", 22, [KEY])
    assert str(known_hosts.parent) in raised.value.hint
    assert sorted(p.name for p in known_hosts.parent.iterdir()) == ["known_hosts_hds1"]
    assert known_hosts.read_text() == "before\n"


def test_box_problems_show_a_failure_and_say_what_appeared_and_went() -> None:
    incidents = Incidents()
    appeared, gone = incidents.set_box_problems(["encryption.passphrase_file: no such file"])
    assert appeared == ("encryption.passphrase_file: no such file",) and gone == ()
    facts = Facts(now=NOW, tz=ZoneInfo("Europe/Paris"), problems=incidents.failures())
    assert assess(facts).health is Health.FAILURE
    assert incidents.set_box_problems(["encryption.passphrase_file: no such file"]) == ((), ())
    appeared, gone = incidents.set_box_problems([])
    assert gone == ("encryption.passphrase_file: no such file",)
    assert assess(Facts(now=NOW, tz=ZoneInfo("Europe/Paris"))).health is Health.OK


def test_every_error_kind_coffre_can_raise_is_a_known_metric_label() -> None:
    # ERROR_KINDS bounds the labels of coffre_errors_total: a kind missing from it
    # would be counted as "internal" and hide what really failed.
    for module in pkgutil.walk_packages(coffre.__path__, "coffre."):
        importlib.import_module(module.name)
    missing = set()
    pending: list[type[CoffreError]] = [CoffreError]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if not inspect.isabstract(cls) and cls.kind not in ERROR_KINDS:
            missing.add(f"{cls.__module__}.{cls.__name__} ({cls.kind})")
    assert not missing
