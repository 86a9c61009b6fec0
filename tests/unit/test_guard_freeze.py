"""While an incident is open, retention deletes nothing on any target; the clock guard opens one."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.core.errors import BorgNoSpace
from coffre.core.model import Archive
from coffre.guard import freeze
from coffre.guard.incidents import CLOCK, RANSOMWARE, IncidentStore
from coffre.jobs.pruning import apply_retention
from coffre.jobs.services import Services
from coffre.storage import logs
from coffre.storage.state import State
from tests.fakes import LOCAL, Clock, FakeBorg, Journal, config

NOW = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # 01:30 in Paris
LOGGER = logging.getLogger("test-guard-freeze")


def _nightly(days: int) -> list[Archive]:
    """One archive a night for ``days`` nights before NOW, newest first."""
    return [
        Archive(NOW - timedelta(days=d), f"cabinet-{(NOW - timedelta(days=d)):%Y-%m-%dT%H:%M:%S}")
        for d in range(days)
    ]


def _services(tmp_path: Path, borg: FakeBorg, archives: list[Archive]) -> Services:
    state = State.open(tmp_path / "state.db", logger=LOGGER, now=NOW)
    state.replace_archives(LOCAL.name, archives, NOW)
    return Services(config(tmp_path, LOCAL), state, borg, Clock(NOW), LOGGER)


def _prune(services: Services) -> tuple[list[str], list[str]]:
    """Retention on the local target: (borg commands run, archive names it deleted)."""
    borg = services.borg
    assert isinstance(borg, FakeBorg)
    done = asyncio.run(apply_retention(services, LOCAL.name, "/srv/repo"))
    return [c[0] for c in borg.calls], [a.name for a in done.deleted]


def test_a_ransomware_incident_keeps_every_archive_and_says_how_many_were_held(
    tmp_path: Path,
) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(40))
    IncidentStore(services.state).sight(
        RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={}
    )
    with Journal.of(LOGGER) as journal:
        calls, deleted = _prune(services)
    assert "delete" not in calls and deleted == []
    assert len(services.state.archives(LOCAL.name) or []) == 40
    (line,) = journal.with_id(logs.MSG_PRUNING_FROZEN)
    assert line.__dict__["COFFRE_HELD"] == "35"  # 40 nights, J..J-2 and M, M-1 kept


def test_once_cleared_retention_deletes_again(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(40))
    store = IncidentStore(services.state)
    store.sight(RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={})
    _prune(services)
    store.close(RANSOMWARE)
    calls, deleted = _prune(services)
    assert "delete" in calls and len(deleted) == 35


def test_a_dry_run_still_shows_what_retention_would_delete(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(10))
    IncidentStore(services.state).sight(
        RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={}
    )
    done = asyncio.run(apply_retention(services, LOCAL.name, "/srv/repo", dry_run=True))
    assert len(done.plan.delete) == 5 and done.deleted == ()


def test_an_archive_dated_in_the_future_on_another_target_freezes_this_one(
    tmp_path: Path,
) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(40))
    forged = Archive(datetime(2030, 1, 1, tzinfo=UTC), "cabinet-2030-01-01T01:00:00")
    services.state.enroll_disk("disque-a", "uuid", "cd" * 32, NOW)
    services.state.replace_archives("disque-a", [forged], NOW)
    with Journal.of(LOGGER) as journal:
        calls, deleted = _prune(services)
    assert "delete" not in calls and deleted == []
    incident = IncidentStore(services.state).get(CLOCK)
    assert incident is not None and incident.reasons == ("future",)
    assert incident.latest.target == "disque-a"
    assert incident.latest.figures["future_archives"] == 1
    assert "cabinet-2030" not in str(incident.latest.figures)
    assert journal.with_id(logs.MSG_GUARD_CLOCK)


def test_the_clock_incident_closes_by_itself_when_nothing_is_ahead_any_more(
    tmp_path: Path,
) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(40))
    services.state.enroll_disk("disque-a", "uuid", "cd" * 32, NOW)
    services.state.replace_archives(
        "disque-a", [Archive(NOW + timedelta(days=3), "cabinet-ahead")], NOW
    )
    _prune(services)
    assert IncidentStore(services.state).get(CLOCK) is not None
    # The disk's archive list read again: the archive was the clock's mistake, now gone.
    services.state.replace_archives("disque-a", [], NOW)
    with Journal.of(LOGGER) as journal:
        calls, deleted = _prune(services)
    assert IncidentStore(services.state).get(CLOCK) is None
    assert journal.with_id(logs.MSG_GUARD_CLEARED)
    assert "delete" in calls and len(deleted) == 35


def test_a_clock_that_leapt_far_ahead_of_the_last_sane_night_freezes_pruning(
    tmp_path: Path,
) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(40))
    services.state.set_time(freeze.LAST_SANE, NOW - timedelta(days=365))
    calls, deleted = _prune(services)
    assert "delete" not in calls and deleted == []
    incident = IncidentStore(services.state).get(CLOCK)
    assert incident is not None and incident.reasons == ("leap",)
    assert services.state.get_time(freeze.LAST_SANE) == NOW - timedelta(days=365)


def test_a_sane_night_moves_the_clock_guard_s_reference(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeBorg(), _nightly(5))
    _prune(services)
    assert services.state.get_time(freeze.LAST_SANE) == NOW


def test_acknowledging_the_future_archives_clears_the_guard_and_retention_keeps_them(
    tmp_path: Path,
) -> None:
    ahead = Archive(NOW + timedelta(days=365), "cabinet-2027-12-06T01:30:00")
    services = _services(tmp_path, FakeBorg(), [ahead, *_nightly(40)])
    _prune(services)
    store = IncidentStore(services.state)
    assert store.close(CLOCK) is not None
    named = freeze.acknowledge_future(services.state, services.config.guard, NOW, [LOCAL.name])
    assert named == [ahead.name]
    _, deleted = _prune(services)
    assert store.get(CLOCK) is None
    assert ahead.name not in deleted and len(deleted) == 35
    assert any(a.name == ahead.name for a in services.state.archives(LOCAL.name) or [])


def test_a_full_disk_while_frozen_fails_its_backup_and_deletes_nothing(tmp_path: Path) -> None:
    from typing import cast

    from coffre.targets.usb.job import run_disk_job
    from coffre.targets.usb.repository import UsbRepository
    from tests.unit.test_disk_job import FakeDisk

    borg = FakeBorg(fail={"create": [BorgNoSpace("No space left on device", rc=2)]})
    state = State.open(tmp_path / "state.db", logger=LOGGER, now=NOW)
    state.enroll_disk("disque-a", "uuid", "ab" * 32, NOW - timedelta(days=3))
    state.replace_archives("disque-a", _nightly(11)[1:], NOW)  # none of today: a create is due
    IncidentStore(state).sight(RANSOMWARE, at=NOW, target="local", reasons=("canary",), figures={})
    services = Services(config(tmp_path, LOCAL), state, borg, Clock(NOW), LOGGER)
    powered: list[str] = []

    async def power_off(devnode: str, usb: str | None) -> None:
        powered.append(devnode)

    disk = cast(UsbRepository, FakeDisk())
    with pytest.raises(BorgNoSpace, match="pruning is frozen"):
        asyncio.run(run_disk_job(services, disk, "ab" * 32, power_off=power_off))
    calls = [c[0] for c in borg.calls]
    assert calls.count("create") == 1 and "delete" not in calls
    assert powered == ["/dev/loop0"]  # a full disk is no damaged one: it is safe to pull
