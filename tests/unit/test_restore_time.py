"""The restore-time estimate where people read it: the metrics, status, `coffre status`."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.cli.restore_time import print_restore_times, restore_lines
from coffre.core.config_types import (
    Config,
    LocalTarget,
    OffsiteTarget,
    RestoreConfig,
)
from coffre.core.reports import RestoreEstimateView, RestoreView, status_from_json
from coffre.jobs.queue import Job, JobQueue, JobResult
from coffre.observe import status
from coffre.observe.facts import Observer, read_drill
from coffre.observe.metrics import Exporter
from coffre.observe.status import restore_view
from coffre.proof import restore_estimate
from coffre.storage.state import RunStats, State
from tests.exposition import parse, value
from tests.fakes import Clock, config

T0 = datetime(2026, 11, 18, 1, 30, tzinfo=UTC)
LOG = logging.getLogger("test.restore_time")
MB = 1_000_000


@pytest.fixture(autouse=True)
def plain_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fixed or per-file part: figures are size / the drill's bytes per second."""
    monkeypatch.setattr(restore_estimate, "START_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "SCAN_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "MATCH_SECONDS", 0.0)
    monkeypatch.setattr(restore_estimate, "PER_FILE_SECONDS", 0.0)


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state.db", logger=LOG, now=T0)


def _config(tmp_path: Path, rto_hours: int = 24) -> Config:
    practice = config(
        tmp_path,
        LocalTarget("local", tmp_path / "repo"),
        OffsiteTarget("hds", "coffre", "hds.example", 22, "/depots/cabinet"),
    )
    return replace(practice, restore=RestoreConfig(rto_hours=rto_hours))


def _drill(state: State, target: str, at: datetime, *, bytes_: int, seconds: float) -> None:
    """A drill record as the drill ledger writes it (state meta ``drill.<target>``)."""
    record = {
        "at": at.isoformat(),
        "archive": "cabinet-2026-11-18T02:30:00",
        "files": 50,
        "bytes": bytes_,
        "extract_seconds": seconds,
        "outcome": "ok",
        "mismatches": 0,
        "error": None,
    }
    state.set_meta(f"drill.{target}", json.dumps(record))


