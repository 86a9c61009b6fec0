"""The audit trail's witness end to end: a real audit log, coffre's real exposition before
and after root forges it, and the shipped central rules evaluated by the real promtool over
those samples as the box's agent would remote-write them (labelled with the box).

What ``coffre audit verify`` cannot see (a rewrite chained again with a matching head, a log
deleted with its head) the central rules must: and a box that only grows must stay quiet.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.core.config_types import LocalTarget, PathsConfig
from coffre.observe.facts import Observer
from coffre.observe.metrics import Exporter
from coffre.storage.audit import AuditLog, audit_path, head_path, verify
from coffre.storage.state import State
from tests.exposition import parse
from tests.fakes import Clock, config
from tests.forged_audit import drop_entry, edit_entry, rewrite_consistently
from tests.integration.rule_tests import expected_alert
from tests.parts import binary

RULES = Path(__file__).resolve().parents[2] / "packaging" / "prometheus" / "coffre-rules.yml"
BOX = {"box": "cabinet-test", "job": "coffre", "instance": "127.0.0.1:9851"}
T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
LOG = logging.getLogger("test.audit_witness")
#: Samples each scrape stands for (one a minute): the rules see each state for 12 minutes.
HELD = 12


class Box:
    """A box's audit log and its exporter (state under ``root``), recording entries."""

    def __init__(self, root: Path) -> None:
        practice = config(root, LocalTarget("local", root / "repo"))
        self.practice = replace(practice, paths=PathsConfig(state=root / "state"))
        self.log = audit_path(self.practice)
        self._writer = AuditLog(self.log, LOG)
        self._count = 0
        state = State.open(root / "state.db", logger=LOG, now=T0)
        observer = Observer(self.practice, state, Clock(T0))
        self.exporter = Exporter(observer, self.practice, LOG)

    def record(self, entries: int) -> None:
        for _ in range(entries):
            self._count += 1
            self._writer.record(
                op="restore",
                at=T0 + timedelta(minutes=self._count),
                person={"user": "alice"},
                target="local",
                archive="cabinet-2026-11-18T01:30",
                paths=[f"Patients/DUPONT/bilan-{self._count}.pdf"],
                outcome="ok",
            )

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """The audit series of one scrape."""
        series = parse(self.exporter.exposition().decode())
        return {key: number for key, number in series.items() if key[0].startswith("coffre_audit")}


def _promtool_passes(
    tmp_path: Path,
    scrapes: list[dict[tuple[str, frozenset[tuple[str, str]]], float]],
    alert: str,
    expected: str,
) -> None:
    """promtool, over ``scrapes`` (each held :data:`HELD` minutes) as the agent writes them,
    finds ``alert`` firing as ``expected`` (promtool's ``exp_alerts``, JSON) at the end."""
    keys = sorted({key for scrape in scrapes for key in scrape}, key=str)
    inputs = ""
    for name, labels in keys:
        pairs = ",".join(f'{k}="{v}"' for k, v in sorted({**dict(labels), **BOX}.items()))
        samples = [scrape.get((name, labels)) for scrape in scrapes]
        values = " ".join(f"_x{HELD}" if s is None else f"{s:.0f}x{HELD}" for s in samples)
        inputs += f"      - series: '{name}{{{pairs}}}'\n        values: \"{values}\"\n"
    case = tmp_path / f"{alert}-{len(scrapes)}.test.yml"
    case.write_text(
        f'rule_files: ["{RULES}"]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n'
        f"    input_series:\n{inputs}    alert_rule_test:\n"
        f"      - eval_time: {len(scrapes) * HELD - 1}m\n"
        f"        alertname: {alert}\n        exp_alerts: {expected}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [binary("promtool"), "test", "rules", str(case)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr + case.read_text()


def _fires_after(
    tmp_path: Path, box: Box, forge: Callable[[], None], alert: str, value: str
) -> None:
    """Scrapes of ``box`` before and after ``forge`` (which verify must not see): ``alert``
    fires once, for the box, with the shipped annotations (``{{ $value }}`` is ``value``)."""
    before = box.scrape()
    forge()
    assert verify(box.log).ok, "the forgery must be one verify cannot see"
    after = box.scrape()
    expected = expected_alert(RULES, alert, {"box": BOX["box"], "severity": "critical"})
    _promtool_passes(
        tmp_path, [before, before, after], alert, expected.replace("{{ $value }}", value)
    )


@pytest.fixture
def box(tmp_path: Path) -> Box:
    binary("promtool")  # CI fails here when it is missing
    made = Box(tmp_path / "box")
    made.record(30)
    return made


def test_a_rewrite_with_a_matching_head_fires_rewritten(tmp_path: Path, box: Box) -> None:
    def forge() -> None:
        rewrite_consistently(box.log, edit_entry(3, paths=["Patients/autre.pdf"]))

    # Every exported entry (the last 16; the head's is the last one's) changed: one alert.
    _fires_after(tmp_path, box, forge, "CoffreAuditRewritten", "16")


def test_an_entry_removed_and_a_forged_one_appended_fires_rewritten(
    tmp_path: Path, box: Box
) -> None:
    def forge() -> None:
        rewrite_consistently(box.log, drop_entry(5))
        box.record(1)  # the count back where it was

    _fires_after(tmp_path, box, forge, "CoffreAuditRewritten", "16")


def test_a_log_deleted_with_its_head_fires_went_backwards(tmp_path: Path, box: Box) -> None:
    def forge() -> None:
        box.log.unlink()
        head_path(box.log).unlink()

    _fires_after(tmp_path, box, forge, "CoffreAuditWentBackwards", "0")


def test_entries_recorded_as_usual_fire_nothing(tmp_path: Path, box: Box) -> None:
    scrapes = [box.scrape()]
    for _ in range(3):
        box.record(7)  # the old seqs fall out of the last 16 as new ones come
        scrapes.append(box.scrape())
    scrapes.append(scrapes[-1])  # the daemon restarted: the same figures
    for alert in ("CoffreAuditRewritten", "CoffreAuditWentBackwards"):
        _promtool_passes(tmp_path, scrapes, alert, "[]")
