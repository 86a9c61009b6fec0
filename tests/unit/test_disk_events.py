"""Disk events to disk jobs: unknown disks ignored, echoes of our own jobs ignored."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coffre.cli.disk import print_disks
from coffre.core.errors import BorgNoSpace
from coffre.jobs.queue import Job, JobRequest
from coffre.storage.state import State
from coffre.targets.usb.events import DiskWatch
from coffre.targets.usb.udev import DiskAppeared, DiskGone
from tests.fakes import Clock, config

NOW = datetime(2026, 11, 29, 10, tzinfo=UTC)
A = DiskAppeared("/devices/loop0", "/dev/loop0", "uuid-a", "ext4", "COFFRE-A", None)


class Harness:
    def __init__(
        self, tmp_path: Path, *, probe_uuid: str = "uuid-a", timezone: str = "Europe/Paris"
    ) -> None:
        self.state = State.open(tmp_path / "s.db", logger=logging.getLogger("t"), now=NOW)
        self.state.enroll_disk("disque-a", "uuid-a", "repo-a", NOW)
        self.submitted: list[JobRequest] = []
        self.busy: set[str] = set()
        self.probe_uuid = probe_uuid
        self.watch = DiskWatch(
            config(tmp_path, timezone=timezone),
            self.state,
            Clock(NOW),
            logging.getLogger("coffre.test"),
            self.submit,
            lambda name: name in self.busy,
            probe=self.probe,
        )

    def submit(self, request: JobRequest) -> Job:
        self.submitted.append(request)
        return Job(id=len(self.submitted), request=request)

    async def probe(self, devnode: str) -> tuple[str, str]:
        return self.probe_uuid, "ext4"


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_an_enrolled_disk_that_appears_gets_one_disk_job(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        h.watch.handle(A)
        await _settle()
        assert [(r.kind, r.targets, r.reason) for r in h.submitted] == [
            ("disk", ("disque-a",), "plugged")
        ]
        disk = h.state.disk("disque-a")
        assert disk is not None and disk.present and disk.devnode == "/dev/loop0"

    asyncio.run(scenario())


def test_an_unknown_disk_is_logged_once_and_never_gets_a_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        stranger = DiskAppeared("/devices/loop1", "/dev/loop1", "uuid-x", "ntfs", "", None)
        with caplog.at_level(logging.INFO, logger="coffre.test"):
            h.watch.handle(stranger)
            h.watch.handle(stranger)
            await _settle()
        assert h.submitted == []
        assert caplog.text.count("unknown disk at /dev/loop1") == 1

    asyncio.run(scenario())


def test_events_about_a_disk_whose_job_runs_are_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        h.busy.add("disque-a")
        h.watch.handle(A)
        await _settle()
        assert h.submitted == []

    asyncio.run(scenario())


def test_a_stale_appearance_of_a_powered_off_disk_starts_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path, probe_uuid="")  # blkid finds nothing: the device is gone
        h.watch.handle(A)
        await _settle()
        assert h.submitted == []

    asyncio.run(scenario())


def test_a_departure_marks_the_disk_away(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        h.watch.handle(A)
        await _settle()
        h.watch.handle(DiskGone("/devices/loop0"))
        disk = h.state.disk("disque-a")
        assert disk is not None and not disk.present
        assert h.watch.present_disks() == ()

    asyncio.run(scenario())


def test_disk_list_gives_its_times_in_the_boxs_timezone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cayenne is UTC-3 all year: a time printed in UTC would be visibly off.
    h = Harness(tmp_path, timezone="America/Cayenne")
    h.state.disk_seen("disque-a", "/dev/loop0", "/devices/loop0", None, NOW)
    run = h.state.start_run("disque-a", "backup", NOW)
    h.state.finish_run(run, NOW)
    [row] = h.watch.report()
    assert row["last_seen"] == row["last_backup"] == "2026-11-29T07:00:00-03:00"
    print_disks([row])
    shown = capsys.readouterr().out
    assert "last backup 2026-11-29 07:00:00, last seen 2026-11-29 07:00:00" in shown


def test_disk_list_shows_a_failed_backup_until_a_backup_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = Harness(tmp_path)
    h.state.disk_done("disque-a", safe=True, free_bytes=0, at=NOW)
    run = h.state.start_run("disque-a", "backup", NOW)
    full = BorgNoSpace("no space left on the repository's disk\nborg: segment 42", rc=2)
    h.state.finish_run(run, NOW, error=full)
    print_disks(h.watch.report())
    shown = capsys.readouterr().out
    assert "safe to remove" in shown and "last backup never" in shown
    assert (
        "last failure 2026-11-29 11:00:00: [no_space] no space left on the repository's disk ..."
        in shown
    )
    assert "segment 42" not in shown  # one line: the journal has the rest

    again = h.state.start_run("disque-a", "backup", NOW)
    h.state.finish_run(again, NOW)
    print_disks(h.watch.report())
    assert "last failure" not in capsys.readouterr().out
