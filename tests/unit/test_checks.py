"""The scheduled checks: the ledger, what a borg run found, the data pass, check_at."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.borg.records import LogRecord, Progress
from coffre.borg.runner import BorgResult
from coffre.core.config_types import OffsiteTarget
from coffre.core.errors import BorgIntegrityError, BorgLockTimeout, UsageError
from coffre.core.model import Archive
from coffre.jobs.checking import check_at
from coffre.jobs.services import Services
from coffre.proof import check_outcome
from coffre.proof.check_ledger import CheckLedger, CheckRecord, kinds_for, ledger_key
from coffre.proof.data_pass import to_verify
from coffre.storage.state import State
from coffre.targets.checking import check_target
from tests.fakes import LOCAL, REPO_ID, Clock, FakeBorg, config

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LOG = logging.getLogger("t")


class Meta:
    """State's meta table in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.values[key] = value


def _record(
    at: datetime, *, ok: bool = True, complete: bool = True, damage: bool = False
) -> CheckRecord:
    error = None if ok else "the check found damage"
    return CheckRecord(at, ok, complete, error, None, 60.0, damage=damage)


def info(message: str) -> LogRecord:
    return LogRecord("INFO", message, "", "borg.repository")


def error(message: str) -> LogRecord:
    return LogRecord("ERROR", message, "", "borg.repository")


# --- the ledger ----------------------------------------------------------------------


def test_a_complete_clean_pass_is_the_last_success() -> None:
    ledger = CheckLedger(Meta())
    ledger.record("local", "archives", _record(NOW))
    assert ledger.last_success("local", "archives") == NOW
    assert ledger.last_attempt("local", "archives") == _record(NOW)
    assert ledger.last_success("local", "repository") is None


def test_a_rolling_pass_succeeds_only_when_a_slice_reaches_the_end() -> None:
    ledger = CheckLedger(Meta())
    first = NOW - timedelta(days=2)
    ledger.record("local", "repository", _record(first, complete=False))
    ledger.record("local", "repository", _record(NOW - timedelta(days=1), complete=False))
    assert ledger.last_success("local", "repository") is None
    assert ledger.pass_started("local", "repository") == first - timedelta(seconds=60)
    ledger.record("local", "repository", _record(NOW))
    assert ledger.last_success("local", "repository") == NOW
    assert ledger.pass_started("local", "repository") is None


def test_damage_stays_until_a_later_clean_complete_pass() -> None:
    ledger = CheckLedger(Meta())
    ledger.record("disque-a", "repository", _record(NOW - timedelta(days=1)))
    found = _record(NOW, ok=False, complete=False, damage=True)
    ledger.record("disque-a", "repository", found)
    # A clean slice afterwards is no proof: the damaged segment is still there.
    ledger.record("disque-a", "repository", _record(NOW + timedelta(days=1), complete=False))
    assert ledger.damage("disque-a", "repository") == found
    assert ledger.last_success("disque-a", "repository") == NOW - timedelta(days=1)
    # The end of that pass is no proof either: it began with the damaged slice.
    ledger.record("disque-a", "repository", _record(NOW + timedelta(days=2)))
    assert ledger.damage("disque-a", "repository") == found
    ledger.record("disque-a", "repository", _record(NOW + timedelta(days=3)))
    assert ledger.damage("disque-a", "repository") is None


def test_a_pass_with_a_damaged_slice_is_no_success_even_if_its_last_slice_is_clean() -> None:
    ledger = CheckLedger(Meta())
    ledger.record("local", "repository", _record(NOW, ok=False, complete=False, damage=True))
    ledger.record("local", "repository", _record(NOW + timedelta(days=1)))
    assert ledger.last_success("local", "repository") is None
    assert ledger.damage("local", "repository") is not None
    # The next pass, clean from its first slice to its last, is one.
    ledger.record("local", "repository", _record(NOW + timedelta(days=2), complete=False))
    ledger.record("local", "repository", _record(NOW + timedelta(days=3)))
    assert ledger.last_success("local", "repository") == NOW + timedelta(days=3)
    assert ledger.damage("local", "repository") is None


def test_a_pass_that_ended_on_damage_starts_again() -> None:
    ledger = CheckLedger(Meta())
    ledger.record("local", "repository", _record(NOW - timedelta(days=1), complete=False))
    ledger.record("local", "repository", _record(NOW, ok=False, damage=True))
    assert ledger.pass_started("local", "repository") is None
    assert ledger.last_success("local", "repository") is None


