"""The exporter of a running daemon, scraped over HTTP after real backups and a real disk job:
every series of the contract is there with the value state holds, and nothing of the
share (no path, no file name) ever shows."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coffre import __version__
from coffre.core import retention
from coffre.core.errors import ERROR_KINDS
from coffre.observe.metrics import CLI_ONLY_KINDS
from coffre.proof.check_ledger import CheckLedger
from coffre.storage.state import SUCCESS, RunRecord, State
from coffre.targets.offsite.repository import status_of
from tests.integration.harness import Daemon, fill_share, wait_for
from tests.integration.observing import (
    ObservedPractice,
    Series,
    parse,
    repository_locked,
    value,
)
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host, running_host
from tests.integration.usb import LoopDisk, ensure_udevd, settle
from tests.parts import binary

MARKER = "PATIENT-MARKER-Dupont.txt"

#: The series of the contract (issue 7): name -> its labels.
CONTRACT: dict[str, tuple[str, ...]] = {
    "coffre_up": (),
    "coffre_build_info": ("version", "borg_version"),
    "coffre_last_success_timestamp_seconds": ("target",),
    "coffre_last_attempt_timestamp_seconds": ("target",),
    "coffre_last_attempt_success": ("target",),
    "coffre_last_duration_seconds": ("target",),
    "coffre_archive_original_bytes": ("target",),
    "coffre_archive_deduplicated_bytes": ("target",),
    "coffre_archive_files": ("target",),
    "coffre_repository_archives": ("target",),
    "coffre_retention_slot_present": ("target", "slot"),
    "coffre_job_running": ("kind",),
    "coffre_job_progress_ratio": (),
    "coffre_errors_total": ("target", "kind"),
    "coffre_disk_present": ("disk",),
    "coffre_disk_last_seen_timestamp_seconds": ("disk",),
    "coffre_disk_swap_due": ("disk",),
    "coffre_disk_free_bytes": ("disk",),
    "coffre_offsite_reachable": ("target",),
    "coffre_check_last_success_timestamp_seconds": ("target", "kind"),
}


@dataclass
class Practice(ObservedPractice, OffsitePractice):
    """An exporter and LEDs of its own, local targets and an offsite host."""


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    yield from running_host(tmp_path, "hds")


def _ended(run: RunRecord | None) -> float:
    return 0.0 if run is None or run.finished_at is None else run.finished_at.timestamp()


def _state(practice: Practice) -> State:
    """The daemon's state, opened read-only beside it (WAL: readers never block it)."""
    db = practice.state_dir / "state.db"
    return State(sqlite3.connect(f"file:{db}?mode=ro", uri=True))


def _expect_as_state_says(series: Series, practice: Practice) -> None:
    state = _state(practice)
    try:
        targets = ["local", "autre", "hds", *(d.name for d in state.disks())]
        errors = state.error_counts()
        for target in targets:
            success = state.last_run(target, "backup", outcome=SUCCESS)
            attempt = state.last_finished_run(target, "backup")
            made = state.last_run_with_stats(target)
            known = state.archives(target)
            expected = {
                "coffre_last_success_timestamp_seconds": _ended(success),
                "coffre_last_attempt_timestamp_seconds": _ended(attempt),
                "coffre_last_attempt_success": float(
                    attempt is not None and attempt.outcome == SUCCESS
                ),
                "coffre_last_duration_seconds": (attempt.duration or 0.0) if attempt else 0.0,
                "coffre_archive_original_bytes": made.stats.original_bytes
                if made and made.stats
                else 0,
                "coffre_archive_deduplicated_bytes": made.stats.deduplicated_bytes
                if made and made.stats
                else 0,
                "coffre_archive_files": made.stats.nfiles if made and made.stats else 0,
                "coffre_repository_archives": len(known or []),
            }
            for name, number in expected.items():
                assert value(series, name, target=target) == number, (name, target)
            slots = (
                {}
                if known is None
                else retention.slots_present(
                    known,
                    prefix=practice.prefix,
                    daily=3,
                    monthly=2,
                    now=datetime.now(UTC),
                    tz=ZoneInfo(practice.timezone),
                )
            )
            for slot in ("J", "J-1", "J-2", "M", "M-1"):
                assert value(
                    series, "coffre_retention_slot_present", target=target, slot=slot
                ) == float(slots.get(slot, False)), (target, slot)
            for kind in sorted(set(ERROR_KINDS) - CLI_ONLY_KINDS):
                assert value(series, "coffre_errors_total", target=target, kind=kind) == (
                    errors.get((target, kind), 0)
                ), (target, kind)
        reachable = status_of(state, "hds")["reachable"]
        assert value(series, "coffre_offsite_reachable", target="hds") == float(bool(reachable))
        for disk in state.disks():
            assert value(series, "coffre_disk_present", disk=disk.name) == float(disk.present)
            assert value(series, "coffre_disk_last_seen_timestamp_seconds", disk=disk.name) == (
                disk.last_seen.timestamp() if disk.last_seen else 0.0
            )
            assert value(series, "coffre_disk_free_bytes", disk=disk.name) == disk.free_bytes
            assert value(series, "coffre_disk_swap_due", disk=disk.name) == 0
            checked = CheckLedger(state).last_attempt(disk.name, "repository")
            assert checked is not None, "the disk job records its borg check in the ledger"
            assert (
                value(
                    series,
                    "coffre_check_last_attempt_timestamp_seconds",
                    target=disk.name,
                    kind="repository",
                )
                == checked.at.timestamp()
            )
    finally:
        state.close()


