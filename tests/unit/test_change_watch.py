"""After a create: the night's figures kept, a signal opening the ransomware incident, loudly."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coffre.core.model import RunStats
from coffre.guard.incidents import RANSOMWARE, IncidentStore
from coffre.jobs import change_watch
from coffre.jobs.services import Services
from coffre.storage import logs
from coffre.storage.state import State
from tests.fakes import LOCAL, Clock, FakeBorg, Journal, config

NOW = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)
LOGGER = logging.getLogger("test-change-watch")


def _services(tmp_path: Path, now: datetime) -> Services:
    state = State.open(tmp_path / "state.db", logger=LOGGER, now=now)
    return Services(config(tmp_path, LOCAL), state, FakeBorg(), Clock(now), LOGGER)


def _backed_up(services: Services, at: datetime, files: int) -> None:
    run = services.state.start_run(LOCAL.name, "backup", at)
    services.state.finish_run(run, at, stats=RunStats("a", 100, 50, 10, files))


def test_a_quiet_night_keeps_its_figures_and_plants_the_canaries(tmp_path: Path) -> None:
    services = _services(tmp_path, NOW)
    signal = change_watch.watch(services, LOCAL.name, RunStats("b", 100, 50, 1, 3), ())
    assert signal is None
    kept = json.loads(services.state.get_meta(change_watch.figures_key(LOCAL.name)) or "{}")
    assert kept["files"] == 3 and kept["at"] == NOW.isoformat()
    assert kept["vanished"] == 0  # computed by the guard, kept with the counts
    assert services.state.get_meta(change_watch.CANARIES_KEY)
    assert IncidentStore(services.state).open_incidents() == ()


def test_a_canary_gone_opens_the_incident_with_figures_and_no_file_name(tmp_path: Path) -> None:
    services = _services(tmp_path, NOW)
    change_watch.watch(services, LOCAL.name, RunStats("a", 100, 50, 1, 3), ())
    share = services.config.source.paths[0]
    secret = share / "DUPONT Jean - compte rendu.pdf"
    secret.write_bytes(b"%PDF-1.5 ...")
    for canary in share.glob("!COFFRE-TEMOIN*"):
        canary.rename(canary.with_name(canary.name + ".locked"))
    with Journal.of(LOGGER) as journal:
        signal = change_watch.watch(services, LOCAL.name, RunStats("b", 100, 50, 1, 4), ())
    assert signal is not None and "canary" in signal.reasons
    incident = IncidentStore(services.state).get(RANSOMWARE)
    assert incident is not None and incident.latest.target == LOCAL.name
    (line,) = journal.with_id(logs.MSG_GUARD_RANSOMWARE)
    fields = {k: v for k, v in line.__dict__.items() if k.startswith("COFFRE_GUARD_")}
    assert fields["COFFRE_GUARD_REASONS"].split(",")[0] == "canary"
    assert all("DUPONT" not in str(v) for v in fields.values())
    assert "DUPONT" not in line.getMessage()


def test_the_previous_backup_is_the_baseline_until_support_clears_an_incident(
    tmp_path: Path,
) -> None:
    services = _services(tmp_path, NOW)
    _backed_up(services, NOW - timedelta(days=1), 1200)
    baseline = change_watch.baseline(services, LOCAL.name)
    assert baseline is not None and baseline.files == 1200
    services.state.set_time(change_watch.CLEARED_KEY, NOW - timedelta(hours=2))
    assert change_watch.baseline(services, LOCAL.name) is None
    _backed_up(services, NOW - timedelta(hours=1), 1300)
    again = change_watch.baseline(services, LOCAL.name)
    assert again is not None and again.files == 1300
