"""The jobs that read a repository for a person: restore, find, browse, key export.

Each runs on one target, in that target's lane, like any job: the daemon
owns disks and repositories. A USB disk that is not plugged in is waited
for (``restore.disk_wait``), mounted for the job and powered off after it.
These jobs are not runs in state (they would count as a target's failures
on the LEDs and in the metrics); the audit log records them instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from coffre.borg import argv
from coffre.borg.records import Progress
from coffre.core.clock import local_iso
from coffre.core.errors import BorgArchiveMissing, CoffreError, DestinationError, DiskError
from coffre.core.job_events import OutcomeDetails
from coffre.core.model import Archive, Item
from coffre.core.printable import controls_escaped
from coffre.core.restore_plan import matcher, newest_first, pick_archive, since_filter
from coffre.jobs.archive_list import known_archives, list_archives
from coffre.jobs.queue import Job
from coffre.jobs.services import Services
from coffre.storage.staging_mark import StagingMark
from coffre.support.restore import list_items, no_room, restore_archive
from coffre.targets.base import Repository
from coffre.targets.usb import devices
from coffre.targets.usb.job import PowerOff, release_disk

WaitPlugged = Callable[[str, float], Awaitable[None]]

#: Seconds the browse mount may take to appear before borg is given up on.
MOUNT_APPEAR_TIMEOUT = 60.0


@dataclass(frozen=True)
class ReadContext:
    """What a read job needs besides the target: services, the disk waiter, power-off."""

    services: Services
    wait_plugged: WaitPlugged
    power_off: PowerOff


@contextlib.asynccontextmanager
async def reachable(
    ctx: ReadContext, repo: Repository, expected_id: str, job: Job
) -> AsyncIterator[str]:
    """``repo`` opened for a read job; a USB disk is waited for and powered off after.

    Yields the location to give borg. Raises DiskAbsent when the disk is not
    plugged in within ``restore.disk_wait``, and what ``repo.opened`` raises.
    """
    removable = repo.as_disk()
    if removable is None:
        async with repo.opened(expected_id) as location:
            yield location
        return
    disk = ctx.services.state.disk(repo.name)
    if disk is None or not disk.present:
        wait = ctx.services.config.restore.disk_wait
        job.publish(
            {
                "event": "waiting",
                "target": repo.name,
                "message": f"plug in disk {repo.name} (waiting up to {wait // 60} min)",
            }
        )
        await ctx.wait_plugged(repo.name, float(wait))
    disk = removable.disk()
    failure: CoffreError | None = None
    try:
        async with removable.opened(expected_id) as location:
            yield location
    except CoffreError as error:
        failure = error
        raise
    finally:
        safe = await release_disk(ctx.services, removable, disk, failure, ctx.power_off)
        job.publish({"event": "disk_released", "target": repo.name, "safe_to_remove": safe})


async def resolve_archive(
    services: Services,
    target: str,
    location: str,
    *,
    name: str | None,
    day: date | None,
) -> Archive:
    """The archive asked (by name, by day, or the latest) among ``target``'s archives.

    State's list is used when fresh; a name it does not know is looked up
    again with borg before it is refused. Raises BorgArchiveMissing.
    """
    config = services.config
    tz, prefix = config.schedule.timezone, config.retention.prefix
    archives = await known_archives(services, target, location)
    found = pick_archive(archives, prefix, name=name, day=day, tz=tz)
    if found is None and name is not None:
        archives = await list_archives(services, target, location)
        found = pick_archive(archives, prefix, name=name, day=day, tz=tz)
    if found is None:
        what = (
            f"archive {name}"
            if name is not None
            else f"archive of {day.isoformat()}"
            if day is not None
            else "archive"
        )
        raise BorgArchiveMissing(
            f"target {target} has no {what}",
            rc=0,
            hint=f"see `coffre archives --target {target}`",
        )
    return found


async def restore_job(
    ctx: ReadContext, repo: Repository, expected_id: str, job: Job
) -> OutcomeDetails:
    """The restore asked in ``job``'s options; returns what was written, where.

    The archive's time is ISO 8601 in the box's timezone.
    """
    services, options = ctx.services, job.request.options
    async with reachable(ctx, repo, expected_id, job) as location:
        archive = await resolve_archive(
            services, repo.name, location, name=options.archive, day=options.day
        )
        job.publish({"event": "archive", "target": repo.name, "archive": archive.name})
        try:
            report = await restore_archive(
                services.borg,
                location,
                archive.name,
                list(options.wanted),
                to=None if options.to is None else Path(options.to),
                overwrite=options.overwrite,
                mark=StagingMark.of_box(services.config.paths.state),
                on_progress=_progress(job, repo.name) if options.progress else None,
            )
        except OSError as exc:
            # exc.filename may be a name from the share: escaped (core.printable).
            where = controls_escaped(str(exc.filename or options.to or "the share"))
            if exc.errno == errno.ENOSPC:
                raise no_room(Path(where)) from exc
            raise DestinationError(
                f"cannot write the restore to {where}: {exc.strerror}",
                hint="restore into the share (the default) or --to a folder under it; "
                "the service may write nowhere else",
            ) from exc
    return {
        "archive": report.archive,
        "archive_time": local_iso(archive.time, services.config.schedule.timezone),
        "destinations": list(report.destinations),
        "written": list(report.written),
        "nfiles": report.nfiles,
        "nbytes": report.nbytes,
        "warnings": list(report.warnings),
    }


#: Seconds between two progress events of a restore (one per item would flood the CLI).
PROGRESS_EVERY = 0.25


def _progress(job: Job, target: str) -> Callable[[Progress], None]:
    """Count the items borg writes; tell the asker now and then (never the paths)."""
    written = 0
    last = 0.0

    def progress(p: Progress) -> None:
        nonlocal written, last
        if not p.message or p.finished:
            return
        written += 1
        job.counters = {"items": written}
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            job.publish({"event": "progress", "target": target, "items": written})

    return progress


async def find_job(
    ctx: ReadContext, repo: Repository, expected_id: str, job: Job
) -> OutcomeDetails:
    """The archives of ``repo`` holding paths that match the pattern, newest first.

    Times (the archives', the files') are ISO 8601 in the box's timezone.
    """
    services = ctx.services
    test = matcher(job.request.options.pattern)
    since = job.request.options.since
    limit = services.config.restore.find_max_results
    hits: list[tuple[Archive, Item]] = []
    total = 0
    async with reachable(ctx, repo, expected_id, job) as location:
        archives = since_filter(await known_archives(services, repo.name, location), since)
        for archive in archives:
            items = await list_items(services.borg, location, archive.name, ())
            found = [(archive, item) for item in items if test(item.path)]
            total += len(found)
            hits += found[: max(limit - len(hits), 0)]
    tz = services.config.schedule.timezone
    return {
        "archives_searched": len(archives),
        "total": total,
        "truncated": total > len(hits),
        "hits": [
            {
                "archive": archive.name,
                "archive_time": local_iso(archive.time, tz),
                "path": "/" + item.path,
                "type": item.kind,
                "size": item.size,
                "mtime": local_iso(item.mtime, tz),
            }
            for archive, item in newest_first(hits)
        ],
    }


async def key_export_job(
    ctx: ReadContext, repo: Repository, expected_id: str, job: Job
) -> OutcomeDetails:
    """``borg key export --paper`` of ``repo``; the export is recorded in state."""
    services = ctx.services
    async with reachable(ctx, repo, expected_id, job) as location:
        result = await services.borg.run(argv.key_export_paper(location))
    services.state.record_key_export(expected_id, services.clock.now())
    return {"paper": result.stdout, "repository_id": expected_id, "location": repo.location}


# --- browse --------------------------------------------------------------------


async def browse_job(
    ctx: ReadContext,
    repo: Repository,
    expected_id: str,
    job: Job,
    *,
    mountpoint: Path,
) -> OutcomeDetails:
    """Mount ``repo`` (or one archive) read-only at ``mountpoint`` until released or idle.

    Ends when ``job.released`` is set (the command ended), when nobody has used
    the mount for ``restore.browse_idle`` seconds, or after
    ``restore.browse_max`` seconds. Returns why it ended (``ended``) and how
    long it was mounted (``mounted_for``, seconds from the mount's appearance
    to its unmount; None if it never appeared). Raises what ``reachable`` and
    ``resolve_archive`` raise, and borg's error when the mount fails.
    """
    services = ctx.services
    settings = services.config.restore
    async with reachable(ctx, repo, expected_id, job) as location:
        day = job.request.options.day
        archive_name = job.request.options.archive
        if archive_name is None and day is not None:
            archive_name = (
                await resolve_archive(services, repo.name, location, name=None, day=day)
            ).name
        mountpoint.mkdir(parents=True, exist_ok=True, mode=0o700)
        mounted = asyncio.create_task(
            services.borg.run(argv.mount(location, archive_name, str(mountpoint)))
        )
        mounted_at: float | None = None
        why: str | None = None  # None: cut short (the daemon stops, an error)
        try:
            await _appeared(mountpoint, mounted)
            mounted_at = time.monotonic()
            job.publish({"event": "mounted", "path": str(mountpoint), "archive": archive_name})
            why = await _until_done(mountpoint, job, settings.browse_idle, settings.browse_max)
        finally:
            await _unmount(services, mountpoint, mounted)
            # From the mount's appearance, not from the stop: that is the
            # time support had the files in front of them.
            mounted_for = None if mounted_at is None else time.monotonic() - mounted_at
            if mounted_for is not None:
                services.logger.info(
                    "browse of %s: unmounted after %.1fs mounted (%s)",
                    repo.name,
                    mounted_for,
                    why or "cut short",
                )
    with contextlib.suppress(OSError):
        mountpoint.rmdir()
    return {
        "path": str(mountpoint),
        "archive": archive_name,
        "ended": why,
        "mounted_for": mounted_for,
    }


async def _appeared(mountpoint: Path, mounted: asyncio.Task[Any]) -> None:
    """Wait until borg's FUSE tree is mounted; raise borg's error if it gave up first."""
    # FUSE tells nobody when a mount is ready: look at the mount table.
    deadline = time.monotonic() + MOUNT_APPEAR_TIMEOUT
    while not devices.is_mounted(mountpoint):
        if mounted.done():
            mounted.result()  # raises borg's error
            raise DiskError(f"borg mount ended before {mountpoint} was mounted")
        if time.monotonic() > deadline:
            raise DiskError(f"borg mount did not mount {mountpoint} within a minute")
        await asyncio.sleep(0.05)


async def _until_done(mountpoint: Path, job: Job, idle: int, longest: int) -> str:
    """Wait for the end of a browse: "released", "idle" or "max_duration".

    In use: a process the daemon can see works in the mount, or the asker
    said so lately (``job.last_used``: under systemd the daemon may not look
    into other processes).
    """
    released = job.released
    began = last_used = time.monotonic()
    step = max(min(idle / 4, 30.0), 0.25)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(released.wait(), step)
        if released.is_set():
            return "released"
        now = time.monotonic()
        if now - began >= longest:
            return "max_duration"
        if job.last_used > last_used or devices.in_use(mountpoint, ignore=frozenset({os.getpid()})):
            last_used = now
        elif now - last_used >= idle:
            return "idle"


async def _unmount(services: Services, mountpoint: Path, mounted: asyncio.Task[Any]) -> None:
    """End the browse mount whatever happens: borg umount, else detach it; stop borg mount."""
    try:
        if devices.is_mounted(mountpoint):
            try:
                await services.borg.run(argv.umount(str(mountpoint)), use_passphrase=False)
            except CoffreError as error:
                services.logger.warning("browse: %s; detaching %s", error, mountpoint)
    finally:
        # Also on the way out of a stopping daemon: a FUSE mount whose borg is
        # gone would stay behind as a dead folder ("transport endpoint not
        # connected") until someone unmounts it by hand.
        if devices.is_mounted(mountpoint):
            devices.detach_now(mountpoint)
        if not mounted.done():
            mounted.cancel()
        with contextlib.suppress(asyncio.CancelledError, CoffreError):
            await mounted
