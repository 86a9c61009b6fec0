"""Names from the share reach terminals and log lines escaped (core.printable), --json exact."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coffre.borg.create_warnings import Warned
from coffre.cli import audit as cli_audit
from coffre.cli.support import print_error
from coffre.core.config_types import Config, LocalTarget, PathsConfig
from coffre.core.outcomes import Reason
from coffre.jobs import backup
from coffre.jobs.supervision import unexpected
from coffre.storage.audit import AuditLog, audit_path
from tests.fakes import config

#: A name a workstation could leave on the share: it would set the terminal's title, turn it red.
HOSTILE = "Patients/\x1b]0;pwned\x07\x1b[31mrouge.txt"
SHOWN = "Patients/\\x1b]0;pwned\\x07\\x1b[31mrouge.txt"


def test_an_error_message_is_printed_escaped_with_its_line_breaks_kept() -> None:
    out = io.StringIO()
    print_error({"message": f"borg: {HOSTILE}\nsecond line", "hint": "look at \u202eit"}, out)
    assert out.getvalue() == (
        f"error: borg: {SHOWN}\nsecond line\n  what to do: look at \\u202eit\n"
    )


def test_an_error_message_escaped_where_it_was_made_is_not_escaped_twice() -> None:
    out = io.StringIO()
    print_error({"message": f"1 file(s) exist already: {SHOWN}"}, out)
    assert out.getvalue() == f"error: 1 file(s) exist already: {SHOWN}\n"


def test_borg_warnings_naming_a_file_reach_the_journal_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="t")
    warned = [
        Warned(Reason.PERMISSION, f"/srv/share/{HOSTILE}: open: [Errno 13] Permission denied"),
        Warned(Reason.OTHER, f"/srv/share/{HOSTILE}: something else"),
    ]
    backup.log_warned(logging.getLogger("t"), "local", warned)
    messages = [r.getMessage() for r in caplog.records]
    assert all("\x1b" not in m and "\x07" not in m for m in messages)
    assert all(SHOWN in m for m in messages)


def test_an_unexpected_error_quoting_a_name_is_logged_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="t")
    unexpected(ValueError(f"cannot handle {HOSTILE}"), "restore of local", logging.getLogger("t"))
    assert SHOWN in caplog.records[0].getMessage()
    assert "\x1b" not in caplog.records[0].getMessage()


def _audit_with(tmp_path: Path, paths: list[str]) -> Config:
    """A configuration whose audit log has one restore of ``paths``."""
    cfg = config(
        tmp_path,
        LocalTarget("local", Path("/var/backups/coffre")),
        paths=PathsConfig(state=tmp_path / "state"),
    )
    AuditLog(audit_path(cfg), logging.getLogger("t")).record(
        op="restore",
        at=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        person={"user": "alice", "uid": 0},
        target="local",
        archive="cabinet-2026-11-18T01:30",
        paths=paths,
        outcome="ok",
    )
    return cfg


def test_coffre_audit_lists_recorded_paths_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _audit_with(tmp_path, [f"/srv/share/{HOSTILE}"])
    args = argparse.Namespace(command="audit", audit_action=None, since=None, json=False)
    assert cli_audit.cmd_audit(args, cfg) == 0
    out = capsys.readouterr().out
    assert f"/srv/share/{SHOWN}" in out and "\x1b" not in out


def test_coffre_audit_json_keeps_the_exact_names_even_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_utf8 = os.fsdecode(b"/srv/share/\xe9t\xe9 \xc2\x9b\xe2\x80\xae.odt")  # lone surrogates
    cfg = _audit_with(tmp_path, [f"/srv/share/{HOSTILE}", not_utf8])
    args = argparse.Namespace(command="audit", audit_action=None, since=None, json=True)
    assert cli_audit.cmd_audit(args, cfg) == 0
    out = capsys.readouterr().out
    assert out.isascii()  # no raw control, C1 or bidi character reaches the terminal
    assert json.loads(out)[0]["paths"] == [f"/srv/share/{HOSTILE}", not_utf8]