def test_verified_archives_belong_to_the_pass_under_way() -> None:
    ledger = CheckLedger(Meta())
    ledger.add_verified("disque-a", "a1", NOW)
    ledger.add_verified("disque-a", "a2", NOW)
    assert ledger.verified("disque-a") == {"a1", "a2"}
    assert ledger.pass_started("disque-a", "data") == NOW
    ledger.record("disque-a", "data", _record(NOW))
    assert ledger.verified("disque-a") == frozenset()


def test_an_unreadable_value_reads_as_nothing_recorded() -> None:
    meta = Meta()
    meta.values[ledger_key("local", "data")] = "{not json"
    meta.values[ledger_key("local", "archives")] = '{"last": {"at": "yesterday"}}'
    ledger = CheckLedger(meta)
    assert ledger.last_attempt("local", "data") is None
    assert ledger.last_attempt("local", "archives") is None
    ledger.record("local", "data", _record(NOW))
    assert ledger.last_success("local", "data") == NOW


def test_the_kinds_each_target_gets() -> None:
    assert kinds_for("local") == ("repository", "archives", "data")
    assert kinds_for("offsite") == ("archives",)  # its host reads its segments
    assert kinds_for("usb") == ("repository", "data")


# --- what a run found ----------------------------------------------------------------


def test_a_slice_that_ran_out_of_time_is_sound_but_incomplete() -> None:
    logs = [info("finished partial segment check, last segment checked is 12")]
    found = check_outcome.from_run("local", "local", "repository", 0, logs, partial=True)
    assert (found.ok, found.complete, found.damage, found.error) == (True, False, False, None)


def test_a_slice_that_read_the_last_segment_completes_the_pass() -> None:
    logs = [info("finished segment check at segment 40")]
    found = check_outcome.from_run("local", "local", "repository", 0, logs, partial=True)
    assert found.ok and found.complete


def test_a_crc_error_names_the_target_and_what_to_do() -> None:
    logs = [
        error("Data integrity error: Segment entry checksum mismatch [segment 3, offset 1234]"),
        error("Finished partial repository check, errors found."),
    ]
    found = check_outcome.from_run("local", "local", "repository", 1, logs, partial=True)
    assert not found.ok and found.damage
    assert found.error is not None
    assert "repository check (segments read, CRC) of local found damage" in found.error
    assert "checksum mismatch [segment 3" in found.error
    assert "call support" in found.error and "docs/repair.md" in found.error


def test_damage_on_a_disk_asks_to_replace_it() -> None:
    found = check_outcome.from_run("disque-a", "usb", "data", 1, [error("chunk 00ff: bad")])
    assert found.error is not None and "replace this disk" in found.error


def test_the_archive_being_analysed_is_named() -> None:
    logs = [
        info("Analyzing archive cabinet-2026-11-30T01:30:00 (1/2)"),
        info("Analyzing archive cabinet-2026-12-01T01:30:00 (2/2)"),
        error("cabinet-2026-12-01T01:30:00: srv/a\x1b]0;x: New missing file chunk detected"),
    ]
    found = check_outcome.from_run("local", "local", "archives", 1, logs)
    assert found.archive == "cabinet-2026-12-01T01:30:00"
    assert found.error is not None
    assert "in archive cabinet-2026-12-01T01:30:00" in found.error
    assert "\x1b" not in found.error and "\\x1b" in found.error


def test_borg_s_long_words_are_cut() -> None:
    found = check_outcome.from_run("local", "local", "data", 1, [error("x" * 5000)])
    assert found.error is not None and len(found.error) < 1000


def test_a_check_that_could_not_run_is_no_damage() -> None:
    lock = BorgLockTimeout("Failed to create/acquire the lock", rc=73, hint="another borg")
    found = check_outcome.from_error("local", "local", "archives", lock)
    assert not found.ok and not found.damage
    assert found.error is not None and "could not run" in found.error


def test_an_integrity_error_is_damage_in_the_archive_read() -> None:
    broken = BorgIntegrityError("Data integrity error: chunk 00ff", rc=90)
    found = check_outcome.from_error("disque-a", "usb", "data", broken, archive="a1")
    assert found.damage and found.archive == "a1"


# --- the data pass -------------------------------------------------------------------


