"""The exporter's collector over a real State: every series, its labels and values."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.exposition import generate_latest

from coffre import __version__
from coffre.core.config_types import Config, LocalTarget, OffsiteTarget, PathsConfig
from coffre.core.errors import ERROR_KINDS, BorgIntegrityError, BorgNoSpace, OffsiteUnreachable
from coffre.core.model import Archive
from coffre.core.outcomes import BackupWarnings, Reason
from coffre.jobs.queue import JobQueue, JobRequest
from coffre.jobs.services import Services
from coffre.observe import audit_series
from coffre.observe.admission import Limits
from coffre.observe.endpoint import Endpoint
from coffre.observe.facts import Observer
from coffre.observe.metrics import RUN_ERROR_KINDS, Exporter
from coffre.proof.check_ledger import CheckLedger, CheckRecord
from coffre.storage import audit_tail
from coffre.storage.audit import AuditLog, audit_path, head_path, read_entries, verify
from coffre.storage.audit_tail import ChainTail
from coffre.storage.state import RunStats, State
from coffre.targets.offsite.repository import record_preflight
from tests.exposition import Series, parse, value
from tests.fakes import Clock, config
from tests.forged_audit import edit_entry, rewrite_consistently

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 18, 1, 30, tzinfo=UTC)
LOG = logging.getLogger("test.metrics")


def _config(tmp_path: Path) -> Config:
    return config(
        tmp_path,
        LocalTarget("local", tmp_path / "repos" / "local"),
        OffsiteTarget("hds", "coffre", "hds.example", 22, "/depots/cabinet"),
        share="PATIENT-MARKER-Dupont",
    )


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state.db", logger=LOG, now=T0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(exporter: Exporter) -> Series:
    return parse(exporter.exposition().decode())


def names(series: Series) -> set[str]:
    return {name for name, _ in series}


def exporter_for(
    tmp_path: Path, state: State, clock: Clock, main: Any = None
) -> tuple[Exporter, Observer]:
    config = _config(tmp_path)
    observer = Observer(config, state, clock, main=cast(JobQueue, main))
    return Exporter(observer, config, LOG), observer


def test_a_fresh_box_has_every_series_of_its_targets_at_zero(tmp_path: Path, state: State) -> None:
    exporter, _ = exporter_for(tmp_path, state, Clock(T0))
    series = scrape(exporter)
    assert value(series, "coffre_up") == 1
    assert value(series, "coffre_build_info", version=__version__, borg_version="unknown") == 1
    for target in ("local", "hds"):
        for name in (
            "coffre_last_success_timestamp_seconds",
            "coffre_last_attempt_timestamp_seconds",
            "coffre_last_attempt_success",
            "coffre_last_duration_seconds",
            "coffre_archive_original_bytes",
            "coffre_archive_deduplicated_bytes",
            "coffre_archive_files",
            "coffre_repository_archives",
        ):
            assert value(series, name, target=target) == 0, (name, target)
        for slot in ("J", "J-1", "J-2", "M", "M-1"):
            assert value(series, "coffre_retention_slot_present", target=target, slot=slot) == 0
        for kind in RUN_ERROR_KINDS:
            assert value(series, "coffre_errors_total", target=target, kind=kind) == 0
    assert value(series, "coffre_offsite_reachable", target="hds") == 0
    assert ("coffre_offsite_reachable", frozenset({("target", "local")})) not in series
    for kind in ("backup", "prune", "init", "disk", "enroll"):
        assert value(series, "coffre_job_running", kind=kind) == 0
    assert value(series, "coffre_job_progress_ratio") == 0
    assert value(series, "coffre_health", state="ok") == 1
    # No disk enrolled, nothing measured yet: no such series.
    assert not {n for n in names(series) if n.startswith("coffre_disk_")}
    assert "coffre_repository_free_bytes" not in names(series)


def test_runs_archives_disks_and_errors_show_as_state_says(tmp_path: Path, state: State) -> None:
    clock = Clock(T0 + timedelta(hours=8))
    # local: a success with stats, then a failure (disk full).
    run = state.start_run("local", "backup", T0)
    state.finish_run(
        run,
        T0 + timedelta(seconds=42),
        stats=RunStats("cabinet-2026-11-18T02:30:00", 5000, 2500, 1200, 77),
    )
    failed = state.start_run("local", "backup", T0 + timedelta(hours=1))
    state.finish_run(failed, T0 + timedelta(hours=1, seconds=3), error=BorgNoSpace("full", rc=2))
    state.replace_archives(
        "local",
        [
            Archive(datetime(2026, 10, 1, 0, 30, tzinfo=UTC), "cabinet-2026-10-01T02:30:00", "a"),
            Archive(datetime(2026, 11, 17, 0, 30, tzinfo=UTC), "cabinet-2026-11-17T01:30:00", "b"),
            Archive(T0, "cabinet-2026-11-18T02:30:00", "c"),
            Archive(T0, "other-2026-11-18T02:30:00", "d"),
        ],
        T0,
    )
    # hds: unreachable at its last preflight, its backup failed twice.
    record_preflight(
        cast(Services, SimpleNamespace(state=state)), "hds", T0, OffsiteUnreachable("down")
    )
    for _ in range(2):
        cut = state.start_run("hds", "backup", T0)
        state.finish_run(cut, T0, error=OffsiteUnreachable("down"))
    # A disk, enrolled, plugged, backed up and checked, then powered off.
    state.enroll_disk("disque-a", "uuid-a", "repo-a", T0)
    state.disk_seen("disque-a", "/dev/sdz1", "/devices/usb/sdz/sdz1", "1-1", T0)
    backup = state.start_run("disque-a", "backup", T0)
    check = state.start_run("disque-a", "check", T0 + timedelta(minutes=1))
    state.finish_run(check, T0 + timedelta(minutes=2))
    state.finish_run(backup, T0 + timedelta(minutes=2), stats=RunStats("x", 5000, 2500, 900, 77))
    state.disk_done("disque-a", safe=True, free_bytes=123_456_789, at=T0 + timedelta(minutes=2))
    later = state.start_run("disque-a", "check", T0 + timedelta(hours=2))
    state.finish_run(later, T0 + timedelta(hours=2), error=BorgIntegrityError("bad", rc=3))
    # Its checks, as the check ledger has them: a clean pass, then damage found.
    ledger = CheckLedger(state)
    clean = CheckRecord(T0 + timedelta(minutes=2), True, True, None, None, 60.0)
    ledger.record("disque-a", "repository", clean)
    damaged = CheckRecord(T0 + timedelta(hours=2), False, True, "bad", None, 60.0, damage=True)
    ledger.record("disque-a", "repository", damaged)
    # A failed enrollment of a name typed by someone: no label of it.
    typo = state.start_run("PATIENT-MARKER-Dupont.txt", "enroll", T0)
    state.finish_run(typo, T0, error=BorgNoSpace("x", rc=2))

    exporter, observer = exporter_for(tmp_path, state, clock)
    (tmp_path / "repos" / "local").mkdir(parents=True)
    observer.measure()
    series = scrape(exporter)

    at = T0.timestamp()
    assert value(series, "coffre_last_success_timestamp_seconds", target="local") == at + 42
    assert value(series, "coffre_last_attempt_timestamp_seconds", target="local") == at + 3603
    assert value(series, "coffre_last_attempt_success", target="local") == 0
    assert value(series, "coffre_last_duration_seconds", target="local") == 3
    # The archive figures are those of the last archive made.
    assert value(series, "coffre_archive_original_bytes", target="local") == 5000
    assert value(series, "coffre_archive_deduplicated_bytes", target="local") == 1200
    assert value(series, "coffre_archive_files", target="local") == 77
    assert value(series, "coffre_repository_archives", target="local") == 4
    assert value(series, "coffre_repository_oldest_archive_timestamp_seconds", target="local") == (
        datetime(2026, 10, 1, 0, 30, tzinfo=UTC).timestamp()
    )
    present = {
        slot: value(series, "coffre_retention_slot_present", target="local", slot=slot)
        for slot in ("J", "J-1", "J-2", "M", "M-1")
    }
    assert present == {"J": 1, "J-1": 1, "J-2": 0, "M": 1, "M-1": 1}
    assert value(series, "coffre_errors_total", target="local", kind="no_space") == 1
    assert value(series, "coffre_errors_total", target="hds", kind="unreachable") == 2
    assert value(series, "coffre_errors_total", target="disque-a", kind="integrity") == 1
    assert value(series, "coffre_offsite_reachable", target="hds") == 0
    assert value(series, "coffre_repository_free_bytes", target="local") > 0
    # The disk, as a target and as a disk.
    assert value(series, "coffre_last_attempt_success", target="disque-a") == 1
    disk_repo = {"target": "disque-a", "kind": "repository"}
    assert value(series, "coffre_check_last_success_timestamp_seconds", **disk_repo) == at + 120
    assert value(series, "coffre_check_last_attempt_success", **disk_repo) == 0
    assert value(series, "coffre_disk_present", disk="disque-a") == 0
    assert value(series, "coffre_disk_last_seen_timestamp_seconds", disk="disque-a") == at + 120
    assert value(series, "coffre_disk_free_bytes", disk="disque-a") == 123_456_789
    assert value(series, "coffre_disk_swap_due", disk="disque-a") == 0
    assert value(series, "coffre_disk_missing", disk="disque-a") == 0
    # Only the checks coffre runs have series: none of an offsite host's segments.
    assert (
        "coffre_check_last_success_timestamp_seconds",
        frozenset({("target", "hds"), ("kind", "repository")}),
    ) not in (series)
    assert value(series, "coffre_health", state="failure") == 1
    labels = {v for _, pairs in series for _, v in pairs}
    assert not [v for v in labels if "/" in v or "Dupont" in v], labels


def test_a_disk_plugged_for_too_long_is_due_and_one_not_seen_is_missing(
    tmp_path: Path, state: State
) -> None:
    state.enroll_disk("disque-a", "uuid-a", "repo-a", T0)
    state.enroll_disk("disque-b", "uuid-b", "repo-b", T0)
    state.disk_seen("disque-b", "/dev/sdy1", "/devices/b", None, T0)
    state.disk_seen("disque-a", "/dev/sdz1", "/devices/a", None, T0 + timedelta(days=1))
    exporter, _ = exporter_for(tmp_path, state, Clock(T0 + timedelta(days=40)))
    series = scrape(exporter)
    assert value(series, "coffre_disk_present", disk="disque-a") == 1
    assert value(series, "coffre_disk_swap_due", disk="disque-a") == 1
    assert value(series, "coffre_disk_swap_due", disk="disque-b") == 0
    assert value(series, "coffre_disk_missing", disk="disque-b") == 1
    assert ("coffre_disk_free_bytes", frozenset({("disk", "disque-a")})) not in series


def test_the_running_job_and_its_progress(tmp_path: Path, state: State) -> None:
    running = SimpleNamespace(request=JobRequest("backup", ("local",)), progress=0.25)
    exporter, _ = exporter_for(tmp_path, state, Clock(T0), SimpleNamespace(running=running))
    series = scrape(exporter)
    assert value(series, "coffre_job_running", kind="backup") == 1
    assert value(series, "coffre_job_running", kind="disk") == 0
    assert value(series, "coffre_job_progress_ratio") == 0.25
    assert value(series, "coffre_health", state="working") == 1


def test_state_is_read_again_only_after_it_changed(
    tmp_path: Path, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter, _ = exporter_for(tmp_path, state, Clock(T0))
    scrape(exporter)

    def no_query(*args: object, **kwargs: object) -> None:
        raise AssertionError("state read again although nothing changed")

    with monkeypatch.context() as patched:
        patched.setattr(state, "last_run", no_query)
        patched.setattr(state, "error_counts", no_query)
        scrape(exporter)
    run = state.start_run("local", "backup", T0)
    state.finish_run(run, T0 + timedelta(seconds=5), stats=RunStats("a", 1, 1, 1, 1))
    assert value(scrape(exporter), "coffre_last_attempt_success", target="local") == 1


def test_an_unknown_error_kind_in_state_counts_as_internal(tmp_path: Path, state: State) -> None:
    class Odd(BorgNoSpace):
        kind = "from_a_newer_coffre"

    run = state.start_run("local", "backup", T0)
    state.finish_run(run, T0, error=Odd("x", rc=2))
    series = scrape(exporter_for(tmp_path, state, Clock(T0))[0])
    assert "internal" in ERROR_KINDS
    assert value(series, "coffre_errors_total", target="local", kind="internal") == 1
    kinds = {dict(pairs).get("kind") for name, pairs in series if name == "coffre_errors_total"}
    assert kinds == set(RUN_ERROR_KINDS)


def test_unreadable_state_says_coffre_up_0(tmp_path: Path, state: State) -> None:
    exporter, _ = exporter_for(tmp_path, state, Clock(T0))
    state.close()
    series = scrape(exporter)
    assert value(series, "coffre_up") == 0
    assert names(series) == {"coffre_up", "coffre_build_info"}


async def _request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    writer.write_eof()  # a cut request ends at once, not at the server's timeout
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def test_the_endpoint_answers_get_metrics_and_little_else(
    tmp_path: Path, state: State, caplog: pytest.LogCaptureFixture
) -> None:
    exporter, _ = exporter_for(tmp_path, state, Clock(T0))

    async def go() -> dict[str, bytes]:
        port = free_port()
        assert await exporter.serve("127.0.0.1", port)
        # A second exporter on the same address: refused, logged, not raised.
        other, _ = exporter_for(tmp_path, state, Clock(T0))
        with caplog.at_level(logging.ERROR):
            assert not await other.serve("127.0.0.1", port)
        try:
            return {
                "metrics": await _request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
                "query": await _request(port, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
                "root": await _request(port, b"GET / HTTP/1.1\r\n\r\n"),
                "head": await _request(port, b"HEAD /metrics HTTP/1.1\r\n\r\n"),
                "other": await _request(port, b"GET /etc/passwd HTTP/1.1\r\n\r\n"),
                "post": await _request(port, b"POST /metrics HTTP/1.1\r\n\r\n"),
                "garbage": await _request(port, b"\x00\x01\r\n\r\n"),
                "cut": await _request(port, b"GET /metr"),
            }
        finally:
            await exporter.close()

    answers = asyncio.run(go())
    head, _, body = answers["metrics"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"\ncoffre_up 1.0\n" in body
    assert answers["query"].startswith(b"HTTP/1.1 200 OK")
    assert answers["root"].startswith(b"HTTP/1.1 200 OK")
    assert answers["head"].startswith(b"HTTP/1.1 200 OK") and answers["head"].endswith(b"\r\n\r\n")
    assert answers["other"].startswith(b"HTTP/1.1 404 ")
    assert answers["post"].startswith(b"HTTP/1.1 405 ")
    assert answers["garbage"] == b"" or answers["garbage"].startswith(b"HTTP/1.1 405 ")
    assert answers["cut"] == b""
    assert "cannot listen on 127.0.0.1" in caplog.text


def test_the_exposition_is_the_registrys_own(tmp_path: Path, state: State) -> None:
    exporter, _ = exporter_for(tmp_path, state, Clock(T0))
    first = exporter.exposition()
    assert first == generate_latest(exporter.registry)
    run = state.start_run("local", "backup", T0)
    state.finish_run(run, T0, stats=RunStats("a", 1, 1, 1, 1))
    second = exporter.exposition()
    assert second != first
    assert second == generate_latest(exporter.registry)


def test_key_escrow_is_0_until_the_key_is_exported_and_absent_without_a_repository(
    tmp_path: Path, state: State
) -> None:
    clock = Clock(T0)
    exporter, _ = exporter_for(tmp_path, state, clock)
    assert "coffre_key_exported" not in names(scrape(exporter))
    state.record_repository("local", "a" * 64, "/repos/local", T0)
    state.enroll_disk("disque-a", "uuid-a", "b" * 64, T0)
    series = scrape(exporter)
    assert value(series, "coffre_key_exported", target="local") == 0
    assert value(series, "coffre_key_exported", target="disque-a") == 0
    state.record_key_export("a" * 64, T0)
    series = scrape(exporter)
    assert value(series, "coffre_key_exported", target="local") == 1
    assert value(series, "coffre_key_exported", target="disque-a") == 0
    assert ("coffre_key_exported", frozenset({("target", "hds")})) not in series


def _backup(state: State, target: str, at: datetime, warnings: BackupWarnings | None) -> None:
    run = state.start_run(target, "backup", at)
    stats = RunStats(f"cabinet-{at:%Y-%m-%dT%H:%M:%S}", 5000, 2500, 900, 77, warnings)
    state.finish_run(run, at + timedelta(seconds=30), stats=stats)


def test_a_backup_with_warnings_is_a_made_archive_but_not_a_successful_attempt(
    tmp_path: Path, state: State
) -> None:
    partial = BackupWarnings.of({Reason.PERMISSION: 2, Reason.IO_ERROR: 1, Reason.CHANGED: 4})
    _backup(state, "local", T0, None)
    _backup(state, "local", T0 + timedelta(days=1), partial)
    failed = state.start_run("local", "backup", T0 + timedelta(days=1, hours=1))
    state.finish_run(failed, T0 + timedelta(days=1, hours=1), error=BorgNoSpace("full", rc=2))
    _backup(state, "local", T0 + timedelta(days=2), partial)
    exporter, _ = exporter_for(tmp_path, state, Clock(T0 + timedelta(days=2, hours=1)))
    series = scrape(exporter)

    last = (T0 + timedelta(days=2, seconds=30)).timestamp()
    # The archive exists: freshness sees it.
    assert value(series, "coffre_last_success_timestamp_seconds", target="local") == last
    assert value(series, "coffre_last_attempt_timestamp_seconds", target="local") == last
    # But the attempt was no success, and no failure either.
    assert value(series, "coffre_last_attempt_success", target="local") == 0
    assert value(series, "coffre_last_attempt_warning", target="local") == 1
    assert value(series, "coffre_errors_total", target="local", kind="no_space") == 1
    # Changed files are in the archive: only the 3 unreadable ones are missing.
    assert value(series, "coffre_files_not_backed_up", target="local") == 3
    # Two archives in a row lack files (the failure between made none).
    assert value(series, "coffre_backup_warnings_in_a_row", target="local") == 2
    assert value(series, "coffre_backup_warnings_total", target="local") == 2
    assert value(series, "coffre_health", state="attention") == 1
    # The other target: every new series there, at 0.
    for name in (
        "coffre_last_attempt_warning",
        "coffre_files_not_backed_up",
        "coffre_backup_warnings_in_a_row",
        "coffre_backup_warnings_total",
    ):
        assert value(series, name, target="hds") == 0, name


def test_a_clean_backup_after_warnings_clears_all_but_the_counter(
    tmp_path: Path, state: State
) -> None:
    _backup(state, "local", T0, BackupWarnings.of({Reason.VANISHED: 1}))
    _backup(state, "local", T0 + timedelta(hours=1), None)
    series = scrape(exporter_for(tmp_path, state, Clock(T0 + timedelta(hours=2)))[0])
    assert value(series, "coffre_last_attempt_success", target="local") == 1
    assert value(series, "coffre_last_attempt_warning", target="local") == 0
    assert value(series, "coffre_files_not_backed_up", target="local") == 0
    assert value(series, "coffre_backup_warnings_in_a_row", target="local") == 0
    assert value(series, "coffre_backup_warnings_total", target="local") == 1
    assert value(series, "coffre_health", state="ok") == 1


# --- the audit log's witness -----------------------------------------------------


def _audited(tmp_path: Path, state: State, entries: int) -> tuple[Exporter, Path]:
    """An exporter whose state dir is ``tmp_path/state``, its audit log holding ``entries``."""
    practice = replace(_config(tmp_path), paths=PathsConfig(state=tmp_path / "state"))
    log = audit_path(practice)
    writer = AuditLog(log, LOG)
    for n in range(entries):
        writer.record(
            op="restore",
            at=T0 + timedelta(minutes=n),
            person={"user": "alice"},
            target="local",
            archive="cabinet-2026-11-18T01:30",
            paths=[f"PATIENT-MARKER-Dupont/bilan-{n}.pdf"],
            outcome="ok",
        )
    observer = Observer(practice, state, Clock(T0))
    return Exporter(observer, practice, LOG), log


def _chain(series: Series) -> dict[str, str]:
    """The coffre_audit_chain_info series as seq -> hash (each seq once)."""
    found: dict[str, str] = {}
    for name, labels in series:
        if name == "coffre_audit_chain_info":
            pairs = dict(labels)
            assert set(pairs) == {"seq", "hash"}, pairs
            assert pairs["seq"] not in found, f"seq {pairs['seq']} with two hashes"
            found[pairs["seq"]] = pairs["hash"]
            assert series[(name, labels)] == 1
    return found


def test_the_audit_entries_and_the_chains_last_hashes_are_exported(
    tmp_path: Path, state: State
) -> None:
    exporter, log = _audited(tmp_path, state, 40)
    text = exporter.exposition().decode()
    series = parse(text)
    assert value(series, "coffre_audit_entries_total") == 40
    entries = read_entries(log)
    # The last 16 entries (the head's is the last one's): seq and 16 hex of the line's SHA-256.
    assert _chain(series) == {str(e.seq): e.hash[:16] for e in entries[-16:]}
    assert "# TYPE coffre_audit_entries_total counter" in text
    # No patient data, no person: figures only.
    assert "PATIENT-MARKER" not in text
    assert "alice" not in text


def test_a_box_without_audit_log_exports_0_entries_and_no_chain(
    tmp_path: Path, state: State
) -> None:
    exporter, _ = _audited(tmp_path, state, 0)
    series = scrape(exporter)
    assert value(series, "coffre_audit_entries_total") == 0
    assert _chain(series) == {}


def test_a_consistent_rewrite_changes_the_hash_of_a_seq_exported_before(
    tmp_path: Path, state: State
) -> None:
    exporter, log = _audited(tmp_path, state, 40)
    before = _chain(scrape(exporter))
    rewrite_consistently(log, edit_entry(1, paths=["nothing.pdf"]))
    assert verify(log).ok  # the box alone sees nothing
    after = _chain(scrape(exporter))
    assert after.keys() == before.keys()
    assert all(after[seq] != before[seq] for seq in before)
    assert value(scrape(exporter), "coffre_audit_entries_total") == 40


def test_a_deleted_audit_log_shows_as_the_count_going_back_to_0(
    tmp_path: Path, state: State
) -> None:
    exporter, log = _audited(tmp_path, state, 5)
    assert value(scrape(exporter), "coffre_audit_entries_total") == 5
    log.unlink()
    head = head_path(log)
    series = scrape(exporter)
    assert value(series, "coffre_audit_entries_total") == 0
    # The head file left behind still says seq 5, with the hash seen before.
    assert set(_chain(series)) == {"5"}
    head.unlink()
    series = scrape(exporter)
    assert value(series, "coffre_audit_entries_total") == 0
    assert _chain(series) == {}


def test_the_audit_log_is_read_again_only_after_it_changed(
    tmp_path: Path, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter, log = _audited(tmp_path, state, 3)
    reads: list[Path] = []
    real = audit_tail.read_tail

    def counting(path: Path, count: int, *, wait: bool) -> ChainTail:
        reads.append(path)
        return real(path, count, wait=wait)

    monkeypatch.setattr(audit_series, "read_tail", counting)
    for _ in range(3):
        assert value(scrape(exporter), "coffre_audit_entries_total") == 3
    assert len(reads) == 1
    AuditLog(log, LOG).record(
        op="find", at=T0, person={}, target=None, archive=None, paths=[], outcome="ok"
    )
    assert value(scrape(exporter), "coffre_audit_entries_total") == 4
    assert len(reads) == 2


def test_an_audit_log_being_written_shows_the_last_figures_without_waiting(
    tmp_path: Path, state: State
) -> None:
    exporter, log = _audited(tmp_path, state, 3)
    before = scrape(exporter)
    with log.open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # a record in progress
        held.write(b"x")  # its line half written: the log changed
        held.flush()
        during = scrape(exporter)
    assert value(during, "coffre_audit_entries_total") == 3
    assert _chain(during) == _chain(before)


def test_an_unreadable_audit_log_leaves_its_series_out_and_the_rest_up(
    tmp_path: Path, state: State, caplog: pytest.LogCaptureFixture
) -> None:
    exporter, log = _audited(tmp_path, state, 0)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.symlink_to(tmp_path / "elsewhere")  # never followed
    series = scrape(exporter)
    assert value(series, "coffre_up") == 1
    assert "coffre_audit_entries_total" not in names(series)
    assert "cannot read the audit log" in caplog.text


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` in the loop (the server runs in it) until true; fail after ``within``."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _dropped(reader: asyncio.StreamReader) -> bool:
    """True when the server closed this connection without answering."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


