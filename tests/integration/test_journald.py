"""Logs reach journald through systemd-python, with coffre's MESSAGE_IDs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffre.storage import logs
from tests.integration.harness import Practice, daemon_running, wait_for
from tests.parts import binary

JOURNALD = Path("/lib/systemd/systemd-journald")


@pytest.fixture
def journald() -> Iterator[None]:
    """A running journald: the machine's, or one started for the test (no systemd as PID 1)."""
    if logs.journald_listening():
        yield
        return
    if not JOURNALD.exists():
        from tests.parts import missing

        missing("systemd-journald")
    process = subprocess.Popen([str(JOURNALD)])
    try:
        wait_for(logs.journald_listening, timeout=30, what="journald's socket")
        yield
    finally:
        process.terminate()
        process.wait(30)


def _journal(message_id: str, pid: int) -> list[dict[str, str]]:
    subprocess.run([binary("journalctl"), "--sync"], check=False, capture_output=True)
    out = subprocess.run(
        [
            binary("journalctl"),
            "--no-pager",
            "-o",
            "json",
            f"MESSAGE_ID={message_id}",
            f"_PID={pid}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_backup_start_and_success_are_in_the_journal_with_their_message_ids(
    journald: None, tmp_path: Path
) -> None:
    practice = Practice(tmp_path)
    (practice.share / "agenda.db").write_text("rdv\n")
    with daemon_running(practice, log_target="journal") as daemon:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        pid = daemon.process.pid
        wait_for(
            lambda: bool(_journal(logs.MSG_BACKUP_SUCCEEDED, pid)), timeout=30, what="the entry"
        )
        started = _journal(logs.MSG_BACKUP_STARTED, pid)
        succeeded = _journal(logs.MSG_BACKUP_SUCCEEDED, pid)
        ready = _journal(logs.MSG_DAEMON_READY, pid)
    assert started and ready
    assert succeeded[0]["SYSLOG_IDENTIFIER"] == "coffre"
    assert succeeded[0]["MESSAGE"].startswith("backup of local succeeded: archive cabinet-")
    assert succeeded[0]["PRIORITY"] == "6"


def test_a_failed_backup_is_an_error_entry_with_its_kind(journald: None, tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    with daemon_running(practice, log_target="journal") as daemon:
        assert practice.coffre("backup", "--wait").returncode == 1  # not initialised
        pid = daemon.process.pid
        wait_for(lambda: bool(_journal(logs.MSG_BACKUP_FAILED, pid)), timeout=30, what="entry")
        failed = _journal(logs.MSG_BACKUP_FAILED, pid)
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
        wait_for(lambda: len(_journal(MSG_AUDIT, pid)) == 2, timeout=30, what="audit entries")
        entries = _journal(MSG_AUDIT, pid)
    lines = (practice.state_dir / "audit.log").read_bytes().splitlines()
    assert [e["COFFRE_AUDIT_HASH"] for e in entries] == [
        hashlib.sha256(line).hexdigest() for line in lines
    ]
    assert [e["COFFRE_AUDIT_SEQ"] for e in entries] == ["1", "2"]
    assert {e["COFFRE_AUDIT_OP"] for e in entries} == {"restore"}
    assert entries[0]["COFFRE_AUDIT_USER"] == "support-marc"
