"""Honest outcomes: a backup borg ends with warnings is a "warning", never a success.

The share is seen through a FUSE layer (``faulty_share``) that fails on
three files as a dying disk or a refusing share would: an I/O error on
read, a permission refused on open, a file gone between the walk and its
read. The real borg makes its archive without them and exits with a
warning code; the daemon must then say so everywhere: the job's exit code,
``coffre status`` (a count and the reasons, no file name), the journal (one
line per file, naming it), the metrics (counts only), the lights (amber),
while the archive is kept as the target's last backup. Once the share
reads again, a clean backup settles it.
"""

from __future__ import annotations

import json
from pathlib import Path

from coffre.storage import logs
from tests.integration import journal
from tests.integration.faulty_share import faulty_share
from tests.integration.harness import Practice, daemon_running, fill_share, wait_for
from tests.integration.observing import ATTENTION, OK, ObservedPractice, parse, value

#: The files the share's disk fails on, and how.
BROKEN = {
    "Patients/DUPONT Jean/radio-thorax.dcm": "eio",
    "Compta/honoraires-2026.xlsx": "eacces",
    "Agenda/verrou-agenda.tmp": "enoent",
}
EXIT_WARNINGS = 7


def _disk_of_the_share(root: Path) -> Path:
    """What the share's disk holds: ordinary files, and the three that will fail."""
    source = root / "disque-du-partage"
    fill_share(source, files=30)
    for rel in BROKEN:
        path = source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode() * 100)
    return source


def _archive_paths(practice: Practice, archive: str) -> list[str]:
    listed = practice.borg(
        "list", "--json-lines", f"{practice.repository()}::{archive}"
    ).stdout.splitlines()
    return [json.loads(line)["path"] for line in listed]


