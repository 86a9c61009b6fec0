"""The nightly job's borg calls, with a fake borg: no needless call, the list from state."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coffre.borg.records import LogRecord, Progress
from coffre.borg.runner import BorgResult
from coffre.core.config_types import (
    Config,
    EncryptionConfig,
    LocalTarget,
    RetentionConfig,
    ScheduleConfig,
    SourceConfig,
)
from coffre.core.errors import BorgLockTimeout
from coffre.core.model import Archive
from coffre.daemon.executor import Executor
from coffre.jobs.pruning import COMPACT_ABSOLUTE, compact_due
from coffre.jobs.queue import Job, JobRequest, JobResult
from coffre.jobs.services import Services
from coffre.storage.state import State
from coffre.targets.base import RemovableDisk

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)  # 01:30 in Paris
REPO_ID = "ab" * 32


class FixedClock:
    def now(self) -> datetime:
        return NOW


class FakeBorg:
    """Answers like borg would; records every subcommand asked."""

    def __init__(self, *, freed: str = "-1.20 kB", fail_create: bool = False) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.freed = freed
        self.fail_create = fail_create

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
    ) -> BorgResult:
        self.calls.append(tuple(argv))
        stdout = ""
        logs: tuple[LogRecord, ...] = ()
        if argv[0] == "create":
            if self.fail_create:
                raise BorgLockTimeout("Failed to create/acquire the lock", rc=73)
            if on_progress:
                on_progress(Progress(10, 5, 1, 3, False))
            name = argv[-2].split("::")[1]
            stdout = json.dumps(
                {
                    "repository": {"id": REPO_ID, "location": "/r"},
                    "archive": {
                        "name": name,
                        "id": "cd" * 32,
                        "start": "2026-11-29T00:30:00.000000",
                        "duration": 1.5,
                        "stats": {
                            "original_size": 10,
                            "compressed_size": 5,
                            "deduplicated_size": 1,
                            "nfiles": 3,
                        },
                    },
                    "cache": {"stats": {"unique_csize": 1_000_000_000}},
                }
            )
        elif argv[0] == "list":
            stdout = json.dumps({"archives": []})
        elif argv[0] == "delete":
            logs = (
                LogRecord(
                    "INFO",
                    f"Deleted data:               -5.00 MB             -5.00 MB   {self.freed}",
                    "",
                    "borg.output.stats",
                ),
            )
        return BorgResult(tuple(argv), 0, stdout, logs, (), 0.1)


class FakeRepository:
    """A local repository that is always there, with the recorded ID."""

    name = "local"
    location = "/srv/repo"
    compacts = True

    def as_disk(self) -> RemovableDisk | None:
        return None

    def job_services(self, daemon: Services) -> Services:
        return daemon

    def require_ready(self) -> None:
        return None

    async def repository_id(self) -> str:
        return REPO_ID

    def opened(self, expected_id: str) -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def cm() -> Any:
            assert expected_id == REPO_ID
            yield self.location

        return cm()


def _config(tmp_path: Path) -> Config:
    (tmp_path / "share").mkdir(exist_ok=True)  # backups refuse a missing share
    return Config(
        source=SourceConfig(paths=(tmp_path / "share",)),
        schedule=ScheduleConfig(daily=time(1, 30), timezone=PARIS),
        retention=RetentionConfig(prefix="cabinet"),
        encryption=EncryptionConfig(passphrase_file=tmp_path / "pass"),
        targets=(LocalTarget(name="local", path=Path("/srv/repo")),),
    )


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
        config=_config(tmp_path),
        state=state,
        borg=borg,
        clock=FixedClock(),
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
    borg = FakeBorg(fail_create=True)
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
