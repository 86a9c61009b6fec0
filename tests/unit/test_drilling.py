"""A drill's orchestration with borg faked: what it asks borg, audits, records and cleans."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coffre.core.config_types import Config, PathsConfig
from coffre.core.errors import BorgArchiveMissing, BorgIntegrityError
from coffre.core.messages import JobOptions
from coffre.daemon.executor import Executor
from coffre.jobs.drilling import DrillReport, run_drill, scratch_dir
from coffre.jobs.queue import Job, JobRequest
from coffre.jobs.services import Services
from coffre.proof.drill_ledger import DrillLedger
from coffre.storage.audit import AuditUnavailable, audit_path, read_entries
from coffre.storage.state import State
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, FakeRepository, Journal, config

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
LOGGER = logging.getLogger("test.drilling")
ARCHIVE = "cabinet-2026-11-29T01:30:00"


def _setup(tmp_path: Path, borg: FakeBorg) -> Services:
    paths = PathsConfig(state=tmp_path / "state", cache=tmp_path / "cache", runtime=tmp_path / "r")
    (tmp_path / "state").mkdir()
    cfg: Config = config(tmp_path, LOCAL, paths=paths)
    state = State.open(tmp_path / "s.db", logger=LOGGER, now=NOW)
    borg.archives.append((ARCHIVE, "2026-11-29T00:30:00.000000"))
    return Services(cfg, state, borg, Clock(NOW), LOGGER)


def _archive(tmp_path: Path, n: int = 8) -> dict[str, bytes]:
    share = str(tmp_path / "share").lstrip("/")
    return {f"{share}/Patients/f{i}.pdf": bytes([i]) * (100 + i) for i in range(n)}


def _drill(services: Services, person: dict[str, object] | None = None) -> DrillReport:
    return asyncio.run(
        run_drill(services, "local", "/srv/repo", person=person, rng=random.Random(1))
    )


def test_a_drill_of_a_sound_archive_is_ok_recorded_and_audited(tmp_path: Path) -> None:
    borg = FakeBorg(archive=_archive(tmp_path))
    services = _setup(tmp_path, borg)
    report = _drill(services)
    record = report.record
    assert (record.outcome, record.files, record.mismatches) == ("ok", 8, 0)
    assert record.bytes == sum(100 + i for i in range(8))
    assert record.archive == ARCHIVE
    assert DrillLedger(services.state).last("local") == record
    # The share has none of these files (the fake's times): all judged by borg's hash.
    assert (report.by_bytes, report.by_hash) == (0, 8)
    extract = next(c for c in borg.calls if c[0] == "extract")
    assert sorted(a for a in extract if a.startswith("pp:")) == sorted(
        "pp:" + p for p in _archive(tmp_path)
    )
    lines = read_entries(audit_path(services.config))
    assert [(e.op, e.outcome) for e in lines] == [("drill", "asked"), ("drill", "ok")]
    assert lines[0].person == {"user": "coffre", "why": "scheduled drill"}
    assert sorted(lines[0].paths) == sorted(_archive(tmp_path))
    # The scratch folder is gone, its parent is root's alone.
    assert list(scratch_dir(services.config).iterdir()) == []
    assert scratch_dir(services.config).stat().st_mode & 0o777 == 0o700


def test_a_file_borg_could_not_extract_whole_is_a_mismatch_named_in_the_journal(
    tmp_path: Path,
) -> None:
    archive = _archive(tmp_path)
    broken = sorted(archive)[3]
    borg = FakeBorg(archive=archive, extract_fails={broken: ("BackupError", "chunk damaged")})
    services = _setup(tmp_path, borg)
    with Journal.of(LOGGER) as journal:
        report = _drill(services, person={"user": "alice", "uid": 0})
    assert report.record.outcome == "mismatch"
    assert report.mismatched == (broken,)
    assert report.record.mismatches == 1
    assert broken in report.summary()
    said = [r.getMessage() for r in journal.records if "drill of local" in r.getMessage()]
    assert said and broken in said[-1]
    # Counts only in state: no name.
    assert broken not in (services.state.get_meta("drill.local") or "")
    lines = read_entries(audit_path(services.config))
    assert [(e.outcome, e.person.get("user")) for e in lines] == [
        ("asked", "alice"),
        ("mismatch", "alice"),
    ]


def test_an_extract_borg_stops_fails_the_drill_naming_the_file_it_stopped_on(
    tmp_path: Path,
) -> None:
    borg = FakeBorg(
        archive=_archive(tmp_path),
        fail={"extract": [BorgIntegrityError("Data integrity error", rc=2)]},
    )
    services = _setup(tmp_path, borg)
    with pytest.raises(BorgIntegrityError):
        _drill(services)
    record = DrillLedger(services.state).last("local")
    assert record is not None and record.outcome == "failed"
    assert record.error == "extract failed (integrity)"
    outcomes = [e.outcome for e in read_entries(audit_path(services.config))]
    assert outcomes == ["asked", "failed: integrity"]


def test_a_damaged_chunk_that_stops_borg_names_its_file_and_the_rest_is_still_checked(
    tmp_path: Path,
) -> None:
    archive = _archive(tmp_path)
    broken = sorted(archive)[2]
    borg = FakeBorg(
        archive=archive,
        extract_stops={broken: BorgIntegrityError("Segment entry checksum mismatch", rc=2)},
    )
    services = _setup(tmp_path, borg)
    report = _drill(services)
    assert (report.record.outcome, report.mismatched) == ("mismatch", (broken,))
    assert report.by_hash == 7  # every other file, hashed and found sound
    extracts = [c for c in borg.calls if c[0] == "extract"]
    assert len(extracts) == 2
    # The second run asks for the files the first did not reach, not the damaged one.
    first = [a.removeprefix("pp:") for a in extracts[0] if a.startswith("pp:")]
    second = [a.removeprefix("pp:") for a in extracts[1] if a.startswith("pp:")]
    assert second == first[first.index(broken) + 1 :]
    hashing = next(c for c in borg.calls if c[0] == "list" and "--format={xxh64}" in c)
    assert "pp:" + broken not in hashing and len(hashing) == 4 + 7  # never the damaged one


def test_no_audit_line_no_drill(tmp_path: Path) -> None:
    borg = FakeBorg(archive=_archive(tmp_path))
    services = _setup(tmp_path, borg)
    audit_path(services.config).mkdir()  # the log cannot be written
    with pytest.raises(AuditUnavailable):
        _drill(services)
    assert not any(c[0] == "extract" for c in borg.calls)


def test_a_target_without_archive_is_a_failed_drill(tmp_path: Path) -> None:
    services = _setup(tmp_path, FakeBorg())
    borg = services.borg
    assert isinstance(borg, FakeBorg)
    borg.archives.clear()
    with pytest.raises(BorgArchiveMissing):
        _drill(services)
    record = DrillLedger(services.state).last("local")
    assert record is not None and record.outcome == "failed"


def test_a_leftover_of_a_killed_drill_is_removed_at_the_next_drill(tmp_path: Path) -> None:
    borg = FakeBorg(archive=_archive(tmp_path))
    services = _setup(tmp_path, borg)
    leftover = scratch_dir(services.config) / "local" / "srv" / "old"
    leftover.mkdir(parents=True)
    (leftover / "f").write_bytes(b"patient data")
    assert _drill(services).record.outcome == "ok"
    assert not (scratch_dir(services.config) / "local").exists()


def _asked_drill(tmp_path: Path, borg: FakeBorg) -> tuple[dict[str, Any], Services]:
    """A ``drill`` job asked by alice, run by the executor on the fake local repository."""
    services = _setup(tmp_path, borg)
    services.state.record_repository("local", REPO_ID, "/srv/repo", NOW)
    executor = Executor(services, {"local": FakeRepository()})
    options = JobOptions(asked_by=(("user", "alice"), ("uid", 0), ("pid", 42)))

    async def go() -> dict[str, Any]:
        job = Job(id=1, request=JobRequest("drill", ("local",), options=options))
        return dict(await executor(job))

    return asyncio.run(go()), services


def test_the_drill_job_gives_the_figures_and_audits_who_asked(tmp_path: Path) -> None:
    result, services = _asked_drill(tmp_path, FakeBorg(archive=_archive(tmp_path)))
    local = result["targets"]["local"]
    assert result["ok"] and local["ok"]
    assert (local["archive"], local["nfiles"], local["mismatches"]) == (ARCHIVE, 8, 0)
    assert local["by_hash"] == 8 and local["by_bytes"] == 0
    asked = read_entries(audit_path(services.config))[0]
    assert asked.person == {"user": "alice", "uid": 0, "pid": 42}


def test_a_drill_job_that_finds_damage_fails_naming_the_file_escaped(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    share = str(tmp_path / "share").lstrip("/")
    evil = f"{share}/Patients/\u202etxt.exe"
    archive[evil] = b"x" * 10
    borg = FakeBorg(archive=archive, extract_fails={evil: ("BackupError", "damaged chunk")})
    result, _ = _asked_drill(tmp_path, borg)
    local = result["targets"]["local"]
    assert not result["ok"] and not local["ok"]
    message = local["error"]["message"]
    assert "1 differ" in message and "\\u202etxt.exe" in message
    assert "\u202e" not in message
    assert local["error"]["kind"] == "integrity"
