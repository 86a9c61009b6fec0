"""Never silently stop, with the real daemon and borg: a file gone for a while, a full
state disk, a box started without its share or passphrase, a daemon that stops. Each
fails its job visibly (status, lights, journal), and the next job succeeds in the same
daemon, without a restart."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from coffre.storage import logs
from tests.integration import journal
from tests.integration.harness import Daemon, daemon_running, fill_share, wait_for
from tests.integration.observing import (
    FAILURE,
    OK,
    ObservedPractice,
    parse,
    repository_locked,
    value,
)

#: What the lights show while no daemon runs.
STOPPED = {"green": "off", "amber": "off", "red": "blink 1000/1000"}

#: Short watchdog: the daemon ticks (box check, pings) every 0.1 s.
WATCHDOG_USEC = 200_000


def _lights(practice: ObservedPractice, pattern: dict[str, str], what: str) -> None:
    wait_for(lambda: practice.lights() == pattern, timeout=60, what=f"the lights to say {what}")


def _backed_up_again(practice: ObservedPractice, what: str) -> None:
    """Wait until the last backup of the local target, run by the daemon itself, succeeded."""
    wait_for(
        lambda: practice.status()["targets"]["local"]["last_attempt"]["outcome"] == "success",
        timeout=120,
        what=what,
    )


def _practice(tmp_path: Path) -> ObservedPractice:
    practice = ObservedPractice(tmp_path)
    fill_share(practice.share, files=30)
    return practice


def test_a_passphrase_file_gone_during_a_backup_fails_that_job_and_the_next_one_succeeds(
    journald: None, tmp_path: Path
) -> None:
    practice = _practice(tmp_path)
    daemon = Daemon(practice, watchdog_usec=WATCHDOG_USEC, log_target="journal").ready()
    try:
        pid = daemon.process.pid
        practice.coffre("target", "init", "local", check=True)
        # The backup starts (borg read the passphrase) and waits on the lock;
        # the file goes while it waits: retention, after the archive, needs it.
        with repository_locked(practice, practice.repository()):
            practice.coffre("backup", check=True)
            wait_for(lambda: practice.status()["running"] is not None, what="the backup to run")
            wait_for(lambda: bool(daemon.children()), what="borg to start")
            practice.passphrase.rename(practice.root / "passphrase.away")
        failed = practice.coffre("backup", "--wait", timeout=120)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"cannot read the passphrase file {practice.passphrase}" in failed.stderr
        status = practice.status()
        assert status["targets"]["local"]["last_failure"]["error_kind"] == "passphrase"
        assert any("encryption.passphrase_file" in p for p in status["problems"])
        _lights(practice, FAILURE, "failure")

        # Back: the daemon sees it at its next tick, and backs up again by itself
        # the target whose last backup failed.
        (practice.root / "passphrase.away").rename(practice.passphrase)
        _backed_up_again(practice, "the backup to run again once the passphrase is back")
        assert practice.status()["problems"] == []
        _lights(practice, OK, "ok")
        ok = practice.coffre("backup", "--wait", timeout=120)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert daemon.process.poll() is None and daemon.process.pid == pid
    finally:
        daemon.stop()
    problems = journal.entries(logs.MSG_BOX_PROBLEM, pid)
    assert [e for e in problems if "encryption.passphrase_file" in e["MESSAGE"]], problems
    assert journal.entries(logs.MSG_BOX_RECOVERED, pid)
    # A passphrase gone is a known failure, not a crash: no job crashed, no traceback.
    assert journal.entries(logs.MSG_JOB_CRASHED, pid) == []
    assert not [e for e in journal.entries(None, pid) if "EXCEPTION_INFO" in e]


def test_a_box_started_without_share_nor_passphrase_waits_for_them_and_recovers(
    tmp_path: Path,
) -> None:
    practice = _practice(tmp_path)
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
    practice.share.rename(tmp_path / "share.later")
    practice.passphrase.rename(tmp_path / "passphrase.later")
    # Not `exit 2`, which systemd would never restart: the daemon starts and says why
    # backups cannot run.
    daemon = Daemon(practice, watchdog_usec=WATCHDOG_USEC).ready()
    try:
        status = practice.status()
        problems = " | ".join(status["problems"])
        assert "encryption.passphrase_file" in problems and "source.paths" in problems, problems
        _lights(practice, FAILURE, "failure")
        series = parse(practice.scrape())
        assert value(series, "coffre_health", state="failure") == 1
        human = practice.coffre("status", check=True).stdout
        assert "FAILURE: box: encryption.passphrase_file" in human

        # The passphrase is restored; the share's volume is still not mounted: borg
        # would make an empty archive with a mere warning. Refused, and said.
        (tmp_path / "passphrase.later").rename(practice.passphrase)
        failed = practice.coffre("backup", "--wait", timeout=120)
        assert failed.returncode == 1
        assert f"the share {practice.share} cannot be read" in failed.stderr
        assert practice.status()["targets"]["local"]["last_failure"]["error_kind"] == "source"
        assert practice.archive_names() == [], "no archive of a missing share"
        _lights(practice, FAILURE, "failure")

        # The data volume mounts: no restart needed.
        (tmp_path / "share.later").rename(practice.share)
        _backed_up_again(practice, "the failed backup to run again by itself")
        _lights(practice, OK, "ok")
        assert len(practice.archive_names()) == 1
        assert daemon.process.poll() is None
    finally:
        daemon.stop()


@contextlib.contextmanager
def _small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` for the block (a state disk that fills)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def _fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its filesystem is full; returns the file."""
    filler = directory / "filler"
    # Unbuffered, and ENOSPC suppressed around the file too: a buffered file
    # flushing what it still held when it closes would raise it past the loop.
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as out:
        while True:
            out.write(b"\0" * 65536)
    return filler


