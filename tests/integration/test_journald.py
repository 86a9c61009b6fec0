"""Logs reach journald through systemd-python, with coffre's MESSAGE_IDs."""

from __future__ import annotations

from pathlib import Path

from coffre.storage import logs
from tests.integration import journal
from tests.integration.harness import Practice, daemon_running


def test_backup_start_and_success_are_in_the_journal_with_their_message_ids(
    journald: None, tmp_path: Path
) -> None:
    practice = Practice(tmp_path)
    (practice.share / "agenda.db").write_text("rdv\n")
    with daemon_running(practice, log_target="journal") as daemon:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        pid = daemon.process.pid
        succeeded = journal.wait_for_entries(logs.MSG_BACKUP_SUCCEEDED, pid)
        started = journal.entries(logs.MSG_BACKUP_STARTED, pid)
        ready = journal.entries(logs.MSG_DAEMON_READY, pid)
    assert started and ready
    assert succeeded[0]["SYSLOG_IDENTIFIER"] == "coffre"
    assert succeeded[0]["MESSAGE"].startswith("backup of local succeeded: archive cabinet-")
    assert succeeded[0]["PRIORITY"] == "6"


def test_a_failed_backup_is_an_error_entry_with_its_kind(journald: None, tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    with daemon_running(practice, log_target="journal") as daemon:
        assert practice.coffre("backup", "--wait").returncode == 1  # not initialised
        pid = daemon.process.pid
        failed = journal.wait_for_entries(logs.MSG_BACKUP_FAILED, pid)
    assert failed[0]["PRIORITY"] == "3"
    assert failed[0]["COFFRE_ERROR_KIND"] == "not_initialised"


def test_each_restore_is_in_the_journal_with_the_audit_lines_hash(
    journald: None, tmp_path: Path
) -> None:
    import hashlib

    from coffre.storage.audit import MSG_AUDIT

    practice = Practice(tmp_path)
    (practice.share / "agenda.db").write_text("rdv\n")
    practice.env["SUDO_USER"] = "support-marc"
    with daemon_running(practice, log_target="journal") as daemon:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        practice.coffre("restore", "agenda.db", check=True)
        pid = daemon.process.pid
        entries = journal.wait_for_entries(MSG_AUDIT, pid, 2)
    lines = (practice.state_dir / "audit.log").read_bytes().splitlines()
    assert [e["COFFRE_AUDIT_HASH"] for e in entries] == [
        hashlib.sha256(line).hexdigest() for line in lines
    ]
    assert [e["COFFRE_AUDIT_SEQ"] for e in entries] == ["1", "2"]
    assert {e["COFFRE_AUDIT_OP"] for e in entries} == {"restore"}
    assert entries[0]["COFFRE_AUDIT_USER"] == "support-marc"
