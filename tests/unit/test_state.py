"""The state database: runs, archives, repository IDs; survives restarts and damage."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.core.errors import BorgNoSpace
from coffre.core.model import Archive
from coffre.core.outcomes import BackupWarnings, Reason
from coffre.jobs.archive_list import LIST_MAX_AGE
from coffre.storage.state import FAILED, INTERRUPTED, SUCCESS, WARNING, RunStats, State

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


# --- backups that end with borg warnings ------------------------------------------


def _warned(state: State, at: datetime, counts: dict[Reason, int], archive: str = "box-w") -> int:
    run = state.start_run("local", "backup", at)
    warnings = BackupWarnings.of(counts)
    state.finish_run(run, at + timedelta(seconds=5), stats=RunStats(archive, 1, 1, 1, 7, warnings))
    return run


def test_a_backup_with_warnings_is_its_own_outcome_with_counts_and_made_its_archive(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    state = _open(db)
    _warned(state, T0, {Reason.IO_ERROR: 2, Reason.VANISHED: 1, Reason.CHANGED: 1})
    state.close()

    again = _open(db)
    attempt = again.last_finished_run("local", "backup")
    assert attempt is not None and attempt.outcome == WARNING
    assert attempt.warnings is not None
    assert attempt.warnings.not_backed_up == 3
    assert attempt.warnings.count(Reason.CHANGED) == 1
    # Not a clean success, not a failure: but the archive exists.
    assert again.last_run("local", "backup", outcome=SUCCESS) is None
    assert again.last_failure("local") is None
    assert again.error_counts() == {}
    completed = again.last_completed("local")
    assert completed is not None and completed.stats is not None
    assert completed.stats.archive == "box-w"
    with_stats = again.last_run_with_stats("local")
    assert with_stats is not None and with_stats.id == completed.id


def test_a_clean_backup_records_no_warnings(tmp_path: Path) -> None:
    state = _open(tmp_path / "state.db")
    run = state.start_run("local", "backup", T0)
    state.finish_run(run, T0, stats=RunStats("box-1", 1, 1, 1, 1))
    last = state.last_finished_run("local", "backup")
    assert last is not None and last.outcome == SUCCESS and last.warnings is None


def test_warnings_in_a_row_count_archives_since_the_last_clean_one(tmp_path: Path) -> None:
    state = _open(tmp_path / "state.db")
    assert state.warnings_in_a_row("local") == 0
    _warned(state, T0, {Reason.PERMISSION: 1})
    assert state.warnings_in_a_row("local") == 1
    # A failure made no archive: it neither counts nor breaks the row.
    failed = state.start_run("local", "backup", T0 + timedelta(hours=1))
    state.finish_run(failed, T0 + timedelta(hours=1), error=BorgNoSpace("full", rc=2))
    # Nor does a disk job that found today's archive there (success, no archive).
    skipped = state.start_run("local", "backup", T0 + timedelta(hours=2))
    state.finish_run(skipped, T0 + timedelta(hours=2))
    _warned(state, T0 + timedelta(days=1), {Reason.PERMISSION: 1})
    assert state.warnings_in_a_row("local") == 2
    assert state.warnings_in_a_row("other") == 0
    assert state.warning_counts() == {"local": 2}
    clean = state.start_run("local", "backup", T0 + timedelta(days=2))
    state.finish_run(clean, T0 + timedelta(days=2), stats=RunStats("box-c", 1, 1, 1, 1))
    assert state.warnings_in_a_row("local") == 0
    assert state.warning_counts() == {"local": 2}  # a counter: it never goes back


def test_a_state_of_the_previous_schema_gets_the_warnings_column(tmp_path: Path) -> None:
    """A box upgraded with its history: the runs before keep what they said."""
    db = tmp_path / "state.db"
    old = sqlite3.connect(db)
    old.executescript(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, kind TEXT NOT NULL,
            started_at REAL NOT NULL, finished_at REAL, outcome TEXT NOT NULL,
            error_kind TEXT, error_message TEXT, archive TEXT, original_bytes INTEGER,
            compressed_bytes INTEGER, deduplicated_bytes INTEGER, nfiles INTEGER
        );
        PRAGMA user_version = 1;
        """
    )
    old.execute(
        "INSERT INTO runs (target, kind, started_at, finished_at, outcome, archive, "
        "original_bytes, compressed_bytes, deduplicated_bytes, nfiles) "
        "VALUES ('local', 'backup', ?, ?, 'success', 'box-old', 1, 1, 1, 1)",
        (T0.timestamp(), T0.timestamp()),
    )
    old.commit()
    old.close()

    state = _open(db)
    before = state.last_completed("local")
    assert before is not None and before.outcome == SUCCESS and before.warnings is None
    _warned(state, T0 + timedelta(days=1), {Reason.IO_ERROR: 1})
    after = state.last_completed("local")
    assert after is not None and after.outcome == WARNING
    assert after.warnings == BackupWarnings.of({Reason.IO_ERROR: 1})
