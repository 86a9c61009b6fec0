"""The disk job: a plugged USB disk is backed up, pruned, checked, and powered off.

Run on plug and in every nightly run for each present disk. The disk is
mounted only inside the job; after it the device is powered off and the disk
is "safe to remove". A disk pulled out mid-job makes borg fail: the job ends
failed, the mount is cleaned up, and the next plug recovers (a repository
check first; borg itself clears a stale lock of this host).

The checks (``coffre.jobs.checking``, recorded in the check ledger): after
the backup and retention, a slice of the rolling repository check
(``usb.check_max_duration`` seconds) at every plug, and the data check when
it is due (``checks.data_every_days`` since the last complete pass, or a pass
under way), archive by archive within ``checks.disk_data_budget`` seconds,
the next plug going on with the archives left. Damage found does not fail
the job (the backup is made; the disk is still the rotation's best copy
until its replacement comes): the check's sentence goes to the job's
details and the journal, and the disk shows the attention light and asks to
be replaced, at this plug and the next ones, until a complete pass of that
kind finds it sound again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from coffre.borg.records import Progress
from coffre.consistency.read_point import SharedPoint
from coffre.core.errors import (
    BorgIOError,
    BorgNoSpace,
    BorgRepositoryMissing,
    CoffreError,
    DiskError,
    RepositoryIdMismatch,
)
from coffre.core.job_events import OutcomeDetails
from coffre.core.model import Archive
from coffre.jobs.archive_list import known_archives
from coffre.jobs.backup import create_archive
from coffre.jobs.checking import check_at
from coffre.jobs.drilling import run_drill
from coffre.jobs.pruning import apply_retention
from coffre.jobs.services import Services
from coffre.proof.check_ledger import CheckKind, CheckLedger, CheckRecord
from coffre.proof.drill_ledger import DrillLedger, DrillRecord
from coffre.storage.state import COMPLETED, DiskRecord, RunStats
from coffre.targets.base import RemovableDisk

PowerOff = Callable[[str, str | None], Awaitable[None]]


def has_archive_of_today(archives: list[Archive], prefix: str, now: datetime, tz: ZoneInfo) -> bool:
    """Pure: whether one of our complete archives was made on today's local date."""
    today = now.astimezone(tz).date()
    return any(
        a.name.startswith(prefix + "-")
        and not a.is_checkpoint
        and a.time.astimezone(tz).date() == today
        for a in archives
    )


async def run_disk_job(
    services: Services,
    repo: RemovableDisk,
    expected_id: str,
    *,
    power_off: PowerOff,
    on_progress: Callable[[Progress], None] | None = None,
    force_create: bool = False,
) -> tuple[RunStats | None, OutcomeDetails]:
    """Back up, prune and check the disk of ``repo``, then power it off.

    Returns the new archive's stats (None when the disk already had today's
    archive and ``force_create`` is not set) and details for the job's
    result. Raises DiskAbsent, DiskError, RepositoryIdMismatch and BorgError
    subclasses (BorgNoSpace: "disk full", after retention and one retry).
    Whatever happens, the disk is unmounted; it is powered off when it could
    be unmounted cleanly.
    """
    state = services.state
    disk = repo.disk()
    # The finished one: the run of this very job is already recorded, running.
    previous = state.last_finished_run(repo.name, "backup")
    # One with warnings ended well: borg made its archive and left the repository sound.
    recovering = previous is not None and previous.outcome not in COMPLETED
    stats: RunStats | None = None
    details: OutcomeDetails = {"recovered": recovering}
    failure: CoffreError | None = None
    try:
        async with repo.opened(expected_id) as location:
            stats = await _on_the_disk(
                services,
                repo.name,
                location,
                expected_id,
                details,
                recovering=recovering,
                force_create=force_create,
                on_progress=on_progress,
            )
    except CoffreError as error:
        failure = error
    safe = await release_disk(services, repo, disk, failure, power_off)
    details["safe_to_remove"] = safe
    if failure is not None:
        raise failure
    if stats is not None:
        details.update(
            {
                "archive": stats.archive,
                "nfiles": stats.nfiles,
                "original_size": stats.original_bytes,
                "deduplicated_size": stats.deduplicated_bytes,
            }
        )
    return stats, details


