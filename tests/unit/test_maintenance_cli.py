"""``coffre check``: its request on the wire, its output, and status's maintenance lines."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from coffre.cli import check as cli_check
from coffre.cli import dispatch as cli
from coffre.core.errors import UsageError
from coffre.core.messages import CheckRequest, Event, Request, parse_request
from coffre.core.reports import MaintenanceView
from tests.fakes import LOCAL, config


def test_a_check_request_comes_back_from_its_json() -> None:
    asked = CheckRequest(targets=("local",), kinds=("data", "archives"), wait=False)
    assert parse_request(asked.to_json()) == asked
    assert parse_request({"op": "check"}) == CheckRequest()


def test_a_kind_that_is_no_check_is_refused_before_any_job() -> None:
    with pytest.raises(UsageError) as raised:
        parse_request({"op": "check", "kinds": ["repair"]})
    assert raised.value.message == "bad request check: 'repair' is no kind of check"


def test_the_command_line_names_targets_and_kinds() -> None:
    args = cli.build_parser().parse_args(
        ["check", "--target", "local", "--kind", "data", "--kind", "archives", "--no-wait"]
    )
    assert (args.target, args.kind, args.wait) == (["local"], ["data", "archives"], False)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["check", "--kind", "repair"])


def _answer(*events: Event) -> object:
    def ask(cfg: object, message: Request) -> Iterable[Event]:
        assert message == CheckRequest(kinds=("data",))
        return iter(events)

    return ask


def test_an_interrupted_check_exits_0_and_says_it_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = {"ok": True, "outcome": "interrupted", "interrupted_by": "backup", "checked": []}
    monkeypatch.setattr(
        cli_check,
        "ask",
        _answer({"event": "result", "ok": True, "kind": "check", "targets": {"local": outcome}}),
    )
    args = cli.build_parser().parse_args(["check", "--kind", "data"])
    assert cli_check.cmd_check(args, config(tmp_path, LOCAL)) == 0
    assert capsys.readouterr().out == (
        "target local: interrupted by a backup (checked: nothing); "
        "it runs again once the box is idle\n"
    )


def test_damage_found_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"kind": "check_failed", "message": "the data check of local found damage", "hint": ""}
    outcome = {"ok": False, "checked": ["data"], "error": error}
    monkeypatch.setattr(
        cli_check,
        "ask",
        _answer({"event": "result", "ok": False, "kind": "check", "targets": {"local": outcome}}),
    )
    args = cli.build_parser().parse_args(["check", "--kind", "data"])
    assert cli_check.cmd_check(args, config(tmp_path, LOCAL)) == 1


def test_status_says_what_maintenance_runs_and_what_is_next(
    capsys: pytest.CaptureFixture[str],
) -> None:
    view: MaintenanceView = {
        "enabled": True,
        "running": {
            "id": 4,
            "kind": "check",
            "targets": ["local"],
            "reason": "schedule",
            "current_target": "local",
            "progress": None,
            "counters": {},
        },
        "queued": [],
        "next_at": "2026-12-07T15:00:00+01:00",
        "next_kind": "drill",
        "next_target": "hds",
    }
    cli_check.print_maintenance(view)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "maintenance running: check of local"
    assert out[1].startswith("next maintenance: drill of hds, ")
