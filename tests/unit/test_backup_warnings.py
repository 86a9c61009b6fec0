"""A backup borg ends with warnings: sorted by reason, recorded as "warning", logged per file,
reported to the CLI with its own exit code (fake borg; the real one is in
tests/integration/test_backup_warnings.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from coffre.borg.create_warnings import FILE_MSGIDS, classify
from coffre.borg.records import LogRecord
from coffre.cli import support as cli_support
from coffre.core.outcomes import BackupWarnings, Reason
from coffre.jobs import backup
from coffre.jobs.queue import JobQueue, JobResult
from coffre.jobs.services import Services
from coffre.observe import status
from coffre.storage import logs
from coffre.storage.state import SUCCESS, WARNING, RunStats, State
from coffre.targets.usb.job import run_disk_job
from coffre.targets.usb.repository import UsbRepository
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, config
from tests.unit.test_disk_job import FakeDisk
from tests.unit.test_executor import NOW, _run

SHARE = "/srv/coffre/partage"

#: What borg 1.4.5 --log-json says of three files it could not save and one that changed.
RECORDS = (
    LogRecord(
        "WARNING",
        f"{SHARE}/Patients/DUPONT/radio.dcm: read: [Errno 5] Input/output error",
        "BackupIOError",
        "borg.archiver",
    ),
    LogRecord(
        "WARNING",
        f"{SHARE}/Compta/2026.xlsx: open: [Errno 13] Permission denied: '2026.xlsx'",
        "BackupPermissionError",
        "borg.archiver",
    ),
    LogRecord(
        "WARNING",
        f"{SHARE}/Agenda/verrou.tmp: open: [Errno 2] No such file or directory: 'verrou.tmp'",
        "BackupFileNotFoundError",
        "borg.archiver",
    ),
    LogRecord(
        "WARNING",
        f"{SHARE}/Agenda/agenda.db: file changed while we backed it up",
        "FileChangedWarning",
        "borg.archiver",
    ),
)
NAMES = ("radio.dcm", "2026.xlsx", "verrou.tmp", "agenda.db")


# --- sorting borg's warnings (pure) ---------------------------------------------------


def test_borgs_warnings_are_sorted_by_their_msgid() -> None:
    noise = LogRecord("INFO", "Remote: something", "", "borg.repository")
    pattern = LogRecord(
        "WARNING",
        "Include pattern 'x' never matched.",
        "IncludePatternNeverMatchedWarning",
        "borg.archiver",
    )
    counts, warned = classify((*RECORDS, noise, pattern))
    assert counts == BackupWarnings.of(
        {
            Reason.IO_ERROR: 1,
            Reason.PERMISSION: 1,
            Reason.VANISHED: 1,
            Reason.CHANGED: 1,
            Reason.OTHER: 1,
        }
    )
    assert [w.reason for w in warned] == [
        Reason.IO_ERROR,
        Reason.PERMISSION,
        Reason.VANISHED,
        Reason.CHANGED,
        Reason.OTHER,
    ]
    assert warned[0].message == RECORDS[0].message


def test_the_msgids_are_borgs_own_warnings_of_a_file() -> None:
    """borg logs ``type(exc).__qualname__`` as the msgid (archiver.print_warning_instance):
    each name must be one of the pinned borg's classes, with a warning exit code."""
    from borg.helpers import errors  # type: ignore[import-untyped]

    for msgid in FILE_MSGIDS:
        found = getattr(errors, msgid)
        assert found.__qualname__ == msgid
        assert 100 <= found.exit_mcode <= 127, msgid


def test_the_summary_counts_without_naming_and_changed_files_are_not_missing() -> None:
    warnings = BackupWarnings.of(
        {Reason.IO_ERROR: 2, Reason.PERMISSION: 1, Reason.VANISHED: 1, Reason.CHANGED: 3}
    )
    assert warnings.not_backed_up == 4
    assert warnings.summary == (
        "4 file(s) not backed up: 2 I/O error, 1 permission denied, "
        "1 vanished during the backup; "
        "3 file(s) changed while being read (saved as read, may be inconsistent)"
    )
    assert BackupWarnings().summary == "borg ended with warnings"
    assert BackupWarnings().not_backed_up == 0


