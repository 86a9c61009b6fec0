"""The disk job's borg calls, with a fake borg and a fake disk: recovery only after trouble."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import cast

from coffre.core.errors import BorgNoSpace
from coffre.core.model import Archive
from coffre.jobs.services import Services
from coffre.storage.state import DiskRecord, RunStats, State
from coffre.targets.usb.job import run_disk_job
from coffre.targets.usb.repository import UsbRepository
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, config
from tests.unit.test_executor import NOW


class FakeDisk:
    """Stands for UsbRepository: no mount, a present disk."""

    name = "disque-a"
    location = "/run/coffre/mnt/disque-a/coffre"
    free_bytes: int | None = 123

    def disk(self) -> DiskRecord:
        return DiskRecord(
            "disque-a", "uuid", REPO_ID, NOW, NOW, "/dev/loop0", "/d", True, False, None, None
        )

    @asynccontextmanager
    async def opened(self, expected_id: str) -> AsyncIterator[str]:
        yield self.location


def _job(
    tmp_path: Path, borg: FakeBorg, previous: str | None, archives: tuple[Archive, ...] = ()
) -> tuple[list[str], State]:
    state = State.open(tmp_path / "s.db", logger=logging.getLogger("t"), now=NOW)
    state.enroll_disk("disque-a", "uuid", REPO_ID, NOW - timedelta(days=3))
    for archive in archives:
        state.add_archive("disque-a", archive)
    if previous is not None:
        run = state.start_run("disque-a", "backup", NOW - timedelta(days=1))
        state.finish_run(
            run,
            NOW - timedelta(days=1),
            stats=RunStats("a", 1, 1, 1, 1) if previous == "success" else None,
            error=None if previous == "success" else BorgNoSpace("full", rc=2),
        )
    state.start_run("disque-a", "backup", NOW)  # this job's own run, as the executor records it
    services = Services(config(tmp_path, LOCAL), state, borg, Clock(NOW), logging.getLogger("t"))
    powered: list[str] = []

    async def power_off(devnode: str, usb: str | None) -> None:
        powered.append(devnode)

    repo = cast(UsbRepository, FakeDisk())
    asyncio.run(run_disk_job(services, repo, REPO_ID, power_off=power_off))
    assert powered == ["/dev/loop0"]
    return [" ".join(c[:2]) if c[0] == "check" else c[0] for c in borg.calls], state


def test_after_a_good_plug_only_the_time_bounded_check_runs(tmp_path: Path) -> None:
    borg = FakeBorg()
    calls, _ = _job(tmp_path, borg, previous="success")
    assert calls.count("create") == 1
    checks = [c for c in borg.calls if c[0] == "check"]
    assert len(checks) == 1 and any(a.startswith("--max-duration") for a in checks[0])


def test_after_a_failed_plug_the_repository_is_checked_first(tmp_path: Path) -> None:
    borg = FakeBorg()
    calls, _ = _job(tmp_path, borg, previous="failed")
    assert calls[0].startswith("check") and "--repository-only" in borg.calls[0]
    unbounded = [
        c for c in borg.calls if c[0] == "check" and not any("max-duration" in a for a in c)
    ]
    assert len(unbounded) == 1
    assert calls.index("create") > 0


def test_a_full_disk_gets_retention_and_a_compact_then_one_more_try(tmp_path: Path) -> None:
    borg = FakeBorg(fail={"create": [BorgNoSpace("No space left on device", rc=2)]})
    calls, state = _job(tmp_path, borg, previous="success")
    assert calls.count("create") == 2
    assert "compact" in calls[calls.index("create") : calls.index("create", 1)]
    disk = state.disk("disque-a")
    assert disk is not None and disk.safe_to_remove and disk.free_bytes == 123


def test_today_s_archive_is_not_made_twice(tmp_path: Path) -> None:
    # 09:30 UTC on the 29th: 10:30 in Paris, the same local day as NOW (01:30).
    today = Archive(NOW + timedelta(hours=9), "cabinet-2026-11-29T10:30:00", "ee" * 32)
    calls, _ = _job(tmp_path, FakeBorg(), previous="success", archives=(today,))
    assert "create" not in calls
    yesterday = Archive(NOW - timedelta(hours=2), "cabinet-2026-11-28T23:30:00", "ee" * 32)
    calls, _ = _job(tmp_path / "2", FakeBorg(), previous="success", archives=(yesterday,))
    assert "create" in calls