def test_a_client_that_never_finishes_its_head_is_cut_at_the_head_deadline() -> None:
    endpoint = Endpoint(lambda: b"coffre_up 1\n", LOG, head_deadline=0.3)

    async def go() -> float:
        port = free_port()
        assert await endpoint.serve("127.0.0.1", port)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = asyncio.get_running_loop().time()
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never the blank line
            assert await _dropped(reader)
            writer.close()
            return asyncio.get_running_loop().time() - began
        finally:
            await endpoint.close()

    took = asyncio.run(go())
    assert 0.25 <= took < 2.0


def test_a_peer_over_its_share_loses_its_oldest_half_open_connection_to_a_scrape() -> None:
    endpoint = Endpoint(
        lambda: b"coffre_up 1\n", LOG, limits=Limits(per_peer=2, room=4, ceiling=8, fresh=0.0)
    )

    async def go() -> tuple[bool, bytes, int]:
        port = free_port()
        assert await endpoint.serve("127.0.0.1", port)
        try:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            for _, writer in held:
                writer.write(b"GET /metrics HTTP/1.1\r\n")
            await _until(lambda: endpoint.connections == 2)
            answer = await _request(port, b"GET /metrics HTTP/1.1\r\n\r\n")
            oldest_dropped = await _dropped(held[0][0])
            await _until(lambda: endpoint.connections == 1)
            still = endpoint.connections
            for _, writer in held:
                writer.close()
            return oldest_dropped, answer, still
        finally:
            await endpoint.close()

    oldest_dropped, answer, still = asyncio.run(go())
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"coffre_up 1\n")
    assert oldest_dropped
    assert still == 1  # the younger half-open one is still held
