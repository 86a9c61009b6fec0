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


def test_missed_nights_give_one_catch_up_run_at_start(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    (practice.share / "agenda.db").write_text("rdv\n")
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        # A first start does not run at once: nothing was missed yet.
        assert practice.status()["targets"]["local"]["last_attempt"] is None

    # The box was off for three nights.
    _set_last_nightly(practice, datetime.now(UTC) - timedelta(days=3, hours=1))
    with daemon_running(practice) as again:

        def one_success() -> bool:
            return practice.status()["targets"]["local"]["last_success"] is not None

        wait_for(one_success, timeout=120, what="the catch-up backup")
        wait_for(lambda: practice.status()["running"] is None, what="the job end")
        status = practice.status()
        assert status["queued"] == []
        assert len(practice.archive_names()) == 1  # one run, not three
    assert "nightly run due at" in again.logs()

    # Restarted the same day after it: not due again.
    with daemon_running(practice):
        assert practice.status()["running"] is None
        assert practice.status()["queued"] == []
    assert len(practice.archive_names()) == 1
