"""A USB disk's checks at its plug: the rolling slice, the data check when due, damage."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from coffre.core.job_events import OutcomeDetails
from coffre.jobs.services import Services
from coffre.proof.check_ledger import CheckLedger, CheckRecord
from coffre.proof.drill_ledger import DrillLedger, DrillRecord
from coffre.storage.audit import AuditUnavailable
from coffre.storage.state import State
from coffre.targets.usb.job import data_check_due, drill_due, run_disk_job
from coffre.targets.usb.repository import UsbRepository
from tests.fakes import LOCAL, REPO_ID, Clock, config
from tests.unit.test_checks import CheckingBorg, Meta, error
from tests.unit.test_disk_job import FakeDisk
from tests.unit.test_executor import NOW

LOG = logging.getLogger("t")


def _plug(
    tmp_path: Path, borg: CheckingBorg, state: State | None = None
) -> tuple[OutcomeDetails, State]:
    state = state or State.open(tmp_path / "s.db", logger=LOG, now=NOW)
    if state.disk("disque-a") is None:
        state.enroll_disk("disque-a", "uuid", REPO_ID, NOW - timedelta(days=3))
    state.start_run("disque-a", "backup", NOW)
    services = Services(config(tmp_path, LOCAL), state, borg, Clock(NOW), LOG)

    async def power_off(devnode: str, usb: str | None) -> None:
        pass

    repo = cast(UsbRepository, FakeDisk())
    _, details = asyncio.run(run_disk_job(services, repo, REPO_ID, power_off=power_off))
    return details, state


def test_the_first_plug_verifies_every_archive_after_the_rolling_slice(tmp_path: Path) -> None:
    borg = CheckingBorg({})
    borg.archives = [("cabinet-2026-11-28T01:30:00", "2026-11-28T00:30:00")]
    details, state = _plug(tmp_path, borg)
    words = [c[0] for c in borg.calls]
    assert words.index("check") < words.index("extract")
    dry_runs = [c for c in borg.calls if c[:2] == ("extract", "--dry-run")]
    # The archive found there and the one this plug made.
    assert len(dry_runs) == 2
    assert CheckLedger(state).last_success("disque-a", "data") == NOW
    assert "replace_disk" not in details


def test_a_data_check_done_this_month_is_not_run_again(tmp_path: Path) -> None:
    state = State.open(tmp_path / "s.db", logger=LOG, now=NOW)
    clean = CheckRecord(NOW - timedelta(days=3), True, True, None, None, 100.0)
    CheckLedger(state).record("disque-a", "data", clean)
    borg = CheckingBorg({})
    _plug(tmp_path, borg, state)
    assert not [c for c in borg.calls if c[0] == "extract"]


def test_data_due_while_a_pass_is_under_way() -> None:
    ledger = CheckLedger(Meta())
    ledger.record("d", "data", CheckRecord(NOW, True, True, None, None, 1.0))
    assert not data_check_due(ledger, "d", NOW + timedelta(days=29), 30)
    assert data_check_due(ledger, "d", NOW + timedelta(days=30), 30)
    ledger.add_verified("d", "a1", NOW + timedelta(days=1))
    assert data_check_due(ledger, "d", NOW + timedelta(days=2), 30)


def test_damage_found_at_a_plug_asks_for_a_new_disk_then_and_at_the_next_plug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crc = (1, [error("Segment entry checksum mismatch [segment 7, offset 99]")])
    details, state = _plug(tmp_path, CheckingBorg({"check": [crc]}))
    # The backup was made all the same; the job says what the check found.
    assert "replace_disk" in details
    assert any("found damage" in said for said in details["checks"])
    assert CheckLedger(state).damage("disque-a", "repository") is not None
    with caplog.at_level(logging.ERROR):
        again, _ = _plug(tmp_path / "2", CheckingBorg({}), state)
    assert "replace it" in again["replace_disk"]
    assert any("disk disque-a is damaged" in r.getMessage() for r in caplog.records)


def test_a_disk_is_drilled_at_its_plug_when_due_and_not_again_within_the_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drilled: list[str] = []

    async def drill(services: Services, target: str, location: str, *, person: object) -> Any:
        drilled.append(target)
        record = DrillRecord(NOW, "a", 3, 300, 1.0, "ok", 0, None)
        DrillLedger(services.state).record(target, record)
        return SimpleNamespace(record=record, summary=lambda: "3 file(s) read back: ok")

    monkeypatch.setattr("coffre.targets.usb.job.run_drill", drill)
    details, state = _plug(tmp_path, CheckingBorg({}))
    assert drilled == ["disque-a"] and details["drill"] == "3 file(s) read back: ok"
    _plug(tmp_path, CheckingBorg({}), state)  # the next plug, the same day
    assert drilled == ["disque-a"]


def test_drill_due_after_its_period_or_never_drilled() -> None:
    last = DrillRecord(NOW, "a", 1, 1, 1.0, "ok", 0, None)
    assert drill_due(None, NOW, 30)
    assert not drill_due(last, NOW + timedelta(days=29), 30)
    assert drill_due(last, NOW + timedelta(days=30), 30)


def test_a_drill_that_fails_at_the_plug_never_fails_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def drill(*args: object, **kwargs: object) -> Any:
        raise AuditUnavailable("the audit log cannot be written", hint="free space")

    monkeypatch.setattr("coffre.targets.usb.job.run_drill", drill)
    details, _ = _plug(tmp_path, CheckingBorg({}))
    assert details["drill"].startswith("failed: the audit log cannot be written")
    assert details["safe_to_remove"] is True
