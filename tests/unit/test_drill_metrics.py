"""The drills' series: each drilled target's last drill, its success and rate; no names."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from coffre.core.config_types import LocalTarget, OffsiteTarget
from coffre.observe.facts import Observer
from coffre.observe.metrics import Exporter
from coffre.proof.drill_ledger import DrillLedger, DrillRecord
from coffre.storage.state import State
from tests.exposition import parse, value
from tests.fakes import Clock, config

T0 = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
LOG = logging.getLogger("test.drill_metrics")


def test_each_drilled_target_has_its_last_drill_success_and_rate(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db", logger=LOG, now=T0)
    practice = config(
        tmp_path,
        LocalTarget(name="local", path=tmp_path / "repo"),
        OffsiteTarget(name="hds", user="u", host="h", port=22, path="/r"),
    )
    exporter = Exporter(Observer(practice, state, Clock(T0)), practice, LOG)
    assert not {n for n, _ in parse(exporter.exposition().decode()) if n.startswith("coffre_drill")}
    ledger = DrillLedger(state)
    ledger.record("local", DrillRecord(T0, "cabinet-1", 50, 100_000_000, 2.0, "ok", 0, None))
    ledger.record(
        "hds", DrillRecord(T0, "cabinet-1", 50, 0, 0.0, "failed", 0, "extract failed (borg)")
    )
    text = exporter.exposition().decode()
    series = parse(text)
    assert value(series, "coffre_drill_last_timestamp_seconds", target="local") == T0.timestamp()
    assert value(series, "coffre_drill_last_success", target="local") == 1
    assert value(series, "coffre_drill_throughput_bytes_per_second", target="local") == 50e6
    assert value(series, "coffre_drill_last_success", target="hds") == 0
    assert ("coffre_drill_throughput_bytes_per_second", frozenset({("target", "hds")})) not in (
        series
    )
    assert "cabinet-1" not in text  # archives and files are not labels
