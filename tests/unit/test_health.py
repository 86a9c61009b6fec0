"""Health: from facts to the one value the lights show, with its reasons (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coffre.core.health import (
    LATE,
    SAFE_HOLD,
    CheckFacts,
    DiskFacts,
    Facts,
    Health,
    JobFacts,
    TargetFacts,
    TargetKind,
    Verdict,
    assess,
)
from coffre.core.outcomes import BackupWarnings, Reason
from coffre.storage.state import FAILED, INTERRUPTED, SUCCESS, WARNING, RunRecord, RunStats

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


def run(
    target: str,
    ended: datetime,
    *,
    kind: str = "backup",
    outcome: str = SUCCESS,
    error: str | None = None,
) -> RunRecord:
    return RunRecord(
        id=1,
        target=target,
        kind=kind,
        started_at=ended - timedelta(minutes=5),
        finished_at=ended,
        outcome=outcome,
        error_kind=error,
        error_message=None,
        stats=None,
    )


def target(
    name: str = "local",
    kind: TargetKind = "local",
    *,
    success: timedelta | None = timedelta(hours=8),
    failed: str | None = None,
    slots: dict[str, bool] | None = None,
    oldest: datetime | None = None,
    **runs: object,
) -> TargetFacts:
    """A target whose last success ended ``success`` ago; ``failed``: the last attempt's error."""
    last_success = None if success is None else run(name, NOW - success)
    attempt = last_success
    if failed is not None:
        attempt = run(name, NOW - timedelta(hours=1), outcome=FAILED, error=failed)
    return TargetFacts(
        name=name,
        kind=kind,
        last_success=last_success,
        last_attempt=attempt,
        slots=slots or {},
        oldest_archive=oldest,
        **runs,  # type: ignore[arg-type]
    )


def disk(name: str = "disque-a", **overrides: object) -> DiskFacts:
    values: dict[str, object] = {
        "name": name,
        "present": False,
        "safe_to_remove": False,
        "last_seen": NOW - timedelta(days=1),
        "free_bytes": 10**12,
        "swap_due": False,
        "missing": False,
    }
    values.update(overrides)
    return DiskFacts(**values)  # type: ignore[arg-type]


def facts(
    *targets: TargetFacts, disks: tuple[DiskFacts, ...] = (), main: JobFacts | None = None
) -> Facts:
    return Facts(now=NOW, tz=PARIS, targets=targets, disks=disks, main_job=main)


def test_all_good_is_ok_without_reasons() -> None:
    verdict = assess(facts(target(), target("hds", "offsite")))
    assert verdict.health is Health.OK
    assert verdict.reasons == ()


def test_a_new_box_waiting_for_its_first_night_is_ok() -> None:
    new = TargetFacts(name="local", kind="local")
    assert assess(facts(new, TargetFacts(name="hds", kind="offsite"))).health is Health.OK


def test_a_job_in_the_main_lane_is_working_whatever_else_is_wrong() -> None:
    verdict = assess(
        facts(
            target(failed="no_space"),
            disks=(disk(swap_due=True),),
            main=JobFacts("disk", ("disque-a",), 0.4),
        )
    )
    assert verdict.health is Health.WORKING
    assert verdict.reasons[0] == "disk of disque-a running"
    assert "last backup of local failed (no_space)" in verdict.reasons


def test_an_upload_alone_is_not_working() -> None:
    upload = Facts(now=NOW, tz=PARIS, targets=(target(),), network_job=JobFacts("backup", ("hds",)))
    assert assess(upload).health is Health.OK


@pytest.mark.parametrize("kind", ["local", "usb"])
def test_a_failed_backup_is_a_failure(kind: TargetKind) -> None:
    verdict = assess(facts(target("t", kind, failed="io_error")))
    assert verdict.health is Health.FAILURE
    assert verdict.reasons == ("last backup of t failed (io_error)",)


