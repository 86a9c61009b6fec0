"""The check schedule never delays a nightly backup (issue 13): the real daemon, a real borg.

Two long checks: the daemon's own ``borg check --verify-data`` on a repository
of some 400,000 chunks (the issue's case), and a real ``borg with-lock`` on the
repository (``tests/integration/held_check.py``), which holds the exclusive
lock for as long as the test needs: what would keep the nightly's ``borg
create`` waiting. The nightly comes while it runs: the backup starts at once
(its start minus its due time is measured), the check is recorded
interrupted, and runs again once the backup is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coffre.jobs.maintenance import last_interruption
from coffre.storage.state import State
from tests.integration.harness import Daemon, Practice, daemon_running, fill_share, wait_for
from tests.parts import binary

PARIS = ZoneInfo("Europe/Paris")

#: The nightly is due this long after the daemon starts, at least: time to create the
#: repository and start the check first.
SET_UP = timedelta(seconds=40)

#: The issue's bound: the backup starts this soon after its due time.
AT_ONCE = timedelta(seconds=5)


def _next_due(after: timedelta) -> datetime:
    """The first whole minute at least ``after`` from now (the config's daily is HH:MM)."""
    soonest = datetime.now(PARIS) + after
    return soonest.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _lock_held(practice: Practice) -> bool:
    """Whether a borg holds the local repository's exclusive lock (borg 1.4's lock dir)."""
    return (practice.repository() / "lock.exclusive").exists()


def _maintenance(practice: Practice) -> dict[str, Any]:
    view: dict[str, Any] = practice.status()["maintenance"]
    return view


def test_a_nightly_due_during_a_long_check_starts_at_once(tmp_path: Path) -> None:
    binary("borg")  # fails in CI, skips elsewhere, when borg is missing
    due = _next_due(SET_UP)
    # A lock wait longer than the test: a borg create kept waiting would show in its duration.
    practice = Practice(tmp_path, daily=due.strftime("%H:%M"), lock_wait=300)
    fill_share(practice.share, files=30)
    daemon = Daemon(practice, wrap=(sys.executable, "-m", "tests.integration.held_check")).ready()
    try:
        practice.coffre("target", "init", "local", check=True)
        with ThreadPoolExecutor(1) as pool:
            asked = pool.submit(
                practice.job_events,
                {"op": "check", "targets": ["local"], "kinds": ["data"], "wait": True},
            )
            wait_for(lambda: _lock_held(practice), what="the check's borg holding the lock")
            assert _maintenance(practice)["running"]["kind"] == "check"
            assert datetime.now(PARIS) < due, "set-up too slow: the nightly came first"
            events = asked.result(timeout=(due - datetime.now(PARIS)).total_seconds() + 60)

        outcome = events[-1]["targets"]["local"]
        assert outcome["ok"] is True  # interrupted is no failure
        assert outcome["outcome"] == "interrupted"
        assert outcome["interrupted_by"] == "backup"

        def backed_up() -> bool:
            return practice.status()["targets"]["local"]["last_success"] is not None

        wait_for(backed_up, timeout=120, what="the nightly backup")
        run = practice.status()["targets"]["local"]["last_success"]
        started = datetime.fromisoformat(run["started_at"])
        late = started - due
        print(f"nightly due {due.isoformat()}, backup started {late.total_seconds():.2f} s after")
        assert timedelta(0) <= late < AT_ONCE
        # Its borg create did not wait for the lock (it would wait up to 300 s).
        assert run["duration"] < 60
        # The interruption is no failure: no failed run, no red light.
        assert practice.status()["targets"]["local"]["last_failure"] is None

        # The check a person asked runs again once the box is idle (it holds the lock again).
        def again() -> bool:
            running = _maintenance(practice)["running"]
            return running is not None and running["reason"] == "asked, again"

        wait_for(again, timeout=60, what="the check asked again")
        wait_for(lambda: _lock_held(practice), what="the check's borg again")
    finally:
        daemon.stop()

    state = State.open(
        practice.state_dir / "state.db", logger=logging.getLogger("t"), now=datetime.now(UTC)
    )
    try:
        recorded = last_interruption(state, "local", "data")
    finally:
        state.close()
    assert recorded is not None
    # Read once the daemon is stopped: the check asked again holds the lock until then.
    assert len(practice.archive_names()) == 1
    at, by = recorded
    assert by == "backup"
    assert abs(at - due) < AT_ONCE


def _many_chunks(practice: Practice, mib: int) -> None:
    """An archive of ``mib`` MiB in 512-byte chunks (``--verify-data`` reads each one)."""
    filler = practice.root / "filler"
    filler.mkdir()
    with open(filler / "blocks.bin", "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    practice.borg(
        "create", "--chunker-params", "fixed,512", "-C", "none",
        f"{practice.repository()}::filler", str(filler),
    )  # fmt: skip


def test_a_nightly_due_during_a_real_verify_data_starts_at_once(tmp_path: Path) -> None:
    binary("borg")
    due = _next_due(timedelta(seconds=60))
    practice = Practice(tmp_path, daily=due.strftime("%H:%M"), lock_wait=300)
    fill_share(practice.share, files=30)
    with daemon_running(practice) as daemon:
        practice.coffre("target", "init", "local", check=True)
        _many_chunks(practice, 200)  # some 400,000 chunks: seconds of --verify-data
        assert datetime.now(PARIS) < due - timedelta(seconds=3), "set-up too slow"
        # Asked just before the nightly: a person's check runs even in the quiet margin.
        wait_for(
            lambda: datetime.now(PARIS) >= due - timedelta(seconds=2),
            timeout=(due - datetime.now(PARIS)).total_seconds(),
            what="two seconds before the nightly",
        )
        with ThreadPoolExecutor(1) as pool:
            asked = pool.submit(
                practice.job_events,
                {"op": "check", "targets": ["local"], "kinds": ["data"], "wait": True},
            )
            wait_for(lambda: _lock_held(practice), what="borg check --verify-data's lock")
            assert "--verify-data" in _borg_commands(daemon)
            events = asked.result(timeout=120)
        outcome = events[-1]["targets"]["local"]
        assert (outcome["ok"], outcome["outcome"], outcome["interrupted_by"]) == (
            True,
            "interrupted",
            "backup",
        )
        wait_for(
            lambda: practice.status()["targets"]["local"]["last_success"] is not None,
            timeout=120,
            what="the nightly backup",
        )
        run = practice.status()["targets"]["local"]["last_success"]
        late = datetime.fromisoformat(run["started_at"]) - due
        print(f"verify-data cut; nightly started {late.total_seconds():.2f} s after its due time")
        assert timedelta(0) <= late < AT_ONCE
        assert run["duration"] < 60  # its borg create never waited for the lock


def _borg_commands(daemon: Daemon) -> str:
    """The command lines of the daemon's borg children, joined."""
    lines = []
    for pid in daemon.children():
        with contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return "\n".join(lines)


def test_scheduled_maintenance_starts_on_an_idle_box_and_yields_to_a_backup(
    tmp_path: Path,
) -> None:
    binary("borg")
    # The nightly hours away: outside its quiet margin, maintenance may start.
    far = datetime.now(PARIS) + timedelta(hours=6)
    practice = Practice(tmp_path, daily=far.strftime("%H:%M"), lock_wait=300)
    fill_share(practice.share, files=30)
    daemon = Daemon(practice, wrap=(sys.executable, "-m", "tests.integration.held_check")).ready()
    try:
        # No repository yet: nothing to check.
        assert _maintenance(practice)["running"] is None
        practice.coffre("target", "init", "local", check=True)

        def scheduled() -> bool:
            running = _maintenance(practice)["running"]
            return running is not None and running["reason"] == "schedule"

        wait_for(scheduled, what="the first scheduled check, once the box is idle")
        wait_for(lambda: _lock_held(practice), what="the check's borg holding the lock")
        view = _maintenance(practice)
        assert view["next_kind"] == "repository" and view["next_target"] == "local"

        asked = datetime.now(UTC)
        backup = practice.coffre("backup", "--wait", timeout=120)
        took = datetime.now(UTC) - asked
        assert backup.returncode == 0, backup.stdout + backup.stderr
        print(f"backup --wait beside a running check took {took.total_seconds():.2f} s")
        assert took < timedelta(seconds=60)  # never the lock's 300 s
        # The interrupted check is planned again, and starts again on the idle box.
        wait_for(scheduled, what="the scheduled check again")
    finally:
        daemon.stop()
    state = State.open(
        practice.state_dir / "state.db", logger=logging.getLogger("t"), now=datetime.now(UTC)
    )
    try:
        recorded = last_interruption(state, "local", "repository")
    finally:
        state.close()
    assert recorded is not None and recorded[1] == "backup"
