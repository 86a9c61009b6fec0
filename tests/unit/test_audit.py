"""The audit trail: a hash-chained, append-only JSON-lines log, on real files."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import stat
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from coffre.cli import audit as cli_audit
from coffre.cli.client import person_from_env
from coffre.core.config_types import Config, LocalTarget, PathsConfig
from coffre.core.errors import CoffreError, UsageError
from coffre.storage.audit import (
    GENESIS,
    MSG_AUDIT,
    MSG_AUDIT_DAMAGED,
    AuditLog,
    AuditLogDamaged,
    audit_path,
    head_path,
    read_entries,
    verify,
)
from tests.fakes import Journal, config

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
ALICE = {"user": "alice", "login": "root", "uid": 0, "ssh": "10.0.0.5 51234 10.0.0.1 22"}
LOG = logging.getLogger("test.audit")


def _record(log: AuditLog, n: int, **kw: Any) -> None:
    args: dict[str, Any] = {
        "op": "restore",
        "at": T0 + timedelta(minutes=n),
        "person": ALICE,
        "target": "local",
        "archive": "cabinet-2026-11-18T01:30",
        "paths": [f"/srv/share/patient-{n}.pdf"],
        "outcome": "ok",
    }
    args.update(kw)
    log.record(**args)


def _log_with(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "audit.log"
    log = AuditLog(path, LOG)
    for n in range(1, count + 1):
        _record(log, n)
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


# --- the chain ---------------------------------------------------------------


def test_three_records_verify_ok(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 3)
    report = verify(path)
    assert report.ok, report.problems
    assert report.count == 3
    assert report.problems == ()


def test_each_line_chains_to_the_previous_one(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 3)
    lines = _lines(path)
    assert len(lines) == 3
    previous = GENESIS
    for seq, line in enumerate(lines, start=1):
        body = json.loads(line)
        assert body["seq"] == seq
        assert body["prev"] == previous
        assert set(body) == {
            "seq",
            "time",
            "op",
            "person",
            "target",
            "archive",
            "paths",
            "outcome",
            "details",
            "prev",
        }
        # Canonical form: what was written is what json.dumps gives, sorted and compact.
        assert line == json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        previous = hashlib.sha256(line).hexdigest()
    head = json.loads(head_path(path).read_text())
    assert head == {"seq": 3, "hash": previous}


def test_record_returns_the_entry_written(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", LOG)
    at = datetime(2026, 11, 18, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    entry = log.record(
        op="find",
        at=at,
        person=ALICE,
        target=None,
        archive=None,
        paths=("dupont",),
        outcome="asked",
        details={"pattern": "dupont*"},
    )
    line = _lines(tmp_path / "audit.log")[0]
    assert entry.seq == 1
    assert entry.prev == GENESIS
    assert entry.hash == hashlib.sha256(line).hexdigest()
    assert entry.time == at
    assert json.loads(line)["time"] == "2026-11-18T10:00:00+01:00"
    assert entry.paths == ("dupont",)
    assert entry.details == {"pattern": "dupont*"}
    assert read_entries(tmp_path / "audit.log") == [entry]


def test_naive_time_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", LOG)
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(log, 1, at=datetime(2026, 11, 18, 9, 0))
    assert not (tmp_path / "audit.log").exists() or (tmp_path / "audit.log").read_bytes() == b""


def test_one_string_as_paths_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        _record(AuditLog(tmp_path / "audit.log", LOG), 1, paths="/srv/share/a.pdf")


def test_files_are_0600(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(head_path(path).stat().st_mode) == 0o600


def test_a_log_opened_up_is_brought_back_to_0600(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 1)
    path.chmod(0o644)
    _record(AuditLog(path, LOG), 2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_temp_file_left_beside_the_log(tmp_path: Path) -> None:
    _log_with(tmp_path, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.log", "audit.log.head"]


def test_file_name_not_utf8_survives(tmp_path: Path) -> None:
    # os.fsdecode of a Latin-1 name gives a lone surrogate; it must not break the log.
    name = os.fsdecode(b"/srv/share/caf\xe9.pdf")
    path = tmp_path / "audit.log"
    _record(AuditLog(path, LOG), 1, paths=[name])
    assert verify(path).ok
    assert read_entries(path)[0].paths == (name,)


def test_the_state_dir_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "state" / "audit.log"
    _record(AuditLog(path, LOG), 1)
    assert verify(path).ok


# --- two writers ---------------------------------------------------------------


def test_two_writers_interleave_and_the_chain_holds(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    daemon, recover = AuditLog(path, LOG), AuditLog(path, LOG)
    _record(daemon, 1)
    _record(recover, 2, op="recover")
    _record(daemon, 3)
    assert [e.seq for e in read_entries(path)] == [1, 2, 3]
    assert [e.op for e in read_entries(path)] == ["restore", "recover", "restore"]

    def write(log: AuditLog, op: str) -> None:
        for n in range(40):
            _record(log, n, op=op)

    threads = [
        threading.Thread(target=write, args=(daemon, "restore")),
        threading.Thread(target=write, args=(recover, "recover")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify(path)
    assert report.ok, report.problems
    assert report.count == 83
    assert [e.seq for e in read_entries(path)] == list(range(1, 84))


def _write_from_another_process(path: Path, op: str) -> None:
    log = AuditLog(path, logging.getLogger("test.audit.child"))
    for n in range(25):
        _record(log, n, op=op)


def test_two_processes_interleave_and_the_chain_holds(tmp_path: Path) -> None:
    # The daemon and a standalone `coffre recover`: separate processes, one lock.
    path = tmp_path / "audit.log"
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_write_from_another_process, args=(path, op))
        for op in ("restore", "recover")
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    report = verify(path)
    assert report.ok, report.problems
    assert report.count == 50


# --- tampering and damage -----------------------------------------------------------


def test_middle_line_edited_is_named(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 5)
    lines = _lines(path)
    lines[2] = lines[2].replace(b"patient-3.pdf", b"patient-9.pdf")
    _write_lines(path, lines)
    report = verify(path)
    assert not report.ok
    assert report.count == 5
    assert report.problems == ("line 3 was edited or removed: line 4 does not chain to it",)


def test_last_line_edited_is_caught_by_the_head(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 3)
    lines = _lines(path)
    lines[2] = lines[2].replace(b'"outcome":"ok"', b'"outcome":"failed: no_such_path"')
    _write_lines(path, lines)
    report = verify(path)
    assert not report.ok
    assert report.problems == (
        "line 3 (the last one), seq 3, was edited: it does not match the head file",
    )


def test_middle_line_removed_is_named(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 8)
    lines = _lines(path)
    del lines[6]  # seq 7
    _write_lines(path, lines)
    report = verify(path)
    assert report.problems == ("line 7: seq 8 follows seq 6: 1 line removed before it",)


def test_first_lines_removed_are_named(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 4)
    _write_lines(path, _lines(path)[2:])
    assert verify(path).problems == ("line 1: the log starts at seq 3: 2 lines removed before it",)


def test_last_line_removed_is_caught_by_the_head(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 4)
    _write_lines(path, _lines(path)[:-1])
    report = verify(path)
    assert not report.ok
    assert report.count == 3
    assert report.problems == (
        "the last 1 line was removed: the head file says the log ends at seq 4, "
        "line 3 (the last one) is seq 3",
    )


def test_garbage_line_is_named(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 3)
    lines = _lines(path)
    lines.insert(1, b"\xff\xfe not even text")
    _write_lines(path, lines)
    report = verify(path)
    assert not report.ok
    assert report.count == 3
    assert report.problems == (
        "line 2: not a valid audit entry (not UTF-8 text)",
        "line 2 was edited or removed: line 3 does not chain to it",
    )


def test_line_lacking_keys_is_named(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    lines = _lines(path)
    body = json.loads(lines[1])
    del body["person"]
    lines[1] = json.dumps(body).encode()
    _write_lines(path, lines)
    problems = verify(path).problems
    assert "line 2: not a valid audit entry (missing person)" in problems


def test_emptied_log_is_caught_by_the_head(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    path.write_bytes(b"")
    assert verify(path).problems == (
        "the log is empty or missing but its head file says 2 entries were written: "
        "it was emptied, replaced or deleted",
    )
    path.unlink()
    assert not verify(path).ok


def test_missing_head_is_reported(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    head_path(path).unlink()
    report = verify(path)
    assert not report.ok
    assert report.problems[0].startswith("the head file is missing")


def test_no_log_at_all_is_intact_and_empty(tmp_path: Path) -> None:
    report = verify(tmp_path / "audit.log")
    assert report.ok
    assert report.count == 0
    assert read_entries(tmp_path / "audit.log") == []


def test_head_one_behind_after_a_stop_is_accepted(tmp_path: Path) -> None:
    # The box stopped between appending the line and replacing the head.
    path = _log_with(tmp_path, 2)
    old_head = head_path(path).read_bytes()
    _record(AuditLog(path, LOG), 3)
    head_path(path).write_bytes(old_head)
    assert verify(path).ok
    _record(AuditLog(path, LOG), 4)
    assert verify(path).ok
    assert json.loads(head_path(path).read_text())["seq"] == 4


# --- recording over damage --------------------------------------------------------


def test_record_after_a_garbled_last_line_chains_over_it_and_says_so(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    with path.open("ab") as file:
        file.write(b"garbage\n")
    logger = logging.getLogger("test.audit.damage")
    with Journal.of(logger) as handler:
        entry = AuditLog(path, logger).record(
            op="restore",
            at=T0,
            person=ALICE,
            target="local",
            archive="a",
            paths=["/srv/share/x"],
            outcome="ok",
            details={"size": 3},
        )
    lines = _lines(path)
    assert entry.seq == 3
    assert entry.prev == hashlib.sha256(b"garbage").hexdigest() == json.loads(lines[3])["prev"]
    assert entry.after_damage
    assert entry.details is not None
    assert entry.details["size"] == 3
    assert "not a valid entry (not JSON)" in entry.details["damage"]
    assert [r.__dict__["MESSAGE_ID"] for r in handler.records] == [MSG_AUDIT_DAMAGED, MSG_AUDIT]
    assert handler.records[0].levelno == logging.ERROR
    report = verify(path)
    assert report.problems == (
        "line 3: not a valid audit entry (not JSON)",
        "line 4: recorded after coffre found the log damaged "
        "(the last line is not a valid entry (not JSON))",
    )


def test_record_after_a_cut_short_line_ends_it_first(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    with path.open("ab") as file:
        file.write(b'{"seq":3,"ti')  # the power went while this was written
    _record(AuditLog(path, LOG), 3)
    lines = _lines(path)
    assert lines[2] == b'{"seq":3,"ti'
    assert json.loads(lines[3])["seq"] == 3  # the cut line never became an entry
    assert json.loads(lines[3])["prev"] == hashlib.sha256(b'{"seq":3,"ti').hexdigest()
    problems = verify(path).problems
    assert problems[0] == "line 3: not a valid audit entry (not JSON)"
    assert problems[1].startswith("line 4: recorded after coffre found the log damaged")
    assert len(problems) == 2


def test_a_cut_short_line_is_reported_as_such(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 1)
    with path.open("ab") as file:
        file.write(b'{"seq":2')
    assert verify(path).problems[0] == (
        "line 2: not a valid audit entry (not JSON); "
        "it was cut short: the box probably stopped while writing it"
    )


def test_record_after_an_edited_last_line_marks_the_entry(tmp_path: Path) -> None:
    # Without the head check, the next record would seal the edit into the chain.
    path = _log_with(tmp_path, 3)
    lines = _lines(path)
    lines[2] = lines[2].replace(b"patient-3", b"patient-7")
    _write_lines(path, lines)
    _record(AuditLog(path, LOG), 4)
    entry = read_entries(path)[-1]
    assert entry.seq == 4
    assert entry.after_damage
    assert verify(path).problems == (
        "line 4: recorded after coffre found the log damaged "
        "(the last line, seq 3, was edited: it does not match the head file)",
    )


def test_record_after_lines_removed_keeps_counting(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 4)
    _write_lines(path, _lines(path)[:2])
    _record(AuditLog(path, LOG), 5)
    entry = read_entries(path)[-1]
    assert entry.seq == 5  # seq 3 and 4 were seen: never reused
    assert entry.after_damage
    problems = verify(path).problems
    assert problems[0] == "line 3: seq 5 follows seq 2: 2 lines removed before it"


def test_record_into_an_emptied_log_chains_to_the_head(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    head = json.loads(head_path(path).read_text())
    path.unlink()
    _record(AuditLog(path, LOG), 3)
    [entry] = read_entries(path)
    assert (entry.seq, entry.prev) == (3, head["hash"])
    assert entry.after_damage
    assert not verify(path).ok


def test_strict_log_refuses_after_damage(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 2)
    with path.open("ab") as file:
        file.write(b"garbage\n")
    before = path.read_bytes()
    with pytest.raises(AuditLogDamaged) as raised:
        _record(AuditLog(path, LOG, strict=True), 3)
    assert isinstance(raised.value, CoffreError)
    assert raised.value.kind == "audit_damaged"
    assert "coffre audit verify" in raised.value.hint
    assert path.read_bytes() == before


# --- reading -------------------------------------------------------------------------


def test_read_entries_since(tmp_path: Path) -> None:
    path = _log_with(tmp_path, 5)
    with path.open("ab") as file:
        file.write(b"not json\n")  # skipped by reading; verify reports it
    entries = read_entries(path, since=T0 + timedelta(minutes=3))
    assert [e.seq for e in entries] == [3, 4, 5]
    assert [e.seq for e in read_entries(path)] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="timezone-aware"):
        read_entries(path, since=datetime(2026, 11, 18))


# --- logging -------------------------------------------------------------------------


def test_each_entry_reaches_the_logger_with_its_fields(tmp_path: Path) -> None:
    logger = logging.getLogger("test.audit.fields")
    with Journal.of(logger) as handler:
        entry = AuditLog(tmp_path / "audit.log", logger).record(
            op="restore",
            at=T0,
            person=ALICE,
            target="local",
            archive="cabinet-2026-11-18T01:30",
            paths=["/srv/share/a.pdf", "/srv/share/b.pdf"],
            outcome="ok",
        )
    [record] = handler.records
    fields = record.__dict__  # extra= fields land on the record, as journald's handler reads them
    assert record.levelno == logging.INFO
    assert fields["MESSAGE_ID"] == MSG_AUDIT
    assert fields["COFFRE_AUDIT_SEQ"] == "1"
    assert fields["COFFRE_AUDIT_HASH"] == entry.hash
    assert fields["COFFRE_AUDIT_OP"] == "restore"
    assert fields["COFFRE_AUDIT_USER"] == "alice"
    assert record.getMessage() == (
        "audit: restore by alice (ssh 10.0.0.5) on local, "
        "archive cabinet-2026-11-18T01:30, 2 path(s): ok"
    )


def test_msg_audit_is_a_128_bit_hex_id() -> None:
    for message_id in (MSG_AUDIT, MSG_AUDIT_DAMAGED):
        assert len(message_id) == 32
        int(message_id, 16)
    assert MSG_AUDIT != MSG_AUDIT_DAMAGED


# --- who -----------------------------------------------------------------------------


def test_person_from_env_prefers_sudo_user() -> None:
    env = {"SUDO_USER": "alice", "LOGNAME": "root", "USER": "root", "SSH_CONNECTION": "1 2 3 4"}
    assert person_from_env(env, 0).to_json() == {
        "user": "alice",
        "login": "root",
        "uid": 0,
        "ssh": "1 2 3 4",
    }


def test_person_from_env_falls_back() -> None:
    assert person_from_env({"LOGNAME": "bob", "USER": "x"}, 0).user == "bob"
    assert person_from_env({"USER": "carol", "SUDO_USER": ""}, 0).user == "carol"
    assert person_from_env({}, 0).to_json() == {
        "user": "root",
        "login": "root",
        "uid": 0,
        "ssh": None,
    }
    # A uid with no account (a container's, a deleted user's) is still named.
    assert person_from_env({}, 4_000_000).to_json() == {
        "user": "4000000",
        "login": None,
        "uid": 4_000_000,
        "ssh": None,
    }


# --- the command ---------------------------------------------------------------------


def _config(tmp_path: Path) -> Config:
    paths = PathsConfig(state=tmp_path / "state")
    return config(tmp_path, LocalTarget("local", Path("/var/backups/coffre")), paths=paths)


def _args(action: str | None = None, since: date | None = None, json: bool = False) -> Any:
    return argparse.Namespace(command="audit", audit_action=action, since=since, json=json)


def test_audit_path_is_in_the_state_dir(tmp_path: Path) -> None:
    assert audit_path(_config(tmp_path)) == tmp_path / "state" / "audit.log"


def test_cmd_audit_lists_in_the_box_timezone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    log = AuditLog(audit_path(cfg), LOG)
    _record(log, 0, paths=["/srv/share/a", "/srv/share/b", "/srv/share/c", "/srv/share/d"])
    _record(log, 1, op="find", person={"user": "bob", "uid": 0}, target=None, archive=None)
    assert cli_audit.cmd_audit(_args(), cfg) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "2026-11-18 10:00:00  restore    alice (ssh 10.0.0.5)  local  cabinet-2026-11-18T01:30  "
        "/srv/share/a, /srv/share/b, /srv/share/c (+1 more)  ok",
        "2026-11-18 10:01:00  find       bob  -  -  /srv/share/patient-1.pdf  ok",
    ]


def test_cmd_audit_since_is_a_day_in_the_box_timezone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    log = AuditLog(audit_path(cfg), LOG)
    # 23:30 UTC on the 17th is 00:30 on the 18th in Paris: it belongs to the 18th.
    _record(log, 0, at=datetime(2026, 11, 17, 22, 30, tzinfo=UTC))
    _record(log, 1, at=datetime(2026, 11, 17, 23, 30, tzinfo=UTC))
    assert cli_audit.cmd_audit(_args(since=date(2026, 11, 18), json=True), cfg) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in listed] == [2]
    assert listed[0]["hash"] == read_entries(audit_path(cfg))[1].hash


def test_cmd_audit_with_no_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    assert cli_audit.cmd_audit(_args(), cfg) == 0
    assert capsys.readouterr().out.startswith("no audit entry")
    assert cli_audit.cmd_audit(_args("verify"), cfg) == 0
    assert capsys.readouterr().out == "audit log intact: 0 entries\n"


def test_cmd_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    path = audit_path(cfg)
    log = AuditLog(path, LOG)
    for n in range(3):
        _record(log, n)
    assert cli_audit.cmd_audit(_args("verify"), cfg) == 0
    assert capsys.readouterr().out == "audit log intact: 3 entries\n"
    _write_lines(path, [_lines(path)[0], _lines(path)[2]])
    assert cli_audit.cmd_audit(_args("verify"), cfg) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "line 2: seq 3 follows seq 1: 1 line removed before it"
    assert out[-1].startswith("audit log NOT intact: 1 problem(s), 2 valid entries")


def test_cmd_audit_verify_refuses_since(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        cli_audit.cmd_audit(_args("verify", since=date(2026, 1, 1)), _config(tmp_path))


def test_parser_lists_by_default() -> None:
    parser = argparse.ArgumentParser()
    cli_audit.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit"])
    assert (args.audit_action, args.since, args.json) == (None, None, False)
    args = parser.parse_args(["audit", "verify"])
    assert args.audit_action == "verify"
    args = parser.parse_args(["audit", "--since", "2026-11-18", "--json"])
    assert (args.since, args.json) == (date(2026, 11, 18), True)
    with pytest.raises(SystemExit):
        parser.parse_args(["audit", "--since", "18/11/2026"])