def test_an_interrupted_run_is_a_failure_until_a_run_succeeds() -> None:
    cut = run("local", NOW - timedelta(hours=1), outcome=INTERRUPTED, error="interrupted")
    stopped = TargetFacts(name="local", kind="local", last_success=None, last_attempt=cut)
    assert assess(facts(stopped)).health is Health.FAILURE


def test_a_failed_prune_or_check_is_a_failure() -> None:
    pruned = target(last_prune=run("local", NOW, kind="prune", outcome=FAILED, error="borg"))
    checked = target(checks=(CheckFacts("data", NOW, False, None, NOW, "damage"),))
    assert assess(facts(pruned)).reasons == ("last prune of local failed (borg)",)
    assert assess(facts(checked)).reasons == (
        f"the data check of local found damage on {NOW:%Y-%m-%d}",
    )


def test_a_local_target_without_success_for_26_hours_is_a_failure() -> None:
    late = target(success=LATE + timedelta(minutes=1))
    verdict = assess(facts(late))
    assert verdict.health is Health.FAILURE
    assert verdict.reasons == ("no successful backup of local for more than 26 h",)
    assert assess(facts(target(success=LATE - timedelta(minutes=1)))).health is Health.OK


def test_an_offsite_cut_by_the_network_waits_for_lateness_and_then_is_attention() -> None:
    cut = target("hds", "offsite", success=timedelta(hours=20), failed="unreachable")
    assert assess(facts(cut)).health is Health.OK
    late = target("hds", "offsite", success=timedelta(hours=30), failed="unreachable")
    verdict = assess(facts(late))
    assert verdict.health is Health.ATTENTION
    assert verdict.reasons == ("offsite copy hds late: no success for 26 h",)


def test_an_offsite_refusal_no_retry_can_fix_is_a_failure() -> None:
    refused = target("hds", "offsite", failed="host_key_mismatch")
    assert assess(facts(refused)).health is Health.FAILURE


def test_an_offsite_first_upload_still_going_is_not_late() -> None:
    uploading = TargetFacts(name="hds", kind="offsite")
    assert assess(facts(uploading)).health is Health.OK
    cut_often = target("hds", "offsite", success=None, failed="connection_closed")
    verdict = assess(facts(cut_often))
    assert verdict.health is Health.ATTENTION
    assert verdict.reasons == ("offsite copy hds not made yet: no attempt succeeded",)


def test_a_missing_past_month_is_a_failure_only_where_history_reaches_it() -> None:
    slots = {"J": True, "J-1": True, "J-2": True, "M": True, "M-1": False}
    old = target(slots=slots, oldest=datetime(2026, 9, 3, tzinfo=UTC))
    verdict = assess(facts(old))
    assert verdict.health is Health.FAILURE
    assert verdict.reasons == ("restore point M-1 of local is missing",)
    # A repository begun this month cannot hold last month's point.
    new = target(slots=slots, oldest=datetime(2026, 11, 2, tzinfo=UTC))
    assert assess(facts(new)).health is Health.OK
    # Nor is a disk's (it rotates) looked at.
    rotating = target("disque-a", "usb", slots=slots, oldest=datetime(2026, 1, 1, tzinfo=UTC))
    assert assess(facts(rotating)).health is Health.OK


def test_missing_days_and_this_month_do_not_light_red_by_themselves() -> None:
    # 00:30 on the 1st, before the nightly: J and M are not there yet.
    slots = {"J": False, "J-1": True, "J-2": False, "M": False, "M-1": True}
    assert assess(facts(target(slots=slots, oldest=datetime(2026, 1, 1, tzinfo=UTC)))).health is (
        Health.OK
    )


def test_a_disk_just_powered_off_is_safe_to_remove_for_a_while() -> None:
    done = disk(safe_to_remove=True, last_seen=NOW - timedelta(minutes=2))
    verdict = assess(facts(target(), disks=(done,)))
    assert verdict.health is Health.SAFE_TO_REMOVE
    assert verdict.reasons == ("disk disque-a may be removed",)
    stale = disk(safe_to_remove=True, last_seen=NOW - SAFE_HOLD - timedelta(seconds=1))
    assert assess(facts(target(), disks=(stale,))).health is Health.OK


