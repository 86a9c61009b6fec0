"""The nightly job's borg calls, with a fake borg: no needless call, the list from state."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.core.errors import BorgLockTimeout
from coffre.core.model import Archive
from coffre.daemon.executor import Executor
from coffre.jobs.pruning import COMPACT_ABSOLUTE, compact_due
from coffre.jobs.queue import Job, JobRequest, JobResult
from coffre.jobs.services import Services
from coffre.storage.state import State
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, FakeRepository, config

NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)  # 01:30 in Paris


def _history() -> list[Archive]:
    """A full J/J-1/J-2/M/M-1 set before tonight: tonight's archive pushes J-2 out."""

    def at(day: int, month: int = 11) -> Archive:
        moment = datetime(2026, month, day, 0, 30, tzinfo=UTC)
        return Archive(moment, f"cabinet-2026-{month:02d}-{day:02d}T01:30:00", f"{day:02d}" * 32)

    return [at(1, 10), at(1), at(26), at(27), at(28)]


def _run(tmp_path: Path, borg: FakeBorg, *, listed: bool = True) -> tuple[JobResult, State]:
    state = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=NOW)
    state.record_repository("local", REPO_ID, "/srv/repo", NOW)
    if listed:
        state.replace_archives("local", _history(), NOW - timedelta(days=1))
    services = Services(
        config=config(tmp_path, LOCAL),
        state=state,
        borg=borg,
        clock=Clock(NOW),
        logger=logging.getLogger("t"),
    )
    executor = Executor(services, {"local": FakeRepository()})

    async def go() -> JobResult:
        job = Job(id=1, request=JobRequest("backup", ("local",), reason="nightly"))
        return await executor(job)

    return asyncio.run(go()), state


def test_a_steady_night_is_one_create_and_one_delete(tmp_path: Path) -> None:
    borg = FakeBorg()
    result, state = _run(tmp_path, borg)
    assert result["ok"] is True
    assert [c[0] for c in borg.calls] == ["create", "delete"]
    assert borg.calls[1][-1] == "cabinet-2026-11-26T01:30:00"  # J-2 falls out
    known = state.archives("local")
    assert known is not None
    assert [a.name for a in known][-1] == "cabinet-2026-11-29T01:30:00"
    assert "cabinet-2026-11-26T01:30:00" not in [a.name for a in known]


def test_without_a_list_in_state_borg_is_asked_once(tmp_path: Path) -> None:
    borg = FakeBorg()
    _run(tmp_path, borg, listed=False)
    assert [c[0] for c in borg.calls] == ["create", "list"]


def test_compact_runs_once_the_freed_space_is_worth_it(tmp_path: Path) -> None:
    borg = FakeBorg(freed="-20.00 MB")  # 2 % of the 1 GB repository
    _run(tmp_path, borg)
    assert [c[0] for c in borg.calls] == ["create", "delete", "compact"]


def test_a_failed_create_records_its_kind_and_skips_retention(tmp_path: Path) -> None:
    borg = FakeBorg(fail={"create": [BorgLockTimeout("Failed to create/acquire the lock", rc=73)]})
    result, state = _run(tmp_path, borg)
    assert result["ok"] is False
    assert result["targets"]["local"]["error"]["kind"] == "lock_timeout"
    assert [c[0] for c in borg.calls] == ["create"]
    failure = state.last_failure("local")
    assert failure is not None and failure.error_kind == "lock_timeout"


@pytest.mark.parametrize(
    ("pending", "size", "due"),
    [
        (0, None, False),
        (1, None, True),
        (9_999, 1_000_000, False),
        (10_000, 1_000_000, True),
        (COMPACT_ABSOLUTE, 10**15, True),
    ],
)
def test_compact_due(pending: int, size: int | None, due: bool) -> None:
    assert compact_due(pending, size) is due