def test_a_backup_that_cannot_read_files_is_a_warning_everywhere_until_a_clean_one(
    journald: None, tmp_path: Path
) -> None:
    practice = ObservedPractice(tmp_path)
    source = _disk_of_the_share(tmp_path)
    names = [Path(rel).name for rel in BROKEN]
    with (
        faulty_share(source, practice.share, BROKEN),
        daemon_running(practice, log_target="journal") as daemon,
    ):
        practice.coffre("target", "init", "local", check=True)
        done = practice.coffre("backup", "--wait")

        # A script sees a partial backup: neither 0 nor "failed" (1).
        assert done.returncode == EXIT_WARNINGS, done.stdout + done.stderr
        assert "local: WARNING" in done.stderr
        assert "3 file(s) not backed up" in done.stderr

        status = practice.coffre("status", "--json", check=True).stdout
        target = json.loads(status)["targets"]["local"]
        attempt = target["last_attempt"]
        assert attempt["outcome"] == "warning"
        assert attempt["not_backed_up"] == 3
        assert attempt["warnings"] == {
            "permission": 1,
            "io_error": 1,
            "unreadable": 0,
            "vanished": 1,
            "changed": 0,
            "other": 0,
        }
        assert attempt["warning_summary"] == (
            "3 file(s) not backed up: 1 I/O error, 1 permission denied, "
            "1 vanished during the backup"
        )
        # The archive was made: it is the target's last backup (freshness, restore points).
        archive = attempt["archive"]
        assert target["last_success"]["archive"] == archive
        assert target["last_failure"] is None
        assert target["slots"]["J"] is True
        # Names stay on the box: not in what status sends.
        assert not [name for name in names if name in status]

        printed = practice.coffre("status", check=True).stdout
        assert "last backup (PARTIAL)" in printed
        assert "WARNING: 3 file(s) not backed up: 1 I/O error" in printed

        # Metrics: counts, never a name.
        scraped = practice.scrape()
        series = parse(scraped)
        assert value(series, "coffre_last_attempt_success", target="local") == 0
        assert value(series, "coffre_last_attempt_warning", target="local") == 1
        assert value(series, "coffre_files_not_backed_up", target="local") == 3
        assert value(series, "coffre_backup_warnings_in_a_row", target="local") == 1
        assert value(series, "coffre_backup_warnings_total", target="local") == 1
        assert value(series, "coffre_last_success_timestamp_seconds", target="local") > 0
        errors = [v for (name, _), v in series.items() if name == "coffre_errors_total"]
        assert errors and sum(errors) == 0  # not counted as a failure
        assert not [name for name in names if name in scraped]

        # The lights: attention (amber), not failure, not "all good".
        wait_for(lambda: practice.lights() == ATTENTION, timeout=60, what="amber")

        # The archive exists and lacks exactly the three files.
        assert practice.archive_names() == [archive]
        paths = _archive_paths(practice, archive)
        assert not [p for p in paths if any(p.endswith(rel) for rel in BROKEN)]
        assert sum(p.endswith(".txt") for p in paths) == 30

        # A second night with the same broken files: two in a row (the alert's condition).
        again = practice.coffre("backup", "--wait")
        assert again.returncode == EXIT_WARNINGS, again.stderr
        series = parse(practice.scrape())
        assert value(series, "coffre_backup_warnings_in_a_row", target="local") == 2
        assert value(series, "coffre_backup_warnings_total", target="local") == 2
    pid = daemon.process.pid

    # The journal names each file, with why (in the words support reads), and sums up.
    files = journal.entries(logs.MSG_FILE_NOT_BACKED_UP, pid)
    assert all(entry["PRIORITY"] == "4" for entry in files), files
    for rel, why in (
        ("Patients/DUPONT Jean/radio-thorax.dcm", "not backed up (I/O error)"),
        ("Compta/honoraires-2026.xlsx", "not backed up (permission denied)"),
        ("Agenda/verrou-agenda.tmp", "not backed up (vanished during the backup)"),
    ):
        lines = [entry["MESSAGE"] for entry in files if rel in entry["MESSAGE"]]
        assert len(lines) == 2, (rel, lines)  # one per backup
        assert all(line.startswith("backup of local: file " + why) for line in lines), lines
    summaries = journal.entries(logs.MSG_BACKUP_WARNING, pid)
    assert [e["COFFRE_FILES_NOT_BACKED_UP"] for e in summaries] == ["3", "3"], summaries
    assert all(e["PRIORITY"] == "4" for e in summaries), summaries
    archives = "backup of local ended with warnings: archive cabinet-"
    assert all(e["MESSAGE"].startswith(archives) for e in summaries), summaries
    assert journal.entries(logs.MSG_BACKUP_SUCCEEDED, pid) == []
    said = [entry["MESSAGE"] for entry in journal.entries(None, pid)]
    assert [
        m
        for m in said
        if m.startswith("lights: attention (last backup of local ended with warnings: 3 file(s)")
    ], said

    # The share's disk reads again: a clean backup, and every sign goes back to normal.
    with (
        faulty_share(source, practice.share),
        daemon_running(practice),
    ):
        assert practice.coffre("backup", "--wait").returncode == 0
        attempt = practice.status()["targets"]["local"]["last_attempt"]
        assert attempt["outcome"] == "success" and attempt["not_backed_up"] is None
        series = parse(practice.scrape())
        assert value(series, "coffre_last_attempt_success", target="local") == 1
        assert value(series, "coffre_last_attempt_warning", target="local") == 0
        assert value(series, "coffre_files_not_backed_up", target="local") == 0
        assert value(series, "coffre_backup_warnings_in_a_row", target="local") == 0
        assert value(series, "coffre_backup_warnings_total", target="local") == 2
        wait_for(lambda: practice.lights() == OK, timeout=60, what="green")
        newest = practice.status()["targets"]["local"]["last_success"]["archive"]
        paths = _archive_paths(practice, newest)
        assert all(any(p.endswith(rel) for p in paths) for rel in BROKEN)


def test_each_file_not_backed_up_is_a_journal_entry_of_its_own(
    journald: None, tmp_path: Path
) -> None:
    practice = Practice(tmp_path)
    source = _disk_of_the_share(tmp_path)
    with (
        faulty_share(source, practice.share, BROKEN),
        daemon_running(practice, log_target="journal") as daemon,
    ):
        practice.coffre("target", "init", "local", check=True)
        assert practice.coffre("backup", "--wait").returncode == EXIT_WARNINGS
        pid = daemon.process.pid
        [summary] = journal.wait_for_entries(logs.MSG_BACKUP_WARNING, pid)
        files = journal.entries(logs.MSG_FILE_NOT_BACKED_UP, pid)
        succeeded = journal.entries(logs.MSG_BACKUP_SUCCEEDED, pid)
    assert succeeded == []
    assert summary["PRIORITY"] == "4"
    assert summary["COFFRE_FILES_NOT_BACKED_UP"] == "3"
    assert summary["MESSAGE"].startswith("backup of local ended with warnings: archive cabinet-")
    by_reason = {entry["COFFRE_WARNING_REASON"]: entry for entry in files}
    assert sorted(by_reason) == ["io_error", "permission", "vanished"]
    assert all(entry["PRIORITY"] == "4" for entry in files)
    assert all(entry["COFFRE_TARGET"] == "local" for entry in files)
    assert "radio-thorax.dcm" in by_reason["io_error"]["MESSAGE"]
    assert "honoraires-2026.xlsx" in by_reason["permission"]["MESSAGE"]
    assert "verrou-agenda.tmp" in by_reason["vanished"]["MESSAGE"]