def test_the_data_pass_verifies_the_newest_archives_first_and_skips_checkpoints() -> None:
    archives = [
        Archive(NOW - timedelta(days=2), "a1"),
        Archive(NOW, "a3"),
        Archive(NOW - timedelta(days=1), "a2"),
        Archive(NOW, "a4.checkpoint"),
    ]
    assert to_verify(archives, {"a2"}) == ["a3", "a1"]
    assert to_verify(archives, {"a1", "a2", "a3"}) == []


def test_archives_of_the_same_second_go_by_name_the_later_first() -> None:
    """borg lists times to the second: two archives made within one (a test, a catch-up)."""
    same = [
        Archive(NOW, "cabinet-2026-12-04T01:30:00"),
        Archive(NOW, "cabinet-2026-12-05T01:30:00"),
    ]
    assert to_verify(same, set()) == ["cabinet-2026-12-05T01:30:00", "cabinet-2026-12-04T01:30:00"]
    assert to_verify(list(reversed(same)), set())[0] == "cabinet-2026-12-05T01:30:00"


# --- check_at with a scripted borg ---------------------------------------------------


class CheckingBorg(FakeBorg):
    """FakeBorg whose checks and dry-run extracts answer as scripted, in turn.

    ``answers`` by command word: each a (rc, logs) or an error to raise. Each
    extract moves ``clock`` on by ``extract_takes``, as reading an archive takes time.
    """

    def __init__(
        self,
        answers: Mapping[str, Sequence[tuple[int, Sequence[LogRecord]] | BaseException]],
        clock: Clock | None = None,
        extract_takes: timedelta = timedelta(0),
    ) -> None:
        super().__init__()
        self.answers = {k: list(v) for k, v in answers.items()}
        self.clock = clock
        self.extract_takes = extract_takes

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
        extra_env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> BorgResult:
        if argv[0] not in ("check", "extract"):
            return await super().run(argv, on_progress=on_progress, cwd=cwd)
        self.calls.append(tuple(argv))
        if argv[0] == "extract" and self.clock is not None:
            self.clock.advance(self.extract_takes)
        answer = self.answers[argv[0]].pop(0) if self.answers.get(argv[0]) else (0, ())
        if isinstance(answer, BaseException):
            raise answer
        rc, logs = answer
        return BorgResult(tuple(argv), rc, "", tuple(logs), (), 0.1)


def _services(tmp_path: Path, borg: FakeBorg) -> Services:
    state = State.open(tmp_path / "s.db", logger=LOG, now=NOW)
    return Services(config(tmp_path, LOCAL), state, borg, Clock(NOW), LOG)


def test_a_rolling_slice_is_recorded_as_part_of_a_pass(tmp_path: Path) -> None:
    slice_ = (0, [info("finished partial segment check, last segment checked is 3")])
    borg = CheckingBorg({"check": [slice_]})
    services = _services(tmp_path, borg)
    record = asyncio.run(check_at(services, "local", "local", "/r", "repository", budget=600))
    assert borg.calls == [("check", "--info", "--repository-only", "--max-duration=600", "/r")]
    assert record.ok and not record.complete
    assert CheckLedger(services.state).last_success("local", "repository") is None


def test_damage_found_is_recorded_and_returned_not_raised(tmp_path: Path) -> None:
    found = (1, [error("Segment entry checksum mismatch [segment 3, offset 8]")])
    services = _services(tmp_path, CheckingBorg({"check": [found]}))
    record = asyncio.run(check_at(services, "local", "local", "/r", "archives", budget=None))
    assert not record.ok and record.damage
    ledger = CheckLedger(services.state)
    assert ledger.last_attempt("local", "archives") == record
    assert ledger.damage("local", "archives") == record


def test_a_check_that_cannot_run_is_recorded_then_raised(tmp_path: Path) -> None:
    lock = BorgLockTimeout("lock", rc=73)
    services = _services(tmp_path, CheckingBorg({"check": [lock]}))
    with pytest.raises(BorgLockTimeout):
        asyncio.run(check_at(services, "local", "local", "/r", "data", budget=None))
    record = CheckLedger(services.state).last_attempt("local", "data")
    assert record is not None and not record.ok and not record.damage


def test_a_cancelled_check_is_an_unfinished_pass(tmp_path: Path) -> None:
    services = _services(tmp_path, CheckingBorg({"check": [asyncio.CancelledError()]}))
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(check_at(services, "local", "local", "/r", "repository", budget=60))
    record = CheckLedger(services.state).last_attempt("local", "repository")
    assert record is not None and record.ok and not record.complete


