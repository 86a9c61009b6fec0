"""Apply the retention plan to a repository: borg delete, then borg compact when worth it.

The archive list comes from :mod:`coffre.jobs.archive_list`.
"""

from __future__ import annotations

from coffre.borg import argv, parse
from coffre.core import retention
from coffre.core.model import Archive
from coffre.jobs.archive_list import known_archives, list_archives
from coffre.jobs.services import Services

#: Compact once the space freed by deletes adds up to this share of the
#: repository, or to COMPACT_ABSOLUTE bytes, whichever comes first. A compact
#: reads and rewrites segments: on a practice's unchanged share a night frees
#: a few kilobytes, not worth a pass over the repository.
COMPACT_SHARE = 0.01
COMPACT_ABSOLUTE = 1 << 30


def _pending_key(target: str) -> str:
    return f"compact.pending_bytes.{target}"


def _size_key(target: str) -> str:
    return f"repository.size_bytes.{target}"


def compact_due(pending: int, repository_size: int | None) -> bool:
    """Whether ``pending`` freed bytes are worth a ``borg compact`` (pure).

    An unknown repository size counts as "worth it" as soon as anything was
    freed: better a needless compact than space never given back.
    """
    if pending <= 0:
        return False
    if repository_size is None or pending >= COMPACT_ABSOLUTE:
        return True
    return pending >= COMPACT_SHARE * repository_size


def record_repository_size(services: Services, target: str, size: int | None) -> None:
    """Remember the repository's size (from ``borg create --json``) for compact_due."""
    if size is not None:
        services.state.set_meta(_size_key(target), str(size))


def plan_for(services: Services, archives: list[Archive]) -> retention.Plan:
    """The retention plan of the configured policy over ``archives``."""
    policy = services.config.retention
    return retention.plan(
        archives,
        prefix=policy.prefix,
        daily=policy.daily,
        monthly=policy.monthly,
        tz=services.config.schedule.timezone,
    )


async def apply_retention(
    services: Services,
    target: str,
    location: str,
    *,
    dry_run: bool = False,
    refresh: bool = False,
    compact_now: bool = False,
    compacts: bool = True,
) -> retention.Plan:
    """Compute the plan for ``target`` and, unless ``dry_run``, delete what falls out.

    The list comes from state unless ``refresh`` (or state's is missing or
    old). Deleting is one ``borg delete --stats`` for all archives (a name
    borg no longer has is only a warning); the space it frees is added up in
    state, and ``borg compact`` runs once that is worth it (compact_due), or
    at once with ``compact_now`` (a full disk needs its space back now).
    ``compacts=False`` (an append-only offsite repository: its host compacts)
    never runs ``borg compact`` and keeps no count of freed space.
    Raises BorgError subclasses.
    """
    archives = await (list_archives if refresh else known_archives)(services, target, location)
    plan = plan_for(services, archives)
    if dry_run or not plan.delete:
        if compact_now and compacts and not dry_run:
            await services.borg.run(argv.compact(location))
        return plan
    result = await services.borg.run(argv.delete(location, [a.name for a in plan.delete]))
    services.state.remove_archives(target, [a.name for a in plan.delete])
    if not compacts:
        return plan
    freed = parse.deleted_bytes(result.logs)
    state = services.state
    pending = int(state.get_meta(_pending_key(target)) or 0) + (freed if freed is not None else 1)
    size = state.get_meta(_size_key(target))
    if compact_now or compact_due(pending, None if size is None else int(size)):
        await services.borg.run(argv.compact(location))
        pending = 0
    state.set_meta(_pending_key(target), str(pending))
    return plan
