"""The shipped rules and dashboard only use series the exporter makes (a typo would be an
alert that never fires, a panel that stays empty)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from coffre.consistency.quiet import Consistency
from coffre.consistency.survey import SURVEY_KEY, Survey
from coffre.consistency.version_plan import Version
from coffre.core.config_types import LocalTarget, OffsiteTarget, PathsConfig
from coffre.guard.incidents import CLOCK, RANSOMWARE, IncidentStore
from coffre.jobs.backup import consistency_key
from coffre.observe.facts import Observer
from coffre.observe.metrics import Exporter
from coffre.proof.drill_ledger import DrillLedger, DrillRecord
from coffre.storage.audit import MSG_AUDIT, MSG_AUDIT_DAMAGED, AuditLog, audit_path
from coffre.storage.state import RunStats, State
from tests.fakes import Clock, config

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
T0 = datetime(2026, 11, 18, 1, 30, tzinfo=UTC)
SERIES = re.compile(r"\bcoffre_[a-z_]+\b")


def exported(tmp_path: Path) -> set[str]:
    """Every series name of a box with a local target, an offsite one and a disk, both guard
    incidents open, a drill and a backup (the restore estimate), a synchronised clock and
    an audit entry (series absent otherwise)."""
    (tmp_path / "repo").mkdir()
    practice = config(
        tmp_path,
        LocalTarget("local", tmp_path / "repo"),
        OffsiteTarget("hds", "u", "hds.example", 22, "/r"),
        paths=PathsConfig(state=tmp_path / "state"),
    )
    # One audit entry: its chain's series exist.
    AuditLog(audit_path(practice), logging.getLogger("t")).record(
        op="find", at=T0, person={}, target=None, archive=None, paths=[], outcome="ok"
    )
    state = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=T0)
    state.enroll_disk("disque-a", "uuid", "repo", T0)
    state.disk_done("disque-a", safe=True, free_bytes=1, at=T0)
    for kind in (RANSOMWARE, CLOCK):
        IncidentStore(state).sight(kind, at=T0, target="local", reasons=["x"], figures={})
    DrillLedger(state).record("local", DrillRecord(T0, "a", 1, 1, 1.0, "ok", 0, None))
    run = state.start_run("local", "backup", T0)
    state.finish_run(run, T0, stats=RunStats("cabinet-2026-11-18T02:30:00", 10, 5, 5, 1))
    # The share: a survey with a Previous Version, and how the backup read the share.
    kept = Version("@GMT-2026.11.18-01.30.00", T0, "backup")
    state.set_meta(SURVEY_KEY, Survey(T0, "", (kept,), 1, 2).to_json())
    read = Consistency("snapshot", True, 1.0, 0, T0)
    state.set_meta(consistency_key("local"), json.dumps(read.to_json()))
    observer = Observer(practice, state, Clock(T0), ntp=lambda: True)
    observer.measure()
    text = Exporter(observer, practice, logging.getLogger("t")).exposition().decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for item in node for e in _exprs(item)]
    return []


def test_the_rules_use_exported_series_only(tmp_path: Path) -> None:
    used = set(SERIES.findall((PACKAGING / "prometheus" / "coffre-rules.yml").read_text()))
    assert used, "no coffre_ series in the rules?"
    assert used <= exported(tmp_path), sorted(used - exported(tmp_path))


def test_the_dashboard_uses_exported_series_only(tmp_path: Path) -> None:
    dashboard = json.loads((PACKAGING / "grafana" / "coffre-dashboard.json").read_text())
    exprs = _exprs(dashboard["panels"])
    used = {name for expr in exprs for name in SERIES.findall(expr)}
    assert len(exprs) >= 15
    assert used <= exported(tmp_path), sorted(used - exported(tmp_path))
    # Every panel follows the box selector.
    assert all('box=~"$box"' in expr for expr in exprs), [
        e for e in exprs if 'box=~"$box"' not in e
    ]


def test_the_journal_forwarding_sends_the_audit_entries_only_and_over_tls_only() -> None:
    text = (PACKAGING / "journal" / "coffre-audit-forward.conf").read_text()
    rules = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    # The audit's two MESSAGE_IDs, as coffre logs them, and no other.
    assert set(re.findall(r'\$!MESSAGE_ID == "(\w+)"', rules)) == {MSG_AUDIT, MSG_AUDIT_DAMAGED}
    assert re.findall(r"\b[0-9a-f]{32}\b", rules) == [MSG_AUDIT, MSG_AUDIT_DAMAGED]
    # One action, inside the MESSAGE_ID filter; what the journal gave is then stopped.
    assert rules.count('action(type="omfwd"') == 1
    assert rules.index("$!MESSAGE_ID") < rules.index("action(") < rules.index("stop")
    # TLS, its peer's certificate checked by name.
    for setting in ('StreamDriver="gtls"', 'StreamDriverMode="1"', 'AuthMode="x509/name"'):
        assert setting in rules, setting
    # The seq and hash travel with the sentence; never the paths (not in the message).
    assert "%$!COFFRE_AUDIT_SEQ%" in rules and "%$!COFFRE_AUDIT_HASH%" in rules
    assert "paths" not in rules.lower()