def _borg_version() -> str:
    out = subprocess.run([binary("borg"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def test_a_scrape_shows_the_contract_with_the_values_of_state(tmp_path: Path, host: Host) -> None:
    ensure_udevd()
    practice = Practice(tmp_path / "box", targets=("local", "autre"), hosts={"hds": host})
    fill_share(practice.share, files=30)
    (practice.share / "dossier-0" / MARKER).write_text("Mme Dupont, née le ...\n")
    disk = LoopDisk(tmp_path / "disque-a.img")
    daemon = Daemon(practice).ready()
    try:
        # From the start, every known target has its series (at 0).
        first = parse(practice.scrape())
        assert value(first, "coffre_up") == 1
        for target in ("local", "autre", "hds"):
            assert value(first, "coffre_last_success_timestamp_seconds", target=target) == 0
            assert value(first, "coffre_errors_total", target=target, kind="borg") == 0
        wait_for(
            lambda: f'borg_version="{_borg_version()}"' in practice.scrape(),
            what="borg's version in the build info",
        )

        # Real backups: local and hds succeed, autre (never initialised) fails.
        practice.coffre("target", "init", "local", check=True)
        enroll(practice, "hds", host)
        backup = practice.coffre("backup", "--wait")
        assert backup.returncode == 1
        assert "hds: ok, archive cabinet-" in backup.stderr, backup.stderr
        # A scrape during a job answers at once, and shows the job.
        with repository_locked(practice, practice.repository("local")):
            practice.coffre("backup", "--target", "local", check=True)

            def running() -> bool:
                return value(parse(practice.scrape()), "coffre_job_running", kind="backup") == 1

            wait_for(running, what="the running backup in the metrics")
            began = time.monotonic()
            practice.scrape()
            assert time.monotonic() - began < 1.0, "a scrape waited for the job"
        wait_for(lambda: practice.status()["running"] is None, timeout=120, what="the backup")

        # A real USB disk job: backup, check, power off.
        device = disk.plug()
        settle()
        practice.coffre("disk", "enroll", device, "--name", "disque-a", check=True)

        def disk_done() -> bool:
            disks = practice.status()["disks"]
            return bool(disks and disks[0]["safe_to_remove"] and not disks[0]["busy"])

        wait_for(disk_done, timeout=180, what="the disk job")

        text = practice.scrape()
        series = parse(text)
        names = {name for name, _ in series}
        for name, labels in CONTRACT.items():
            found = [dict(pairs) for n, pairs in series if n == name]
            assert found, f"{name} is missing"
            assert all(sorted(f) == sorted(labels) for f in found), (name, found)
        assert names >= set(CONTRACT)
        assert value(series, "coffre_up") == 1
        build = {"version": __version__, "borg_version": _borg_version()}
        assert value(series, "coffre_build_info", **build) == 1
        assert value(series, "coffre_errors_total", target="autre", kind="not_initialised") == 1
        assert value(series, "coffre_last_attempt_success", target="local") == 1
        assert value(series, "coffre_last_attempt_success", target="disque-a") == 1
        assert value(series, "coffre_last_attempt_success", target="hds") == 1
        assert value(series, "coffre_offsite_reachable", target="hds") == 1
        assert value(series, "coffre_job_running", kind="backup") == 0
        _expect_as_state_says(series, practice)
    finally:
        daemon.stop()
        disk.unplug()
    # Nothing of the share, its paths or its archives' names in any line.
    for forbidden in (MARKER, "PATIENT", "Dupont", str(practice.share), str(tmp_path), "cabinet-2"):
        assert forbidden not in text, forbidden
    for line in text.splitlines():
        if "{" in line and not line.startswith("#"):
            assert "/" not in line[line.index("{") : line.rindex("}")], line