def test_counts_round_trip_and_a_newer_reason_reads_as_other() -> None:
    warnings = BackupWarnings.of({Reason.UNREADABLE: 2, Reason.VANISHED: 0})
    assert BackupWarnings.from_json(warnings.to_json()) == warnings
    assert warnings.counts == {Reason.UNREADABLE: 2}
    newer = BackupWarnings.from_json('{"io_error": 1, "quantum": 2, "other": 1}')
    assert newer.counts == {Reason.IO_ERROR: 1, Reason.OTHER: 3}
    for bad in ("[1]", '{"io_error": "1"}', '{"io_error": true}', "nope"):
        with pytest.raises(ValueError):
            BackupWarnings.from_json(bad)
    with pytest.raises(ValueError):
        BackupWarnings.of({Reason.IO_ERROR: -1})
    assert set(warnings.as_dict()) == {r.value for r in Reason}


# --- the backup step and the executor, with a fake borg --------------------------------


def _warning_borg(records: Sequence[LogRecord] = RECORDS, rc: int = 1) -> FakeBorg:
    """borg create ending with ``rc`` and ``records`` (a warning code by default)."""
    return FakeBorg(create_logs=records, create_rc=rc)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k.isupper()}


def test_a_create_with_warnings_is_recorded_logged_per_file_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="t")
    result, state = _run(tmp_path, _warning_borg())

    # The job's result: done (the archive is made, retention ran), but not clean.
    outcome = result["targets"]["local"]
    assert result["ok"] is True and outcome["ok"] is True
    assert outcome["outcome"] == "warning"
    assert outcome["not_backed_up"] == 3
    assert outcome["warning_summary"].startswith("3 file(s) not backed up: 1 I/O error")
    assert outcome["retention"]["ok"] is True
    assert not [name for name in NAMES if name in json.dumps(result)]

    run = state.last_finished_run("local", "backup")
    assert run is not None and run.outcome == WARNING
    assert run.warnings == classify(RECORDS)[0]
    known = state.archives("local")
    assert known is not None and run.stats is not None
    assert run.stats.archive in [a.name for a in known]

    per_file = [
        r for r in caplog.records if _fields(r).get("MESSAGE_ID") == logs.MSG_FILE_NOT_BACKED_UP
    ]
    assert [r.levelno for r in per_file] == [logging.WARNING] * 4
    assert [_fields(r)["COFFRE_WARNING_REASON"] for r in per_file] == [
        "io_error",
        "permission",
        "vanished",
        "changed",
    ]
    for record, name in zip(per_file, NAMES, strict=True):
        assert name in record.getMessage()
        assert _fields(record)["COFFRE_TARGET"] == "local"
    assert per_file[0].getMessage() == (
        f"backup of local: file not backed up (I/O error): {RECORDS[0].message}"
    )
    [summary] = [
        r for r in caplog.records if _fields(r).get("MESSAGE_ID") == logs.MSG_BACKUP_WARNING
    ]
    assert summary.levelno == logging.WARNING
    assert _fields(summary)["COFFRE_FILES_NOT_BACKED_UP"] == "3"
    assert summary.getMessage().startswith("backup of local ended with warnings: archive cabinet-")
    assert not [name for name in NAMES if name in summary.getMessage()]
    assert not [
        r for r in caplog.records if _fields(r).get("MESSAGE_ID") == logs.MSG_BACKUP_SUCCEEDED
    ]


def test_warnings_of_a_run_that_ended_with_rc_0_change_nothing(tmp_path: Path) -> None:
    """rc 0 may come with WARNING records (borg's notes on itself): no file is missing."""
    note = LogRecord("WARNING", "Using a pure-python msgpack! This will be very slow.", "", "borg")
    result, state = _run(tmp_path, _warning_borg((note,), rc=0))
    assert "outcome" not in result["targets"]["local"]
    run = state.last_finished_run("local", "backup")
    assert run is not None and run.outcome == SUCCESS and run.warnings is None