async def _on_the_disk(
    services: Services,
    name: str,
    location: str,
    expected_id: str,
    details: OutcomeDetails,
    *,
    recovering: bool,
    force_create: bool,
    on_progress: Callable[[Progress], None] | None,
) -> RunStats | None:
    """The disk job's borg steps on the mounted disk; what was done goes into ``details``.

    A check first when ``recovering``; a new archive unless today's is there
    (``force_create`` makes one anyway); retention; a time-boxed check. Returns
    the new archive's stats (None: skipped). Raises what borg raises.
    """
    config = services.config
    _plead_if_damaged(services, name, details)
    if recovering:
        # The last job on this disk did not end well (pulled out, full, killed).
        await _check(services, name, location, "repository", None, details)
    known = await known_archives(services, name, location)
    tz = config.schedule.timezone
    prefix, now = config.retention.prefix, services.clock.now()
    stats: RunStats | None = None
    if not force_create and has_archive_of_today(known, prefix, now, tz):
        details["skipped"] = "this disk already has today's archive"
    else:
        stats = await _create_with_one_retry(services, name, location, expected_id, on_progress)
    pruned = await apply_retention(services, name, location)
    details["deleted"] = [a.name for a in pruned.deleted]
    if pruned.frozen_by:
        details["pruning_frozen"] = [i.kind for i in pruned.frozen_by]
    await _check(services, name, location, "repository", config.usb.check_max_duration, details)
    if data_check_due(CheckLedger(services.state), name, now, config.checks.data_every_days):
        await _check(services, name, location, "data", config.checks.disk_data_budget, details)
    if drill_due(DrillLedger(services.state).last(name), now, config.drills.every_days):
        await _drill(services, name, location, details)
    return stats


def drill_due(last: DrillRecord | None, now: datetime, every_days: int) -> bool:
    """Whether a disk's restore drill runs at this plug: none yet, or the last one is old.

    A disk is away most days: the schedule cannot drill it, its plug does.
    """
    return last is None or now - last.at >= timedelta(days=every_days)


async def _drill(services: Services, name: str, location: str, details: OutcomeDetails) -> None:
    """The disk's restore drill at its plug, as the schedule's (``coffre.jobs.drilling``).

    What it found is in ``details["drill"]``, its record in the drill ledger
    (metrics, the restore estimate), damage in the journal; a drill that
    fails never fails the backup made just before. Raises CancelledError only.
    """
    try:
        report = await run_drill(services, name, location, person=None)
    except CoffreError as error:
        services.logger.error("disk %s: the restore drill at its plug failed: %s", name, error)
        details["drill"] = f"failed: {error.message}"
        return
    details["drill"] = report.summary()


def data_check_due(ledger: CheckLedger, disk: str, now: datetime, every_days: int) -> bool:
    """Pure but for the ledger's reads: whether ``disk``'s data check runs at this plug.

    Due when no complete pass is younger than ``every_days``, or while a pass is
    under way (the archives left by the last plug's budget).
    """
    if ledger.pass_started(disk, "data") is not None:
        return True
    last = ledger.last_success(disk, "data")
    return last is None or now - last >= timedelta(days=every_days)


def _plead_if_damaged(services: Services, name: str, details: OutcomeDetails) -> None:
    """Say at the plug of a disk whose checks found damage that it must be replaced."""
    ledger = CheckLedger(services.state)
    found = [r for r in (ledger.damage(name, k) for k in ("repository", "data")) if r]
    if not found:
        return
    latest = max(found, key=lambda r: r.at)
    plea = (
        f"disk {name} is damaged (a check found damage on {latest.at:%Y-%m-%d}): replace it "
        "with a new disk of the rotation, see docs/repair.md"
    )
    details["replace_disk"] = plea
    services.logger.error("%s", plea, extra={"COFFRE_TARGET": name})


