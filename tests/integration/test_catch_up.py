"""The nightly run: missed while the box was off, it runs once at start."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coffre.daemon.service import NIGHTLY_KEY
from coffre.storage.state import State
from tests.integration.harness import Practice, daemon_running, wait_for


def _set_last_nightly(practice: Practice, moment: datetime) -> None:
    state = State.open(
        practice.state_dir / "state.db", logger=logging.getLogger("test"), now=moment
    )
    state.set_time(NIGHTLY_KEY, moment)
    state.close()


def _last_nightly(practice: Practice) -> datetime | None:
    """When the last nightly run the daemon recorded as done was due."""
    state = State.open(
        practice.state_dir / "state.db", logger=logging.getLogger("test"), now=datetime.now(UTC)
    )
    try:
        return state.get_time(NIGHTLY_KEY)
    finally:
        state.close()


def test_missed_nights_give_one_catch_up_run_at_start(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    (practice.share / "agenda.db").write_text("rdv\n")
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        # A first start does not run at once: nothing was missed yet.
        assert practice.status()["targets"]["local"]["last_attempt"] is None

    # The box was off for three nights.
    off = datetime.now(UTC) - timedelta(days=3, hours=1)
    _set_last_nightly(practice, off)
    with daemon_running(practice):

        def one_success() -> bool:
            return practice.status()["targets"]["local"]["last_success"] is not None

        wait_for(one_success, timeout=120, what="the catch-up backup")
        wait_for(lambda: practice.status()["running"] is None, what="the job end")
        status = practice.status()
        assert status["queued"] == []
        assert len(practice.archive_names()) == 1  # one run, not three
    # It ran as the last night's run, not as any backup: the nights before are done with.
    caught_up = _last_nightly(practice)
    assert caught_up is not None and off + timedelta(days=2) < caught_up <= datetime.now(UTC)

    # Restarted the same day after it: not due again.
    with daemon_running(practice):
        assert practice.status()["running"] is None
        assert practice.status()["queued"] == []
    assert len(practice.archive_names()) == 1
