"""The backup step of one target: borg create, then remember the archive.

A create that ends with borg's warnings (exit 1, 100..127: a file unreadable,
vanished, changed while read) still made its archive: it is remembered like
any other, and its RunStats carry the warnings' counts, so the run is
recorded as a ``warning`` (state, status, metrics, lights). Each file borg
named goes to the journal, one WARNING line each (MESSAGE_ID
``logs.MSG_FILE_NOT_BACKED_UP``): file names stay on the box.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import stat
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

from coffre.borg import argv, parse
from coffre.borg.create_warnings import Warned, classify
from coffre.borg.exitcodes import is_warning
from coffre.borg.records import FileStatus
from coffre.borg.runner import BorgResult, Progress
from coffre.consistency.read_point import SharedPoint, SourceView
from coffre.core.errors import RepositoryIdMismatch, SourceUnavailable
from coffre.core.outcomes import Reason, describe
from coffre.core.printable import controls_escaped
from coffre.jobs.change_watch import plant_canaries, watch
from coffre.jobs.pruning import record_repository_size
from coffre.jobs.services import Services
from coffre.storage import logs
from coffre.storage.staging_mark import StagingMark
from coffre.storage.state import RunStats

#: Files listed in the journal per backup; past it, one line tells how many more.
#: A folder gone unreadable can hold thousands: journald would drop lines anyway
#: (its rate limit), and borg's own records of them are logged at DEBUG.
MAX_LISTED = 1000


def archive_name(prefix: str, local_moment: datetime, taken: Collection[str]) -> str:
    """``<prefix>-<local date and time>``, made unique against ``taken``.

    ``local_moment`` is in the box's timezone: support staff read these names
    and think in the practice's local time (borg keeps the exact instant).
    """
    base = f"{prefix}-{local_moment:%Y-%m-%dT%H:%M:%S}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def require_sources(paths: Iterable[Path]) -> None:
    """Raise SourceUnavailable unless every path of ``paths`` is a folder now.

    borg would back a missing path up as an empty archive with a mere
    warning; a share whose data volume is not mounted (yet) must fail the
    backup instead, visibly, and keep every restore point as it is.
    """
    for path in paths:
        try:
            found = path.stat()
        except OSError as error:
            raise SourceUnavailable(
                f"the share {path} cannot be read ({error.strerror or error}): nothing backed up",
                hint="check that its volume is mounted (source.paths in the configuration); "
                "the backup runs again by itself once it is back",
            ) from error
        if not stat.S_ISDIR(found.st_mode):
            raise SourceUnavailable(
                f"the share {path} is not a folder; nothing was backed up",
                hint="check source.paths in the configuration",
            )


async def create_archive(
    services: Services,
    target: str,
    location: str,
    expected_id: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    point: SharedPoint | None = None,
    quiet_bound: int | None = None,
) -> RunStats:
    """Run ``borg create`` of the configured source into ``location``.

    The share is read as ``point`` gives it: the run's snapshot, taken by
    the first target of the run that asks (``services.share``; a read point
    of its own when ``point`` is None, let go at the end), or the live share
    after a quiet wait (at most ``quiet_bound`` seconds, default
    ``quiescence.max_wait_seconds``); without a desk, the live share at once.
    Returns the stats of the new archive, which is also added to the known
    archive list; when borg ended with warnings, the stats carry their counts
    and each file borg named is logged (see the module doc). Raises BorgError
    subclasses, and RepositoryIdMismatch when borg reports another repository
    than ``expected_id``.
    """
    require_sources(services.config.source.paths)
    # Planted before the snapshot and the create: the archive holds them as the share does.
    plant_canaries(services)
    desk = services.share
    if desk is None:
        live = SourceView(None, tuple(str(p) for p in services.config.source.paths), "", None)
        return await _create(services, target, location, expected_id, live, on_progress)
    shared = point or SharedPoint()
    try:
        read = await shared.get(partial(desk.take_for_backup, bound=quiet_bound), desk.release)
        async with desk.view(read, target) as view:
            stats = await _create(services, target, location, expected_id, view, on_progress)
        record_consistency(services, target, view)
        return stats
    finally:
        if point is None:
            shared.close()


async def _create(
    services: Services,
    target: str,
    location: str,
    expected_id: str,
    view: SourceView,
    on_progress: Callable[[Progress], None] | None,
) -> RunStats:
    """borg create of ``view`` into ``location``, recorded and watched (see create_archive)."""
    create = _create_argv(services, target, location, view)
    try:
        result = await services.borg.run(create, on_progress=on_progress, cwd=view.cwd)
    except BaseException:
        # borg may have left a checkpoint archive that state does not know:
        # forget the list, so that the next retention asks borg for it.
        # (A daemon killed here is covered by State.mark_interrupted_runs.)
        services.state.forget_archives(target)
        raise
    stats = _recorded(services, target, expected_id, result)
    # The archive is made and recorded: what the night did to the share is
    # judged now, before this job's retention may delete anything.
    watch(services, target, stats, _as_in_share(result.file_statuses, view))
    return stats


def record_consistency(services: Services, target: str, view: SourceView) -> None:
    """Keep how ``target``'s last backup read the share, for status (state's meta)."""
    if view.consistency is not None:
        services.state.set_meta(
            consistency_key(target), json.dumps(view.consistency.to_json(), sort_keys=True)
        )


def consistency_key(target: str) -> str:
    """State's key of how ``target``'s last backup read the share (JSON)."""
    return f"consistency.{target}"


def _as_in_share(statuses: Sequence[FileStatus], view: SourceView) -> Sequence[FileStatus]:
    """borg's statuses with the share's own paths: a view's relative paths made absolute
    (the view holds the share at its full path), so the guard samples the share."""
    if view.cwd is None:
        return statuses
    return [dataclasses.replace(s, path="/" + s.path) for s in statuses]


def _create_argv(
    services: Services, target: str, location: str, view: SourceView
) -> tuple[str, ...]:
    """``borg create`` of ``view``, the archive named after the clock's now.

    The name is unique among the archives state knows on ``target``.
    Raises ValueError for a value borg would misread (see ``argv.create``).
    """
    config = services.config
    now = services.clock.now()
    known = services.state.archives(target) or []
    name = archive_name(
        config.retention.prefix,
        now.astimezone(config.schedule.timezone),
        {a.name for a in known},
    )
    return argv.create(
        location,
        name,
        view.paths,
        excludes=config.source.exclude,
        # A restore's staging folder (half-extracted copies) is tagged with the
        # box's secret name: no share user can tag a folder of theirs so.
        exclude_if_present=_staging_tags(config.paths.state),
        compression=config.borg.compression,
        checkpoint_interval=config.borg.checkpoint_interval,
        # The archive's time is coffre's clock, the one its name and the
        # retention's days come from: one source of time for a whole job.
        timestamp=now,
        # The statuses of new and changed files feed the change signal (guard).
        list_changed=True,
        comment=view.comment,
    )


def _staging_tags(state_dir: Path) -> tuple[str, ...]:
    """The tag of this box's restore staging folders, when a restore ever drew one."""
    mark = StagingMark.if_drawn(state_dir)
    return () if mark is None else (mark.name,)