async def release_disk(
    services: Services,
    repo: RemovableDisk,
    disk: DiskRecord,
    failure: CoffreError | None,
    power_off: PowerOff,
) -> bool:
    """After a job on ``disk`` (unmounted already): power it off if that is safe; True if done.

    Power off only a healthy disk of ours: one that failed with I/O errors
    was pulled out or is dying, and must not be announced as safe to
    remove; one that is not ours (impostor, wiped) is left untouched.
    """
    safe = False
    untouchable = (DiskError, BorgIOError, RepositoryIdMismatch, BorgRepositoryMissing)
    if not isinstance(failure, untouchable) and disk.devnode is not None:
        try:
            await power_off(disk.devnode, disk.usb_device)
            safe = True
        except DiskError as error:
            services.logger.warning("disk %s: %s", repo.name, error)
    services.state.disk_done(
        repo.name, safe=safe, free_bytes=repo.free_bytes, at=services.clock.now()
    )
    return safe


async def _check(
    services: Services,
    target: str,
    location: str,
    kind: CheckKind,
    budget: float | None,
    details: OutcomeDetails,
) -> CheckRecord:
    """One check of the disk (``coffre.jobs.checking.check_at``), said in ``details``.

    Damage found is returned, and the disk asks to be replaced; raises as
    borg does when the check could not run (the disk pulled out...).
    """
    record = await check_at(services, target, "usb", location, kind, budget=budget)
    said = record.error or f"{kind} check: nothing wrong" + ("" if record.complete else " so far")
    details.setdefault("checks", []).append(said)
    if record.damage:
        details["replace_disk"] = (
            f"disk {target} is damaged: replace it with a new disk of the rotation, "
            "see docs/repair.md"
        )
    return record


async def _create_with_one_retry(
    services: Services,
    target: str,
    location: str,
    expected_id: str,
    on_progress: Callable[[Progress], None] | None,
) -> RunStats:
    """borg create on the disk; when it is full, retention, compaction and one more try,
    reading the same share as the first (one read point). Raises BorgNoSpace."""
    point = SharedPoint()

    async def create() -> RunStats:
        return await create_archive(
            services,
            target,
            location,
            expected_id,
            on_progress=on_progress,
            point=point,
            # Someone waits at the box to swap the disk: a short quiet wait.
            quiet_bound=services.config.quiescence.disk_max_wait_seconds,
        )

    try:
        return await _create_then_retry(services, target, location, create)
    finally:
        point.close()


async def _create_then_retry(
    services: Services, target: str, location: str, create: Callable[[], Awaitable[RunStats]]
) -> RunStats:
    try:
        return await create()
    except BorgNoSpace:
        services.logger.warning(
            "disk %s is full: applying retention and compacting, then trying once more", target
        )
    pruned = await apply_retention(services, target, location, refresh=True, compact_now=True)
    if pruned.frozen_by:
        # Never delete to make room while an incident stands: the full disk is
        # shown (a failed backup, its alert), the archives on it stay.
        raise BorgNoSpace(
            f"disk {target} is full and pruning is frozen "
            f"({', '.join(i.kind for i in pruned.frozen_by)} incident): nothing was deleted",
            rc=2,
            hint="plug in another disk of the rotation; once support has cleared the "
            "incident (`coffre incident show`), retention makes room again",
        )
    try:
        return await create()
    except BorgNoSpace as error:
        raise BorgNoSpace(
            f"disk {target} is full: the backup does not fit even after retention",
            rc=error.rc,
            hint="use a larger disk, or enroll a new one; the archives already on it are intact",
        ) from error
