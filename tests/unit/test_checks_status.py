"""The checks in `coffre status`: the report's part and the lines printed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from coffre.cli.dispatch import check_lines
from coffre.core.reports import CheckView
from coffre.observe.status import checks_view
from coffre.proof.check_ledger import CheckLedger, CheckRecord
from coffre.storage.state import State

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def test_the_report_gives_each_kind_coffre_runs_with_its_passes(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db", logger=logging.getLogger("t"), now=NOW)
    ledger = CheckLedger(state)
    ledger.record("local", "archives", CheckRecord(NOW, True, True, None, None, 5.0))
    ledger.record("local", "repository", CheckRecord(NOW, True, False, None, None, 600.0))
    views = checks_view(state, [("local", "local"), ("hds", "offsite")], PARIS)
    assert [v["kind"] for v in views["local"]] == ["repository", "archives", "data"]
    assert [v["kind"] for v in views["hds"]] == ["archives"]
    repository, archives, data = views["local"]
    assert archives["last_success"] == "2026-12-01T02:00:00+01:00"
    assert repository["last_success"] is None
    assert repository["pass_started"] == "2026-12-01T01:50:00+01:00"
    assert data["last_attempt"] is None and data["last_ok"] is None


def _view(kind: str, **given: object) -> CheckView:
    view: CheckView = {
        "kind": kind,
        "last_attempt": "2026-12-01T02:00:00+01:00",
        "last_ok": True,
        "last_error": None,
        "archive": None,
        "last_success": "2026-11-30T02:00:00+01:00",
        "pass_started": None,
        "damage_at": None,
    }
    view.update(given)  # type: ignore[typeddict-item]
    return view


def test_status_names_each_kind_s_last_complete_pass() -> None:
    lines = check_lines(
        [
            _view("repository", pass_started="2026-12-01T01:50:00+01:00"),
            _view("archives"),
            _view("data", last_success=None, last_attempt=None, last_ok=None),
        ]
    )
    assert lines == [
        "checks, last complete pass: repository 2026-11-30 02:00:00, a pass under way since "
        "2026-12-01 01:50:00; archives 2026-11-30 02:00:00; data never"
    ]


def test_a_failed_check_is_named_with_its_sentence_escaped() -> None:
    failed = _view(
        "archives",
        last_ok=False,
        last_error="the archives check of local found damage in archive a\x1b[2J: x",
        damage_at="2026-12-01T02:00:00+01:00",
    )
    lines = check_lines([failed])
    assert lines[1].startswith("CHECK FAILED 2026-12-01 02:00:00: the archives check of local")
    assert "\x1b" not in lines[1] and "\\x1b" in lines[1]
    assert len(lines) == 2  # the damage is the failure just named


def test_damage_not_cleared_is_said_after_a_clean_slice() -> None:
    lines = check_lines([_view("repository", damage_at="2026-11-29T02:00:00+01:00")])
    assert lines[1].startswith("DAMAGE found by the repository check on 2026-11-29 02:00:00")
    assert "docs/repair.md" in lines[1]


def test_a_target_without_checks_has_no_line() -> None:
    assert check_lines([]) == []
