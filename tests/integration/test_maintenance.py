"""The check schedule never delays a nightly backup (issue 13): the real daemon, a real borg.

The long check is a real ``borg with-lock`` on the repository (see
``tests/integration/held_check.py``): a borg process holding the repository's
exclusive lock, exactly what would keep the nightly's ``borg create`` waiting.
The nightly comes while it runs: the backup starts at once (its start minus
its due time is measured), the check is recorded interrupted, and runs again
once the backup is done.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coffre.jobs.maintenance import last_interruption
from coffre.storage.state import State
from tests.integration.harness import Daemon, Practice, fill_share, wait_for
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
