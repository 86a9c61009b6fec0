"""The restore-time estimate with the real borg and a real daemon: `coffre status`, the metrics.

The drill record is written into the daemon's state as the drill ledger
(``coffre.proof.drill_ledger``) writes it: this test is about what the
estimate shows, from whatever drill made the record.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coffre.proof.restore_estimate import FullSize, duration_words, estimate
from tests.integration.harness import daemon_running, fill_share
from tests.integration.observing import ObservedPractice, parse


def _record_drill(practice: ObservedPractice, *, bytes_: int, seconds: float) -> datetime:
    at = datetime.now(UTC)
    record = {
        "at": at.isoformat(),
        "archive": "cabinet-x",
        "files": 50,
        "bytes": bytes_,
        "extract_seconds": seconds,
        "outcome": "ok",
        "mismatches": 0,
        "error": None,
    }
    with sqlite3.connect(practice.state_dir / "state.db", timeout=30) as db:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('drill.local', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (json.dumps(record),),
        )
    return at


def test_status_and_metrics_say_how_long_getting_everything_back_takes(tmp_path: Path) -> None:
    practice = ObservedPractice(tmp_path, extra="\n[restore]\nrto_hours = 2\n")
    fill_share(practice.share, files=60, size=20_000)
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        printed = practice.coffre("status", check=True).stdout
        assert "restore times (objective 2 h, restore.rto_hours)" in printed
        assert (
            "getting everything back from local: unknown, no drill yet "
            "(`coffre drill --target local`)" in printed
        )
        names = {name for name, _ in parse(practice.scrape())}
        assert "coffre_restore_estimated_seconds" not in names
        assert "coffre_restore_rto_seconds" in names

        # A very slow drill: 1000 bytes in 100 s, so that the estimate is over the objective.
        at = _record_drill(practice, bytes_=1000, seconds=100.0)
        practice.coffre("backup", "--wait", check=True)  # state written: read again
        made = practice.status()["targets"]["local"]["last_success"]
        size = FullSize(made["original_size"], made["nfiles"])
        expected = estimate("local", "local", _Drill(at, 1000, 100.0), size, datetime.now(UTC))
        assert expected.seconds is not None
        printed = practice.coffre("status", check=True).stdout
        day = at.astimezone(ZoneInfo(practice.timezone)).strftime("%Y-%m-%d")  # the box's day
        assert (
            f"getting everything back from local takes about {duration_words(expected.seconds)} "
            f"(drill of {day}, 10 B/s)" in printed
        )
        assert expected.seconds > 7200
        assert "  over the objective of 2 h: a faster disk" in printed
        series = parse(practice.scrape())
        shown = series[("coffre_restore_estimated_seconds", frozenset({("target", "local")}))]
        assert shown == pytest.approx(expected.seconds, rel=1e-3)
        assert series[("coffre_restore_rto_seconds", frozenset())] == 7200


class _Drill:
    """The drill record written above, as the estimate reads it."""

    def __init__(self, at: datetime, bytes_: int, seconds: float) -> None:
        self.at, self.files, self.bytes = at, 50, bytes_
        self.extract_seconds, self.outcome = seconds, "ok"