def _recorded(services: Services, target: str, expected_id: str, result: BorgResult) -> RunStats:
    """The stats of ``borg create --json``'s ``result``, the archive added to state's list.

    Raises RepositoryIdMismatch (nothing recorded) when borg wrote to
    another repository than ``expected_id``.
    """
    stats = parse.create(result.json())
    if stats.repository_id != expected_id:
        raise RepositoryIdMismatch(
            f"target {target}: borg wrote to repository {stats.repository_id}, "
            f"expected {expected_id}",
            hint="check the target's location; record the new repository with "
            f"`coffre target init {target} --adopt` if it is the right one",
        )
    if services.state.archives(target) is not None:
        services.state.add_archive(target, stats.archive)
    record_repository_size(services, target, stats.repository_size)
    warnings = None
    # rc 0 may come with WARNING records too (borg's notes on its own set-up):
    # only a warning exit code says that files are missing or suspect.
    if is_warning(result.rc):
        warnings, warned = classify(result.warnings)
        log_warned(services.logger, target, warned)
    return RunStats(
        archive=stats.archive.name,
        original_bytes=stats.original_size,
        compressed_bytes=stats.compressed_size,
        deduplicated_bytes=stats.deduplicated_size,
        nfiles=stats.nfiles,
        warnings=warnings,
    )


def log_warned(logger: logging.Logger, target: str, warned: Sequence[Warned]) -> None:
    """One WARNING line per warning of borg about ``target``'s backup (at most MAX_LISTED).

    Lines about a file carry MESSAGE_ID ``MSG_FILE_NOT_BACKED_UP`` and the
    field ``COFFRE_WARNING_REASON`` (a ``Reason``); borg's message names the
    file. Raises nothing.
    """
    for item in warned[:MAX_LISTED]:
        # borg's message names the file as the share has it: escaped (core.printable).
        message = controls_escaped(item.message)
        if item.reason is Reason.OTHER:
            logger.warning("backup of %s: borg warned: %s", target, message)
            continue
        logger.warning(
            "backup of %s: file %s: %s",
            target,
            describe(item.reason),
            message,
            extra={
                "MESSAGE_ID": logs.MSG_FILE_NOT_BACKED_UP,
                "COFFRE_TARGET": target,
                "COFFRE_WARNING_REASON": str(item.reason),
            },
        )
    if len(warned) > MAX_LISTED:
        logger.warning(
            "backup of %s: %d more warning(s) of borg not listed here",
            target,
            len(warned) - MAX_LISTED,
            extra={"MESSAGE_ID": logs.MSG_FILE_NOT_BACKED_UP, "COFFRE_TARGET": target},
        )
