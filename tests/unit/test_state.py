"""The state database: runs, archives, repository IDs; survives restarts and damage."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.errors import BorgNoSpace
from coffre.model import Archive
from coffre.pruning import LIST_MAX_AGE
from coffre.state import FAILED, INTERRUPTED, SUCCESS, RunStats, State

T0 = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)
LOG = logging.getLogger("test")


def _open(path: Path) -> State:
    return State.open(path, logger=LOG, now=T0)


def test_runs_and_repository_ids_survive_a_reopen(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    state = _open(db)
    state.record_repository("local", "abc123", "/srv/repo", T0)
    run = state.start_run("local", "backup", T0)
    stats = RunStats("box-1", 100, 50, 10, 3)
    state.finish_run(run, T0 + timedelta(seconds=12), stats=stats)
    state.close()

    again = _open(db)
    assert again.repository_id("local") == "abc123"
    last = again.last_run("local", "backup", outcome=SUCCESS)
    assert last is not None
    assert last.stats == stats
    assert last.duration == 12
    assert db.stat().st_mode & 0o777 == 0o600


def test_a_failure_keeps_its_kind_and_message(tmp_path: Path) -> None:
    state = _open(tmp_path / "state.db")
    run = state.start_run("local", "backup", T0)
    state.finish_run(run, T0, error=BorgNoSpace("disk full", rc=2))
    failure = state.last_failure("local")
    assert failure is not None
    assert (failure.outcome, failure.error_kind, failure.error_message) == (
        FAILED,
        "no_space",
        "disk full",
    )
    assert state.last_run("local", "backup", outcome=SUCCESS) is None
    assert state.error_counts() == {("local", "no_space"): 1}


def test_runs_left_running_by_a_killed_daemon_are_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    state = _open(db)
    state.replace_archives("local", [Archive(T0, "box-a", "1")], T0)
    state.replace_archives("usb", [Archive(T0, "box-a", "1")], T0)
    state.start_run("local", "backup", T0)
    state.close()  # as if SIGKILLed: the run never finished

    again = _open(db)
    assert again.mark_interrupted_runs(T0 + timedelta(minutes=1)) == 1
    last = again.last_run("local", "backup")
    assert last is not None and last.outcome == INTERRUPTED
    # borg may have left a checkpoint there: that target's list is still shown
    # (status must not say "not listed yet"), but stale: the next job asks borg.
    assert again.archives("local") == [Archive(T0, "box-a", "1")]
    listed_at = again.archives_listed_at("local")
    assert listed_at is not None and T0 - listed_at > LIST_MAX_AGE
    assert again.archives_listed_at("usb") == T0
    assert again.mark_interrupted_runs(T0) == 0


def test_archive_list_is_unknown_until_listed_then_tracks_adds_and_removes(tmp_path: Path) -> None:
    state = _open(tmp_path / "state.db")
    assert state.archives("local") is None
    a = Archive(T0, "box-a", "1")
    b = Archive(T0 + timedelta(days=1), "box-b", "2")
    state.replace_archives("local", [b, a], T0)
    assert state.archives("local") == [a, b]
    c = Archive(T0 + timedelta(days=2), "box-c", "3")
    state.add_archive("local", c)
    state.remove_archives("local", ["box-a"])
    assert state.archives("local") == [b, c]
    assert state.archives("other") is None


def test_recording_a_new_repository_forgets_the_old_archives(tmp_path: Path) -> None:
    state = _open(tmp_path / "state.db")
    state.replace_archives("local", [Archive(T0, "box-a", "1")], T0)
    state.record_repository("local", "new-id", "/srv/repo", T0)
    assert state.archives("local") is None


def test_an_unreadable_state_file_is_moved_aside_not_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "state.db"
    garbage = b"this is not an sqlite database, but it is somebody's evidence" * 100
    db.write_bytes(garbage)
    with caplog.at_level(logging.ERROR, logger="test"):
        state = _open(db)
    moved = tmp_path / "state.db.unreadable-20261129T013000Z"
    assert moved.read_bytes() == garbage
    assert "unreadable" in caplog.text and str(moved) in caplog.text
    assert state.archives("local") is None  # a fresh, working database
    state.set_meta("k", "v")
    assert state.get_meta("k") == "v"


def test_times_round_trip_as_aware_instants(tmp_path: Path) -> None:
    state = _open(tmp_path / "state.db")
    state.set_time("nightly.last_due", T0)
    assert state.get_time("nightly.last_due") == T0
    with pytest.raises(ValueError, match="aware"):
        state.set_time("x", datetime(2026, 1, 1))