def test_a_full_state_disk_fails_one_backup_visibly_and_the_next_succeeds(
    tmp_path: Path,
) -> None:
    practice = ObservedPractice(tmp_path)
    fill_share(practice.share, files=30)
    with _small_filesystem(practice.state_dir, "16m"):
        daemon = Daemon(practice, watchdog_usec=WATCHDOG_USEC).ready()
        try:
            practice.coffre("target", "init", "local", check=True)
            assert practice.coffre("backup", "--wait", timeout=120).returncode == 0
            filler = _fill(practice.state_dir)
            failed = practice.coffre("backup", "--wait", timeout=120)
            assert failed.returncode == 1, failed.stdout + failed.stderr
            assert "state database write failed" in failed.stderr
            problems = practice.status()["problems"]
            assert problems == [
                "last backup of local failed (state) and state could not record it"
            ], problems
            _lights(practice, FAILURE, "failure")

            filler.unlink()
            ok = practice.coffre("backup", "--wait", timeout=120)
            assert ok.returncode == 0, ok.stdout + ok.stderr
            assert practice.status()["problems"] == []
            _lights(practice, OK, "ok")
            assert daemon.process.poll() is None
        finally:
            daemon.stop()


def test_the_lights_say_no_daemon_when_it_stops_or_dies(tmp_path: Path) -> None:
    practice = ObservedPractice(tmp_path)
    daemon = Daemon(practice).ready()
    _lights(practice, OK, "ok")
    assert daemon.stop() == 0
    assert practice.lights() == STOPPED

    # Killed, it can say nothing: systemd's ExecStopPost runs `coffre leds stopped`.
    daemon = Daemon(practice).ready()
    _lights(practice, OK, "ok at the next start")
    daemon.kill()
    assert practice.lights() == OK
    practice.coffre("leds", "stopped", check=True)
    assert practice.lights() == STOPPED


def test_coffre_leds_stopped_never_fails_the_stop_of_the_unit(tmp_path: Path) -> None:
    practice = ObservedPractice(tmp_path)
    practice.config.write_text(
        practice.config.read_text().replace(str(practice.leds), str(tmp_path / "no-such-leds"))
    )
    result = practice.coffre("leds", "stopped")
    assert result.returncode == 0
    assert "cannot set the LED coffre:red" in result.stderr


def test_a_repository_whose_volume_is_not_mounted_is_shown_and_backed_up_once_back(
    tmp_path: Path,
) -> None:
    practice = _practice(tmp_path)
    daemon = Daemon(practice, watchdog_usec=WATCHDOG_USEC).ready()
    try:
        practice.coffre("target", "init", "local", check=True)
        assert practice.coffre("backup", "--wait", timeout=120).returncode == 0
        away = tmp_path / "depot.unmounted"
        practice.repository().rename(away)
        wait_for(
            lambda: any("its repository" in p for p in practice.status()["problems"]),
            what="the missing repository to be shown",
        )
        assert f"target local: its repository {practice.repository()} is missing" in (
            practice.coffre("status", check=True).stdout
        )
        _lights(practice, FAILURE, "failure")
        assert practice.coffre("backup", "--wait", timeout=120).returncode == 1

        away.rename(practice.repository())
        _backed_up_again(practice, "the failed backup to run again once the volume is back")
        _lights(practice, OK, "ok")
        assert len(practice.archive_names()) == 2
    finally:
        daemon.stop()
