"""Backups through the daemon with the real borg: init, create, retention, identity."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.guard.canaries import NAMES as CANARIES
from tests.integration.harness import (
    Daemon,
    Practice,
    daemon_running,
    fill_share,
    scan_bytes,
    wait_for,
)


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path)
    fill_share(p.share, files=40)
    return p


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_init_then_backup_makes_an_archive_identical_to_the_share(
    practice: Practice, daemon: Daemon, tmp_path: Path
) -> None:
    init = practice.coffre("target", "init", "local", check=True)
    assert "created" in init.stdout
    backup = practice.coffre("backup", "--wait", check=True)
    assert "local: ok, archive cabinet-" in backup.stderr

    status = practice.status()["targets"]["local"]
    success = status["last_success"]
    # The share's 40 files and the guard's canaries, planted before the first backup.
    assert success["nfiles"] == 40 + len(CANARIES) and success["archive"].startswith("cabinet-")
    assert [a["reasons"] for a in status["archives"]] == [["J", "M"]]
    assert status["slots"]["J"] is True and status["slots"]["M"] is True

    restore = tmp_path / "restore"
    restore.mkdir()
    repo = str(practice.repository())
    import subprocess

    from tests.parts import binary

    subprocess.run(
        [binary("borg"), "extract", f"{repo}::{success['archive']}"],
        cwd=restore,
        env={
            **os.environ,
            "BORG_PASSPHRASE": "correct horse battery staple, but for a kiné",
            "BORG_BASE_DIR": str(tmp_path / "b"),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        },
        check=True,
    )
    extracted = restore / str(practice.share).lstrip("/")
    assert _digest(extracted) == _digest(practice.share)


def test_same_day_backups_keep_the_first_of_the_month_and_the_last_of_the_day(
    practice: Practice, daemon: Daemon
) -> None:
    practice.coffre("target", "init", "local", check=True)
    names = []
    for _ in range(3):
        practice.coffre("backup", "--wait", check=True)
        names.append(practice.status()["targets"]["local"]["last_success"]["archive"])
    # The first is M (first of the month), the third is J (last of the day);
    # the second falls out -- unless the test ran across midnight.
    kept = practice.archive_names()
    if names[0][:18] == names[2][:18]:
        assert kept == sorted([names[0], names[2]])
    archives = practice.coffre("archives", "--json", check=True)
    listed = json.loads(archives.stdout)["local"]["archives"]
    assert {a["name"] for a in listed} == set(kept)


def test_backup_of_an_uninitialised_target_fails_clearly(
    practice: Practice, daemon: Daemon
) -> None:
    result = practice.coffre("backup", "--wait")
    assert result.returncode == 1
    assert "target local has no repository recorded" in result.stderr
    assert "coffre target init local" in result.stderr
    failure = practice.status()["targets"]["local"]["last_failure"]
    assert failure["error_kind"] == "not_initialised"


def test_an_unknown_target_is_a_usage_error(practice: Practice, daemon: Daemon) -> None:
    result = practice.coffre("backup", "--target", "nas2", "--wait")
    assert result.returncode == 2
    assert "no target named 'nas2'" in result.stderr and "local" in result.stderr


def test_a_replaced_repository_is_refused_and_left_untouched(
    practice: Practice, daemon: Daemon
) -> None:
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    repo = practice.repository()
    # Someone swaps in another repository (same passphrase, same path).
    repo.rename(repo.with_name("original"))
    practice.borg("init", "--encryption=repokey-blake2", str(repo))
    before = _digest(repo)

    result = practice.coffre("backup", "--wait")
    assert result.returncode == 1
    assert "but coffre created" in result.stderr
    assert "--adopt" in result.stderr
    assert _digest(repo) == before
    assert practice.status()["targets"]["local"]["last_failure"]["error_kind"] == (
        "repository_mismatch"
    )
    # Support decides the new one is right: adopt it, and backups go on there.
    adopted = practice.coffre("target", "init", "local", "--adopt", check=True)
    assert "adopted" in adopted.stdout
    practice.coffre("backup", "--wait", check=True)
    assert len(practice.archive_names()) == 1


def test_init_refuses_an_existing_repository_without_adopt(
    practice: Practice, daemon: Daemon
) -> None:
    practice.borg(
        "init", "--encryption=repokey-blake2", "--make-parent-dirs", str(practice.repository())
    )
    result = practice.coffre("target", "init", "local")
    assert result.returncode == 1
    assert "a repository already exists" in result.stderr


def test_status_shows_the_running_job_and_its_progress(practice: Practice, tmp_path: Path) -> None:
    big = practice.share / "imagerie"
    big.mkdir()
    for i in range(6):
        (big / f"radio-{i}.dcm").write_bytes(scan_bytes(40 * 1024 * 1024))
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", check=True)  # queued, not waited for
        wait_for(lambda: practice.status()["running"] is not None, what="a running job")
        running = practice.status()["running"]
        assert running["kind"] == "backup" and running["targets"] == ["local"]
        wait_for(lambda: practice.status()["running"] is None, timeout=300, what="job end")
        assert practice.status()["targets"]["local"]["last_success"] is not None


def _big_share(practice: Practice) -> None:
    big = practice.share / "imagerie"
    big.mkdir(exist_ok=True)
    for i in range(10):
        (big / f"scan-{i}.dcm").write_bytes(scan_bytes(50 * 1024 * 1024))


def _wait_for_borg_create(daemon: Daemon) -> int:
    """Wait until borg create has read data (so it has something to checkpoint); its PID."""

    def reading() -> bool:
        running = daemon.practice.status()["running"]
        return bool(running and running["counters"].get("original_size"))

    wait_for(reading, timeout=60, what="borg create reading the share")
    for pid in daemon.children():
        if b"\0create\0" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no borg create among the daemon's children")


def test_sigkill_in_the_middle_of_a_backup_loses_nothing(practice: Practice) -> None:
    daemon = Daemon(practice).ready()
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    first = practice.archive_names()
    _big_share(practice)
    practice.coffre("backup", check=True)
    borg_pid = _wait_for_borg_create(daemon)
    # As systemd does when the watchdog fires: the whole unit dies at once.
    os.kill(borg_pid, signal.SIGKILL)
    daemon.kill()

    with daemon_running(practice):
        status = practice.status()["targets"]["local"]
        assert status["last_attempt"]["outcome"] == "interrupted"
        practice.coffre("backup", "--wait", check=True)
    names = practice.archive_names()
    assert set(first) <= set(names)
    assert practice.borg("check", str(practice.repository())).returncode == 0


def test_sigterm_during_a_backup_leaves_a_checkpoint_and_stops_in_time(
    practice: Practice,
) -> None:
    daemon = Daemon(practice).ready()
    practice.coffre("target", "init", "local", check=True)
    _big_share(practice)
    practice.coffre("backup", check=True)
    _wait_for_borg_create(daemon)
    stopped_at = datetime.now(UTC)
    code = daemon.stop(timeout=90)
    took = datetime.now(UTC) - stopped_at
    assert code == 0
    assert took < timedelta(seconds=60)  # borg.stop_timeout: the unit's TimeoutStopSec is above
    assert any(m.get("STOPPING") == "1" for m in daemon.notify.messages)
    names = practice.archive_names()
    assert all(".checkpoint" in n for n in names), names
    assert names, "borg left no checkpoint archive"
    assert practice.borg("check", str(practice.repository())).returncode == 0


def test_borg_does_not_outlive_a_killed_daemon(practice: Practice) -> None:
    daemon = Daemon(practice).ready()
    practice.coffre("target", "init", "local", check=True)
    _big_share(practice)
    practice.coffre("backup", check=True)
    borg_pid = _wait_for_borg_create(daemon)
    daemon.kill()  # outside systemd: nobody kills borg for us

    def borg_gone() -> bool:
        try:
            return Path(f"/proc/{borg_pid}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    wait_for(borg_gone, timeout=60, what="the orphaned borg to stop")
    # borg got SIGINT (PR_SET_PDEATHSIG) and stopped: it did not go on to
    # finish the archive on its own. Whether it managed to write a checkpoint
    # first depends on whether its next write hit the dead daemon's pipe.
    assert [n for n in practice.archive_names() if ".checkpoint" not in n] == []
    with daemon_running(practice):
        practice.coffre("backup", "--wait", check=True)
    # The backup completed, then retention dropped any checkpoint left.
    names = practice.archive_names()
    assert len(names) == 1 and ".checkpoint" not in names[0]
    assert practice.borg("check", str(practice.repository())).returncode == 0
