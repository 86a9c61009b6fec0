"""The guard seen everywhere a person looks: the lights, the metrics, `coffre status`.

Over a real State holding what the guard keeps there (incidents, each night's
figures), with a fake NTP probe. Counts and figures only: the evidence, which
may name patient files, never leaves `coffre incident show`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coffre.cli.dispatch import night_line, print_guard
from coffre.core.config_types import Config, LocalTarget
from coffre.core.health import Facts, Health, IncidentFacts, assess
from coffre.core.reports import status_from_json
from coffre.guard.incidents import CLOCK, RANSOMWARE, IncidentStore
from coffre.jobs.change_watch import figures_key
from coffre.jobs.queue import JobQueue
from coffre.observe import status
from coffre.observe.facts import NTP_EVERY, Observer
from coffre.observe.metrics import Exporter
from coffre.storage.state import State
from tests.exposition import Series, parse, value
from tests.fakes import Clock, config

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 18, 1, 30, tzinfo=UTC)
LOG = logging.getLogger("test.guard_observed")
PATIENT = "PATIENT-Dupont-compte-rendu.docx"
NIGHT = {
    "files": 5200,
    "added": 12,
    "modified": 40,
    "vanished": 3,
    "sampled": 52,
    "suspects": 0,
    "canaries_checked": 4,
    "canaries_touched": 0,
    "a_figure_added_later": 7.5,
}


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state.db", logger=LOG, now=T0)


def _config(tmp_path: Path) -> Config:
    return config(tmp_path, LocalTarget("local", tmp_path / "repos" / "local"))


def _attacked(state: State, at: datetime = T0) -> None:
    """A ransomware incident with evidence naming a patient's file, and that night's figures."""
    IncidentStore(state).sight(
        RANSOMWARE,
        at=at,
        target="local",
        reasons=["mass modification", "canary touched"],
        figures={"modified": 2600, "canaries_touched": 1},
        evidence=[f"canary modified: {PATIENT}"],
    )
    state.set_meta(figures_key("local"), json.dumps({"at": at.isoformat(), **NIGHT}))


def _scrape(tmp_path: Path, state: State, ntp: Any = None) -> tuple[str, Series]:
    cfg = _config(tmp_path)
    text = Exporter(Observer(cfg, state, Clock(T0), ntp=ntp), cfg, LOG).exposition().decode()
    return text, parse(text)


# --- health and lights -------------------------------------------------------------------------


def test_an_open_incident_of_either_kind_is_a_failure_with_its_own_reason_first() -> None:
    for kind, reason in (
        (RANSOMWARE, "pruning frozen: suspected ransomware"),
        (CLOCK, "pruning frozen: suspect clock"),
    ):
        facts = Facts(
            now=T0,
            tz=PARIS,
            incidents=(IncidentFacts(kind, T0, ("x",)),),
            problems=("box: the share is missing",),
        )
        verdict = assess(facts)
        assert verdict.health is Health.FAILURE
        assert verdict.reasons[0] == reason
    assert assess(Facts(now=T0, tz=PARIS)).health is Health.OK


def test_the_observer_reads_the_open_incidents_and_the_lights_go_red(
    tmp_path: Path, state: State
) -> None:
    observer = Observer(_config(tmp_path), state, Clock(T0))
    assert assess(observer.facts()).health is Health.OK
    _attacked(state)
    facts = observer.facts()  # state changed: read again, not from the cache
    assert [(i.kind, i.opened_at) for i in facts.incidents] == [(RANSOMWARE, T0)]
    assert facts.incidents[0].reasons == ("mass modification", "canary touched")
    assert assess(facts).reasons[0] == "pruning frozen: suspected ransomware"
    IncidentStore(state).close(RANSOMWARE)
    assert assess(observer.facts()).health is Health.OK


# --- metrics -----------------------------------------------------------------------------------


def test_a_box_without_incident_exports_both_kinds_at_zero_and_no_clock_when_unknown(
    tmp_path: Path, state: State
) -> None:
    _, series = _scrape(tmp_path, state)
    for kind in (RANSOMWARE, CLOCK):
        assert value(series, "coffre_guard_incident", kind=kind) == 0
    assert value(series, "coffre_guard_pruning_frozen") == 0
    names = {name for name, _ in series}
    assert "coffre_guard_incident_opened_timestamp_seconds" not in names
    assert "coffre_clock_synchronized" not in names  # no probe: unknown
    assert not {n for n in names if n.startswith("coffre_guard_night")}
    assert "coffre_guard_canaries" not in names


def test_an_incident_its_night_and_the_clock_are_exported_as_counts_only(
    tmp_path: Path, state: State
) -> None:
    _attacked(state)
    text, series = _scrape(tmp_path, state, ntp=lambda: False)
    assert value(series, "coffre_guard_incident", kind=RANSOMWARE) == 1
    assert value(series, "coffre_guard_incident", kind=CLOCK) == 0
    assert value(
        series, "coffre_guard_incident_opened_timestamp_seconds", kind=RANSOMWARE
    ) == pytest.approx(T0.timestamp())
    assert ("coffre_guard_incident_opened_timestamp_seconds", frozenset({("kind", CLOCK)})) not in (
        series
    )
    assert value(series, "coffre_guard_pruning_frozen") == 1
    assert value(series, "coffre_guard_night_timestamp_seconds", target="local") == T0.timestamp()
    for change, count in (("added", 12), ("modified", 40), ("vanished", 3)):
        assert value(series, "coffre_guard_night_files", target="local", change=change) == count
    assert value(series, "coffre_guard_night_sample", target="local", verdict="sampled") == 52
    assert value(series, "coffre_guard_night_sample", target="local", verdict="suspect") == 0
    assert value(series, "coffre_guard_canaries", state="checked") == 4
    assert value(series, "coffre_guard_canaries", state="touched") == 0
    assert value(series, "coffre_clock_synchronized") == 0
    assert value(series, "coffre_health", state="failure") == 1
    assert "Dupont" not in text and "canary modified" not in text


def test_a_night_figure_the_guard_did_not_give_is_absent_not_zero(
    tmp_path: Path, state: State
) -> None:
    state.set_meta(figures_key("local"), json.dumps({"at": T0.isoformat(), "added": 5}))
    _, series = _scrape(tmp_path, state, ntp=lambda: True)
    assert value(series, "coffre_guard_night_files", target="local", change="added") == 5
    files = [labels for name, labels in series if name == "coffre_guard_night_files"]
    assert files == [frozenset({("target", "local"), ("change", "added")})]
    assert value(series, "coffre_clock_synchronized") == 1


def test_unreadable_night_figures_are_left_out(tmp_path: Path, state: State) -> None:
    state.set_meta(figures_key("local"), "{not json")
    _, series = _scrape(tmp_path, state)
    assert not {n for n, _ in series if n.startswith("coffre_guard_night")}


def test_the_ntp_probe_is_asked_at_most_once_a_minute_and_its_error_is_unknown(
    tmp_path: Path, state: State
) -> None:
    asked: list[int] = []

    def probe() -> bool | None:
        asked.append(1)
        if len(asked) == 2:
            raise OSError("timedatectl: not found")
        return True

    clock = Clock(T0)
    observer = Observer(_config(tmp_path), state, clock, ntp=probe)
    assert observer.facts().clock_synchronised is True
    clock.advance(NTP_EVERY - timedelta(seconds=1))
    assert observer.facts().clock_synchronised is True
    assert len(asked) == 1
    clock.advance(timedelta(seconds=1))
    assert observer.facts().clock_synchronised is None
    assert len(asked) == 2


# --- status ------------------------------------------------------------------------------------


def _status(tmp_path: Path, state: State, synchronised: bool | None) -> dict[str, Any]:
    async def idle(job: Any) -> Any:
        raise AssertionError("no job runs here")

    report = status.build(
        _config(tmp_path),
        state,
        JobQueue(idle),
        T0,
        None,
        clock_synchronised=synchronised,
    )
    # What the CLI reads: the JSON the daemon sends, through status_from_json.
    return dict(status_from_json(json.loads(json.dumps({"event": "result", "status": report}))))


def test_status_has_the_incident_the_clock_and_the_night_never_the_evidence(
    tmp_path: Path, state: State
) -> None:
    _attacked(state)
    report = _status(tmp_path, state, synchronised=False)
    guard = report["guard"]
    assert guard["pruning_frozen"] is True
    assert guard["clock_synchronised"] is False
    [incident] = guard["incidents"]
    assert incident["kind"] == RANSOMWARE
    assert incident["opened_at"] == "2026-11-18T02:30:00+01:00"
    assert incident["reasons"] == ["mass modification", "canary touched"]
    assert incident["sightings"] == 1 and incident["latest_target"] == "local"
    assert incident["figures"] == {"modified": 2600, "canaries_touched": 1}
    assert guard["nights"]["local"]["figures"]["added"] == 12
    assert guard["nights"]["local"]["at"] == "2026-11-18T02:30:00+01:00"
    assert "Dupont" not in json.dumps(report)


def test_status_of_a_quiet_box_says_nothing_is_frozen(tmp_path: Path, state: State) -> None:
    guard = _status(tmp_path, state, synchronised=None)["guard"]
    assert guard == {
        "incidents": [],
        "pruning_frozen": False,
        "clock_synchronised": None,
        "nights": {},
    }


def test_coffre_status_prints_the_failure_what_goes_on_the_clock_and_the_night(
    tmp_path: Path, state: State, capsys: pytest.CaptureFixture[str]
) -> None:
    _attacked(state)
    print_guard(_status(tmp_path, state, synchronised=False)["guard"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "FAILURE: pruning frozen: suspected ransomware since 2026-11-18 02:30:00 "
        "(mass modification, canary touched)"
    )
    assert lines[1] == (
        "  latest sighting (1 in all): 2026-11-18 02:30:00 on local: "
        "modified 2600, canaries_touched 1"
    )
    assert lines[2] == "pruning frozen on every target; backups go on; `coffre incident show`"
    assert lines[3].startswith("clock: NOT synchronised")
    assert lines[4] == (
        "local, last night (2026-11-18 02:30:00): 12 added, 40 modified, 3 vanished; "
        "0 of 52 sampled look encrypted; 0 of 4 canaries touched"
    )


@pytest.mark.parametrize(
    ("synchronised", "shown"),
    [(True, "clock: NTP-synchronised"), (None, "clock: NTP synchronisation unknown")],
)
def test_coffre_status_says_how_the_clock_stands(
    tmp_path: Path,
    state: State,
    capsys: pytest.CaptureFixture[str],
    synchronised: bool | None,
    shown: str,
) -> None:
    print_guard(_status(tmp_path, state, synchronised=synchronised)["guard"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(shown)
    assert "FAILURE" not in out and "frozen" not in out


def test_a_night_line_shows_what_it_knows_and_other_figures_only_alone() -> None:
    assert night_line({"added": 1, "modified": 2.0}) == "1 added, 2 modified"
    assert night_line({"sampled": 10, "suspects": 6}) == "6 of 10 sampled look encrypted"
    assert night_line({"entropy": 7.9}) == "entropy 7.9"
    assert night_line({}) == "no figures"
