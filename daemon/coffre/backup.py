"""The backup step of one target: borg create, then remember the archive."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from coffre.borg import argv, parse
from coffre.borg.runner import Progress
from coffre.errors import RepositoryIdMismatch
from coffre.pruning import record_repository_size
from coffre.restore_plan import STAGING_EXCLUDE
from coffre.services import Services
from coffre.state import RunStats


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


async def create_archive(
    services: Services,
    target: str,
    location: str,
    expected_id: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunStats:
    """Run ``borg create`` of the configured source into ``location``.

    Returns the stats of the new archive, which is also added to the known
    archive list. Raises BorgError subclasses, and RepositoryIdMismatch when
    borg reports another repository than ``expected_id``.
    """
    config = services.config
    now = services.clock.now()
    known = services.state.archives(target) or []
    name = archive_name(
        config.retention.prefix,
        now.astimezone(config.schedule.timezone),
        {a.name for a in known},
    )
    create = argv.create(
        location,
        name,
        [str(p) for p in config.source.paths],
        excludes=(*config.source.exclude, STAGING_EXCLUDE),
        compression=config.borg.compression,
        checkpoint_interval=config.borg.checkpoint_interval,
        # The archive's time is coffre's clock, the one its name and the
        # retention's days come from: one source of time for a whole job.
        timestamp=now,
    )
    try:
        result = await services.borg.run(create, on_progress=on_progress)
    except BaseException:
        # borg may have left a checkpoint archive that state does not know:
        # forget the list, so that the next retention asks borg for it.
        # (A daemon killed here is covered by State.mark_interrupted_runs.)
        services.state.forget_archives(target)
        raise
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
    return RunStats(
        archive=stats.archive.name,
        original_bytes=stats.original_size,
        compressed_bytes=stats.compressed_size,
        deduplicated_bytes=stats.deduplicated_size,
        nfiles=stats.nfiles,
    )