def _backup(state: State, target: str, original: int, files: int) -> None:
    run = state.start_run(target, "backup", T0)
    stats = RunStats("cabinet-2026-11-18T02:30:00", original, original // 2, 1000, files)
    state.finish_run(run, T0 + timedelta(seconds=30), stats=stats)


def test_a_drill_record_is_read_from_state_and_a_damaged_one_is_none(state: State) -> None:
    _drill(state, "local", T0, bytes_=200 * MB, seconds=5.0)
    drill = read_drill(state, "local")
    assert drill is not None
    assert (drill.at, drill.files, drill.bytes, drill.extract_seconds, drill.outcome) == (
        T0,
        50,
        200 * MB,
        5.0,
        "ok",
    )
    assert read_drill(state, "hds") is None
    for damaged in ("{", "[]", '{"at": "yesterday"}', '{"at": "2026-11-18T01:30:00"}'):
        state.set_meta("drill.local", damaged)
        assert read_drill(state, "local") is None, damaged
    state.set_meta("drill.local", json.dumps({"at": T0.isoformat(), "files": "many"}))
    assert read_drill(state, "local") is None


def test_the_metrics_give_the_estimate_of_drilled_targets_only(
    tmp_path: Path, state: State
) -> None:
    practice = _config(tmp_path, rto_hours=4)
    _backup(state, "local", 36_000 * MB, 20_000)
    _backup(state, "hds", 36_000 * MB, 20_000)
    _drill(state, "local", T0, bytes_=200 * MB, seconds=5.0)  # 40 MB/s: 900 s
    observer = Observer(practice, state, Clock(T0 + timedelta(days=1)))
    series = parse(Exporter(observer, practice, LOG).exposition().decode())
    assert value(series, "coffre_restore_estimated_seconds", target="local") == pytest.approx(900)
    assert value(series, "coffre_restore_estimate_stale", target="local") == 0
    assert value(series, "coffre_restore_rto_seconds") == 4 * 3600
    # hds was never drilled: no figure, never a guess.
    assert ("coffre_restore_estimated_seconds", frozenset({("target", "hds")})) not in series
    assert ("coffre_restore_estimate_stale", frozenset({("target", "hds")})) not in series


def test_a_drill_older_than_45_days_is_exported_stale(tmp_path: Path, state: State) -> None:
    practice = _config(tmp_path)
    _backup(state, "local", 400 * MB, 100)
    _drill(state, "local", T0, bytes_=200 * MB, seconds=5.0)
    observer = Observer(practice, state, Clock(T0 + timedelta(days=46)))
    series = parse(Exporter(observer, practice, LOG).exposition().decode())
    assert value(series, "coffre_restore_estimate_stale", target="local") == 1
    assert value(series, "coffre_restore_estimated_seconds", target="local") == pytest.approx(10)


def test_status_says_each_targets_estimate_and_whether_it_is_over(
    tmp_path: Path, state: State
) -> None:
    practice = _config(tmp_path, rto_hours=24)
    _backup(state, "local", 36_000 * MB, 20_000)
    _backup(state, "hds", 36_000 * MB, 20_000)
    _drill(state, "local", T0, bytes_=200 * MB, seconds=5.0)
    _drill(state, "hds", T0, bytes_=50 * MB, seconds=250.0)  # 0.2 MB/s: 50 h
    state.enroll_disk("disque-a", "uuid", "repo", T0)
    view = restore_view(practice, state, T0 + timedelta(days=1))
    assert view["objective_hours"] == 24 and view["stale_after_days"] == 45
    local, hds, disk = (view["estimates"][n] for n in ("local", "hds", "disque-a"))
    assert local["seconds"] == pytest.approx(900) and not local["over_objective"]
    assert local["bytes"] == 36_000 * MB and local["files"] == 20_000
    assert local["drill_at"] == "2026-11-18T02:30:00+01:00"  # the box's timezone
    assert hds["seconds"] == pytest.approx(180_000) and hds["over_objective"]
    assert hds["over_link"] and not local["over_link"]
    assert disk["seconds"] is None and disk["unknown"] == "no drill yet"


def _view(**changes: object) -> RestoreEstimateView:
    base: RestoreEstimateView = {
        "seconds": 3 * 3600 + 10 * 60,
        "unknown": None,
        "drill_at": "2026-11-03T02:40:00+01:00",
        "rate": 42e6,
        "bytes": 480 * 10**9,
        "files": 120_000,
        "over_link": False,
        "stale": False,
        "over_objective": False,
    }
    return {**base, **changes}  # type: ignore[typeddict-item]


def _restore(**estimates: RestoreEstimateView) -> RestoreView:
    return {"objective_hours": 24, "stale_after_days": 45, "estimates": dict(estimates)}


def test_the_status_line_says_how_long_from_which_drill() -> None:
    found = _view()
    assert restore_lines("disque-a", found, _restore(x=found)) == [
        "getting everything back from disque-a takes about 3 h 10 min "
        "(drill of 2026-11-03, 42.0 MB/s)"
    ]


def test_an_offsite_target_over_the_objective_says_the_disks_are_the_fast_way() -> None:
    found = _view(seconds=50 * 3600, rate=2.5e6, over_link=True, over_objective=True)
    lines = restore_lines("hds", found, _restore(hds=found))
    assert lines[0] == (
        "getting everything back from hds takes about 2 days 2 h "
        "(drill of 2026-11-03, 2.5 MB/s over the Internet link)"
    )
    assert lines[1].startswith("  over the objective of 24 h: the Internet link")
    assert "the USB disks are the fast way back" in lines[1]
    assert len(lines) == 2


def test_a_local_target_over_the_objective_says_what_would_be_faster() -> None:
    found = _view(seconds=30 * 3600, over_objective=True)
    lines = restore_lines("local", found, _restore(local=found))
    assert lines[1] == (
        "  over the objective of 24 h: a faster disk, or a USB disk kept at the practice, "
        "gets everything back sooner"
    )


def test_a_stale_drill_says_so_and_how_to_drill_again() -> None:
    found = _view(stale=True)
    lines = restore_lines("local", found, _restore(local=found))
    assert lines[1] == "  the drill is older than 45 days: `coffre drill --target local`"


def test_no_drill_yet_is_said_never_guessed(capsys: pytest.CaptureFixture[str]) -> None:
    none = _view(seconds=None, unknown="no drill yet", drill_at=None, rate=None)
    print_restore_times(_restore(local=_view(), hds=none))
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "",
        "restore times (objective 24 h, restore.rto_hours)",
        "  getting everything back from local takes about 3 h 10 min "
        "(drill of 2026-11-03, 42.0 MB/s)",
        "  getting everything back from hds: unknown, no drill yet (`coffre drill --target hds`)",
    ]


def test_the_status_report_carries_the_restore_times_through_its_json(
    tmp_path: Path, state: State
) -> None:
    async def idle(job: Job) -> JobResult:
        raise AssertionError("no job runs here")

    _backup(state, "local", 400 * MB, 100)
    _drill(state, "local", T0, bytes_=200 * MB, seconds=5.0)
    report = status.build(_config(tmp_path), state, JobQueue(idle), T0, None)
    sent = json.loads(json.dumps({"event": "result", "status": report}))
    restore = status_from_json(sent)["restore"]
    assert restore["estimates"]["local"]["seconds"] == pytest.approx(10.0)
    assert restore["estimates"]["hds"]["unknown"] == "no drill yet"
    # A daemon that predates the estimate sends none: its status is still read.
    del sent["status"]["restore"]
    assert "restore" not in status_from_json(sent)
