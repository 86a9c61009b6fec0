"""The drills' records in state: the JSON agreed with status and metrics, one per target."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from coffre.proof.drill_ledger import DrillLedger, DrillRecord
from coffre.storage.state import State

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
RECORD = DrillRecord(
    at=NOW,
    archive="cabinet-2026-11-29T01:30:00",
    files=50,
    bytes=200 << 20,
    extract_seconds=4.0,
    outcome="mismatch",
    mismatches=1,
    error=None,
)


def _state(tmp_path: Path) -> State:
    return State.open(tmp_path / "s.db", logger=logging.getLogger("t"), now=NOW)


def test_a_drill_recorded_is_the_targets_last_and_keeps_the_agreed_json(tmp_path: Path) -> None:
    state = _state(tmp_path)
    ledger = DrillLedger(state)
    assert ledger.last("local") is None
    ledger.record("local", RECORD)
    assert ledger.last("local") == RECORD
    assert ledger.last("hds1") is None
    raw = json.loads(state.get_meta("drill.local") or "")
    assert raw == {
        "at": NOW.isoformat(),
        "archive": "cabinet-2026-11-29T01:30:00",
        "files": 50,
        "bytes": 200 << 20,
        "extract_seconds": 4.0,
        "outcome": "mismatch",
        "mismatches": 1,
        "error": None,
    }


def test_throughput_is_bytes_over_extract_seconds_and_none_without_either() -> None:
    assert RECORD.throughput == (200 << 20) / 4.0
    assert DrillRecord(NOW, "a", 0, 0, 0.0, "failed", 0, "x").throughput is None


def test_an_unreadable_record_counts_as_no_drill(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.set_meta("drill.local", '{"at": "yesterday"}')
    assert DrillLedger(state).last("local") is None
    state.set_meta("drill.local", json.dumps({**json.loads(RECORD.to_json()), "outcome": "meh"}))
    assert DrillLedger(state).last("local") is None
