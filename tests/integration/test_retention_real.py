"""`coffre prune` on real borg archives made at chosen times (`borg create --timestamp`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.harness import Daemon, Practice

# UTC instants; the box is in Europe/Paris. 2026-10-31T23:30Z is already
# 1 November in Paris (CET, UTC+1): it is November's first backup, not October's.
HISTORY = {
    "cabinet-sep-01": "2026-09-01T08:00:00",
    "cabinet-sep-15": "2026-09-15T08:00:00",
    "cabinet-oct-01-morning": "2026-10-01T06:00:00",
    "cabinet-oct-01-evening": "2026-10-01T20:00:00",
    "cabinet-oct-25-dst": "2026-10-25T00:30:00",
    "cabinet-nov-01-paris": "2026-10-31T23:30:00",
    "cabinet-nov-02": "2026-11-02T10:00:00",
    "cabinet-nov-03-morning": "2026-11-03T10:00:00",
    "cabinet-nov-03-evening": "2026-11-03T18:00:00",
    "cabinet-nov-04": "2026-11-04T09:00:00",
    "autre-logiciel-sep-01": "2026-09-01T07:00:00",
}

EXPECTED_KEEP = {
    "cabinet-nov-04": ["J"],
    "cabinet-nov-03-evening": ["J-1"],
    "cabinet-nov-02": ["J-2"],
    "cabinet-nov-01-paris": ["M"],
    "cabinet-oct-01-morning": ["M-1"],
}


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path)
    (p.share / "agenda.db").write_text("rdv\n")
    return p


def _seed(practice: Practice) -> None:
    practice.coffre("target", "init", "local", check=True)
    repo = str(practice.repository())
    for name, when in HISTORY.items():
        practice.borg("create", "--timestamp", when, f"{repo}::{name}", str(practice.share))


def test_dry_run_shows_each_kept_archive_with_its_reasons_and_deletes_nothing(
    practice: Practice, daemon: Daemon
) -> None:
    _seed(practice)
    result = practice.coffre("prune", "--dry-run", "--json", check=True)
    outcome = json.loads(result.stdout)["local"]
    assert {k["name"]: k["reasons"] for k in outcome["keep"]} == EXPECTED_KEEP
    assert outcome["ignored"] == ["autre-logiciel-sep-01"]
    assert set(outcome["delete"]) == set(HISTORY) - set(EXPECTED_KEEP) - {"autre-logiciel-sep-01"}
    assert practice.archive_names() == sorted(HISTORY)

    human = practice.coffre("prune", "--dry-run", check=True).stdout
    assert "keep    cabinet-nov-01-paris" in human and "M" in human
    assert "would delete cabinet-sep-15" in human


def test_prune_deletes_what_falls_out_and_never_touches_other_archives(
    practice: Practice, daemon: Daemon
) -> None:
    _seed(practice)
    practice.coffre("prune", check=True)
    assert practice.archive_names() == sorted([*EXPECTED_KEEP, "autre-logiciel-sep-01"])
    # Applying it again changes nothing.
    again = json.loads(practice.coffre("prune", "--json", check=True).stdout)["local"]
    assert again["delete"] == []
    assert practice.borg("check", str(practice.repository())).returncode == 0
    # State follows: `coffre archives` shows the same list with the same reasons.
    listed = json.loads(practice.coffre("archives", "--json", check=True).stdout)["local"]
    assert {a["name"]: a["reasons"] for a in listed["archives"] if a["reasons"]} == EXPECTED_KEEP


def test_a_nightly_backup_after_the_history_drops_what_falls_out(
    practice: Practice, daemon: Daemon
) -> None:
    _seed(practice)
    practice.coffre("prune", check=True)
    practice.coffre("backup", "--wait", check=True)
    names = practice.archive_names()
    # Today's archive is J; Nov 4 and Nov 3 move to J-1 and J-2; Nov 2 falls out.
    assert "cabinet-nov-02" not in names
    assert "cabinet-nov-04" in names and "cabinet-nov-03-evening" in names
    assert "autre-logiciel-sep-01" in names