def test_safe_to_remove_outranks_attention_and_failure_outranks_it() -> None:
    done = disk(safe_to_remove=True, last_seen=NOW)
    swap = disk("disque-b", swap_due=True)
    assert assess(facts(target(), disks=(done, swap))).health is Health.SAFE_TO_REMOVE
    verdict = assess(facts(target(failed="borg"), disks=(done, swap)))
    assert verdict.health is Health.FAILURE
    assert verdict.reasons == (
        "last backup of local failed (borg)",
        "disk disque-a may be removed",
        "disk disque-b is due for a swap",
    )


def test_swap_due_and_missing_disks_are_attention() -> None:
    verdict = assess(
        facts(
            target(),
            disks=(disk(swap_due=True), disk("disque-b", missing=True, days_since_seen=41.2)),
        )
    )
    assert verdict.health is Health.ATTENTION
    assert verdict.reasons == (
        "disk disque-a is due for a swap",
        "disk disque-b not seen for 41 days",
    )


# --- backups that ended with borg warnings ----------------------------------------

PARTIAL = BackupWarnings.of({Reason.IO_ERROR: 2, Reason.VANISHED: 1})


def warned(
    name: str = "local", kind: TargetKind = "local", ago: timedelta = LATE / 4
) -> TargetFacts:
    """A target whose last backup, ``ago``, made its archive with warnings."""
    stats = RunStats("cabinet-2026-11-18T01:30:00", 10, 5, 1, 40, PARTIAL)
    last = replace(run(name, NOW - ago, outcome=WARNING), stats=stats)
    return TargetFacts(name, kind, last_success=last, last_attempt=last, last_stats=stats)


@pytest.mark.parametrize("kind", ["local", "offsite", "usb"])
def test_a_backup_with_warnings_is_attention_with_its_counts_not_a_failure(
    kind: TargetKind,
) -> None:
    verdict = assess(facts(warned("t", kind)))
    assert verdict.health is Health.ATTENTION
    assert verdict.reasons == (
        "last backup of t ended with warnings: "
        "3 file(s) not backed up: 2 I/O error, 1 vanished during the backup",
    )


def test_a_backup_with_warnings_counts_as_made_for_lateness() -> None:
    # Its archive exists: an old one is late like any other, a recent one is not.
    assert assess(facts(warned(ago=LATE / 2))).health is Health.ATTENTION
    verdict = assess(facts(warned(ago=LATE + timedelta(hours=1))))
    assert verdict.health is Health.FAILURE
    assert "no successful backup of local for more than 26 h" in verdict.reasons


def test_a_failure_after_warnings_is_a_failure_and_still_says_the_archive_lacks_files() -> None:
    partial = warned()
    failed = run("local", NOW - timedelta(minutes=30), outcome=FAILED, error="borg")
    verdict = assess(facts(replace(partial, last_attempt=failed)))
    assert verdict.health is Health.FAILURE
    assert verdict.reasons[0] == "last backup of local failed (borg)"
    assert any("ended with warnings" in reason for reason in verdict.reasons)


def test_a_clean_archive_after_warnings_is_ok_again() -> None:
    clean = RunStats("cabinet-2026-11-18T09:00:00", 10, 5, 1, 43)
    last = replace(run("local", NOW - timedelta(minutes=5)), stats=clean)
    settled = replace(warned(), last_success=last, last_attempt=last, last_stats=clean)
    assert assess(facts(settled)) == Verdict(Health.OK)


def test_failure_and_safe_to_remove_outrank_warnings() -> None:
    done = disk(safe_to_remove=True, last_seen=NOW)
    assert assess(facts(warned(), disks=(done,))).health is Health.SAFE_TO_REMOVE
    assert assess(facts(warned(), target("b", failed="borg"))).health is Health.FAILURE
