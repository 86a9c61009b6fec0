"""The LEDs of a running daemon, read back from a directory shaped like /sys/class/leds:
a job (working), a failure, a success, and a USB disk reaching "safe to remove"."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import Daemon, fill_share, wait_for
from tests.integration.observing import (
    FAILURE,
    OK,
    SAFE_TO_REMOVE,
    WORKING,
    ObservedPractice,
    repository_locked,
)
from tests.integration.usb import LoopDisk, ensure_udevd, settle


def _shows(practice: ObservedPractice, pattern: dict[str, str], what: str) -> None:
    wait_for(lambda: practice.lights() == pattern, timeout=120, what=f"the lights to say {what}")


def test_the_lights_follow_jobs_failures_successes_and_a_disk(tmp_path: Path) -> None:
    ensure_udevd()
    practice = ObservedPractice(tmp_path)
    fill_share(practice.share, files=20)
    disk = LoopDisk(tmp_path / "disque-a.img")
    daemon = Daemon(practice).ready()
    try:
        # A new box, before its first night: all good.
        _shows(practice, OK, "ok")

        # A backup of a target never initialised fails: call support.
        assert practice.coffre("backup", "--wait").returncode == 1
        _shows(practice, FAILURE, "failure")

        # A backup that cannot end yet (another borg holds the lock): working.
        practice.coffre("target", "init", "local", check=True)
        with repository_locked(practice, practice.repository()):
            practice.coffre("backup", check=True)  # queued, not waited for
            _shows(practice, WORKING, "working")
            assert practice.status()["running"]["kind"] == "backup"
        # It succeeds once the lock is free: all good again.
        _shows(practice, OK, "ok after the success")
        assert practice.status()["targets"]["local"]["last_attempt"]["outcome"] == "success"

        # A USB disk: enrolled, backed up, powered off: it may be removed.
        device = disk.plug()
        settle()
        practice.coffre("disk", "enroll", device, "--name", "disque-a", check=True)
        _shows(practice, SAFE_TO_REMOVE, "safe to remove")
        assert not disk.attached(), "powered off before the lights said so"
    finally:
        daemon.stop()
        disk.unplug()
    log = daemon.logs()
    assert "lights: failure (last backup of local failed (not_initialised))" in log
    assert "lights: safe_to_remove (disk disque-a may be removed)" in log