def test_only_so_many_files_are_listed_then_how_many_more(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="t")
    many = [RECORDS[0]] * (backup.MAX_LISTED + 5)
    backup.log_warned(logging.getLogger("t"), "local", classify(many)[1])
    assert len(caplog.records) == backup.MAX_LISTED + 1
    assert (
        caplog.records[-1].getMessage()
        == "backup of local: 5 more warning(s) of borg not listed here"
    )


# --- the USB disk job: the same code path ---------------------------------------------------


def _disk_job(tmp_path: Path, borg: FakeBorg, previous: BackupWarnings | None) -> State:
    state = State.open(tmp_path / "s.db", logger=logging.getLogger("t"), now=NOW)
    state.enroll_disk("disque-a", "uuid", REPO_ID, NOW - timedelta(days=3))
    earlier = state.start_run("disque-a", "backup", NOW - timedelta(days=1))
    stats = RunStats("cabinet-earlier", 1, 1, 1, 1, previous)
    state.finish_run(earlier, NOW - timedelta(days=1), stats=stats)
    run = state.start_run("disque-a", "backup", NOW)
    services = Services(config(tmp_path, LOCAL), state, borg, Clock(NOW), logging.getLogger("t"))

    async def power_off(devnode: str, usb: str | None) -> None:
        pass

    repo = cast(UsbRepository, FakeDisk())
    made, _ = asyncio.run(run_disk_job(services, repo, REPO_ID, power_off=power_off))
    state.finish_run(run, NOW, stats=made)  # as the executor's _step does
    return state


def test_a_disk_job_with_warnings_is_a_warning_and_the_next_plug_needs_no_repair(
    tmp_path: Path,
) -> None:
    borg = _warning_borg()
    state = _disk_job(tmp_path, borg, previous=BackupWarnings.of({Reason.VANISHED: 1}))
    # The previous job ended with warnings, not in trouble: no repository check first.
    calls = [c[0] for c in borg.calls]
    assert calls.count("check") == 1 and calls.index("create") < calls.index("check")
    run = state.last_finished_run("disque-a", "backup")
    assert run is not None and run.outcome == WARNING
    assert run.warnings is not None and run.warnings.not_backed_up == 3
    assert state.warnings_in_a_row("disque-a") == 2


# --- what the CLI shows and exits with -------------------------------------------------------


def test_status_tells_the_count_and_reasons_never_the_names(tmp_path: Path) -> None:
    _, state = _run(tmp_path, _warning_borg())

    async def idle(job: Any) -> JobResult:
        raise AssertionError("no job runs here")

    report = status.build(config(tmp_path, LOCAL), state, JobQueue(idle), NOW, None)
    local = report["targets"]["local"]
    for run in (local["last_attempt"], local["last_success"]):
        assert run is not None and run["warnings"] is not None
        assert run["outcome"] == "warning"
        assert run["not_backed_up"] == 3
        assert run["warnings"]["io_error"] == 1 and run["warnings"]["changed"] == 1
        assert str(run["warning_summary"]).startswith("3 file(s) not backed up")
    assert local["last_failure"] is None
    assert not [name for name in NAMES if name in json.dumps(report)]


def _result(*outcomes: dict[str, Any]) -> dict[str, Any]:
    targets = {f"t{i}": outcome for i, outcome in enumerate(outcomes)}
    return {"event": "result", "ok": all(o["ok"] for o in outcomes), "targets": targets}


WARNED = {"ok": True, "outcome": "warning", "not_backed_up": 2, "warning_summary": "2 file(s)"}


def test_a_partial_backup_exits_7_a_failure_still_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert cli_support.job_exit(_result({"ok": True})) == cli_support.EXIT_OK
    assert cli_support.job_exit(_result({"ok": True}, WARNED)) == cli_support.EXIT_WARNINGS == 7
    failed = {"ok": False, "error": {"kind": "borg", "message": "x", "hint": ""}}
    assert cli_support.job_exit(_result(WARNED, failed)) == cli_support.EXIT_FAILED


def test_follow_prints_a_partial_backup_as_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    done = {"event": "target_done", "target": "local", "archive": "cabinet-1", **WARNED}
    cli_support.follow([done, _result(WARNED)], quiet_progress=True)
    assert err.getvalue() == (
        "local: WARNING, archive cabinet-1: 2 file(s) (the journal names them)\n"
    )
