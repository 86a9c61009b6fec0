"""The checks as people and Prometheus see them: health, lights, the exported series."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coffre.core.health import CheckFacts, DiskFacts, Facts, Health, TargetFacts, assess
from coffre.observe.leds import PATTERNS
from coffre.proof.check_ledger import CheckLedger, CheckRecord
from coffre.storage.state import State
from tests.exposition import value
from tests.fakes import Clock
from tests.unit.test_metrics import LOG, T0, exporter_for, scrape

TZ = ZoneInfo("Europe/Paris")


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state.db", logger=LOG, now=T0)


def _facts(*targets: TargetFacts, disks: tuple[DiskFacts, ...] = ()) -> Facts:
    return Facts(now=T0, tz=TZ, targets=targets, disks=disks)


def _damaged(kind: str) -> CheckFacts:
    return CheckFacts(kind, T0, False, None, T0 - timedelta(hours=1), "found damage")


def test_a_damaged_disk_shows_amber_even_when_it_may_be_removed() -> None:
    disk = TargetFacts("disque-a", "usb", checks=(_damaged("repository"),))
    safe = DiskFacts("disque-a", False, True, T0, None, swap_due=False, missing=False)
    verdict = assess(_facts(disk, disks=(safe,)))
    assert verdict.health is Health.ATTENTION
    assert PATTERNS[verdict.health].amber.on
    assert verdict.reasons[0].startswith("disk disque-a is damaged")
    assert "replace it" in verdict.reasons[0]
    assert "disk disque-a may be removed" in verdict.reasons


def test_damage_on_the_box_s_repository_calls_support() -> None:
    local = TargetFacts("local", "local", checks=(_damaged("data"),))
    verdict = assess(_facts(local))
    assert verdict.health is Health.FAILURE
    assert verdict.reasons == (
        f"the data check of local found damage on {T0 - timedelta(hours=1):%Y-%m-%d}",
    )


def test_a_check_that_could_not_run_is_attention_on_the_box_only() -> None:
    stuck = CheckFacts("archives", T0, False, None, None, "could not run: locked")
    local = TargetFacts("local", "local", checks=(stuck,))
    assert assess(_facts(local)).reasons == ("the last archives check of local could not run",)
    # An offsite host away is network trouble: lateness and the alert tell it.
    assert assess(_facts(TargetFacts("hds", "offsite", checks=(stuck,)))).health is Health.OK
    clean = CheckFacts("archives", T0, True, T0, None, None)
    assert assess(_facts(TargetFacts("local", "local", checks=(clean,)))).health is Health.OK


def test_every_check_of_every_target_is_exported_from_the_start(
    tmp_path: Path, state: State
) -> None:
    exporter, _ = exporter_for(tmp_path, state, Clock(T0))
    series = scrape(exporter)
    for kind in ("repository", "archives", "data"):
        labels = {"target": "local", "kind": kind}
        assert value(series, "coffre_check_last_success_timestamp_seconds", **labels) == 0
        assert value(series, "coffre_check_last_attempt_timestamp_seconds", **labels) == 0
        assert value(series, "coffre_check_last_attempt_success", **labels) == 0
    checked = {
        dict(labels)["kind"]
        for name, labels in series
        if name.startswith("coffre_check_") and dict(labels).get("target") == "hds"
    }
    assert checked == {"archives"}


def test_the_series_follow_the_ledger(tmp_path: Path, state: State) -> None:
    ledger = CheckLedger(state)
    ledger.record("local", "repository", CheckRecord(T0, True, True, None, None, 30.0))
    later = T0 + timedelta(days=1)
    ledger.record("local", "repository", CheckRecord(later, False, False, "bad", None, 9.0, True))
    ledger.record("local", "archives", CheckRecord(later, True, True, None, None, 9.0))
    series = scrape(exporter_for(tmp_path, state, Clock(later))[0])
    repo = {"target": "local", "kind": "repository"}
    assert value(series, "coffre_check_last_success_timestamp_seconds", **repo) == T0.timestamp()
    assert value(series, "coffre_check_last_attempt_timestamp_seconds", **repo) == (
        later.timestamp()
    )
    assert value(series, "coffre_check_last_attempt_success", **repo) == 0
    assert value(series, "coffre_check_last_attempt_success", target="local", kind="archives") == 1
    # The sentence (borg's words, which may name a file) never becomes a label.
    assert not [v for _, pairs in series for _, v in pairs if v == "bad"]