def test_an_unbudgeted_data_check_is_one_verify_data_run(tmp_path: Path) -> None:
    borg = CheckingBorg({})
    services = _services(tmp_path, borg)
    record = asyncio.run(check_at(services, "local", "local", "/r", "data", budget=None))
    assert borg.calls == [("check", "--info", "--verify-data", "/r")]
    assert record.ok and record.complete


def test_a_budgeted_data_check_goes_archive_by_archive_and_resumes(tmp_path: Path) -> None:
    borg = CheckingBorg({})
    borg.archives = [("a1", "2026-11-29T01:30:00"), ("a2", "2026-11-30T01:30:00")]
    services = _services(tmp_path, borg)
    ledger = CheckLedger(services.state)
    ledger.add_verified("disque-a", "a2", NOW)  # the last plug verified the newest one
    record = asyncio.run(check_at(services, "disque-a", "usb", "/d", "data", budget=600))
    extracts = [c for c in borg.calls if c[0] == "extract"]
    assert extracts == [("extract", "--dry-run", "/d::a1")]
    assert record.ok and record.complete
    assert ledger.last_success("disque-a", "data") == NOW


def test_a_data_check_out_of_budget_leaves_the_rest_for_next_time(tmp_path: Path) -> None:
    clock = Clock(NOW)
    # Reading the first archive spends the whole budget.
    borg = CheckingBorg({}, clock, extract_takes=timedelta(seconds=700))
    borg.archives = [("a1", "2026-11-29T01:30:00"), ("a2", "2026-11-30T01:30:00")]
    state = State.open(tmp_path / "s.db", logger=LOG, now=NOW)
    services = Services(config(tmp_path, LOCAL), state, borg, clock, LOG)
    record = asyncio.run(check_at(services, "disque-a", "usb", "/d", "data", budget=600))
    assert [c for c in borg.calls if c[0] == "extract"] == [("extract", "--dry-run", "/d::a2")]
    assert record.ok and not record.complete
    assert CheckLedger(state).verified("disque-a") == {"a2"}


def test_a_damaged_archive_is_named_and_not_counted_verified(tmp_path: Path) -> None:
    broken = BorgIntegrityError("Data integrity error: chunk 00ff", rc=90)
    borg = CheckingBorg({"extract": [broken]})
    borg.archives = [("a1", "2026-11-29T01:30:00")]
    services = _services(tmp_path, borg)
    record = asyncio.run(check_at(services, "disque-a", "usb", "/d", "data", budget=600))
    assert record.damage and record.archive == "a1"
    assert CheckLedger(services.state).verified("disque-a") == frozenset()


def test_check_target_refuses_a_disk_and_the_repository_check_of_offsite(tmp_path: Path) -> None:
    services = _services(tmp_path, CheckingBorg({}))
    services.state.enroll_disk("disque-a", "uuid", REPO_ID, NOW)
    with pytest.raises(UsageError, match="at its plug"):
        asyncio.run(check_target(services, "disque-a", "repository", budget=None))
    with pytest.raises(UsageError, match="no target"):
        asyncio.run(check_target(services, "nowhere", "archives", budget=None))


def test_the_repository_check_of_an_offsite_target_is_its_host_s(tmp_path: Path) -> None:
    hds = OffsiteTarget("hds", "coffre", "hds.example", 22, "/depots/cabinet")
    state = State.open(tmp_path / "s.db", logger=LOG, now=NOW)
    services = Services(config(tmp_path, LOCAL, hds), state, CheckingBorg({}), Clock(NOW), LOG)
    with pytest.raises(UsageError, match="does not run the repository check on hds"):
        asyncio.run(check_target(services, "hds", "repository", budget=None))


def test_the_journal_line_of_damage_names_no_file_in_its_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    found = (1, [error("cabinet-x: srv/share/Dupont.pdf: New missing file chunk detected")])
    services = _services(tmp_path, CheckingBorg({"check": [found]}))
    with caplog.at_level(logging.INFO):
        asyncio.run(check_at(services, "local", "local", "/r", "archives", budget=None))
    (line,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "found damage" in line.getMessage()
    fields = {k: v for k, v in vars(line).items() if k.startswith("COFFRE_")}
    assert fields == {
        "COFFRE_TARGET": "local",
        "COFFRE_CHECK_KIND": "archives",
        "COFFRE_CHECK_OK": 0,
    }
