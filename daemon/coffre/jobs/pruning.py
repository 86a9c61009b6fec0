"""Apply the retention plan to a repository: borg delete, then borg compact when worth it.

The archive list comes from :mod:`coffre.jobs.archive_list`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coffre.borg import argv, parse
from coffre.core import retention
from coffre.core.model import Archive
from coffre.guard import freeze
from coffre.guard.incidents import Incident, IncidentStore
from coffre.jobs.archive_list import known_archives, list_archives
from coffre.jobs.services import Services
from coffre.storage import logs

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


@dataclass(frozen=True)
class Retention:
    """What retention did on a repository: its plan, and the incidents that froze it.

    ``deleted`` is what was deleted: the plan's deletions, or nothing when
    ``frozen_by`` holds an incident (or on a dry run).
    """

    plan: retention.Plan
    frozen_by: tuple[Incident, ...] = ()
    dry_run: bool = False

    @property
    def deleted(self) -> tuple[Archive, ...]:
        return () if self.frozen_by or self.dry_run else self.plan.delete


def plan_for(services: Services, archives: list[Archive], now: datetime) -> retention.Plan:
    """The retention plan of the configured policy over ``archives`` as of ``now``.

    Archives dated after ``now`` (plus the guard's tolerance) are set aside:
    kept, never ranked (see :func:`coffre.core.retention.plan`).
    """
    policy = services.config.retention
    return retention.plan(
        archives,
        prefix=policy.prefix,
        daily=policy.daily,
        monthly=policy.monthly,
        tz=services.config.schedule.timezone,
        now=now,
        future_tolerance=freeze.tolerance(services.config.guard),
    )


def all_targets(services: Services) -> list[str]:
    """Every target state may know archives of: the configured ones and the enrolled disks."""
    names = [t.name for t in services.config.targets]
    return names + [d.name for d in services.state.disks() if d.name not in names]


def pruning_frozen(
    services: Services, target: str, archives: list[Archive]
) -> tuple[Incident, ...]:
    """The open incidents that freeze pruning, after the clock guard reviewed ``archives``.

    ``archives`` (``target``'s, fresh) stand in for what state knows of
    ``target``; every other target's known list is reviewed with them.
    Raises StateError.
    """
    lists = freeze.known_archives(services.state, all_targets(services))
    lists[target] = archives
    freeze.review_clock(
        services.state,
        services.config.guard,
        services.config.retention.prefix,
        services.clock.now(),
        lists,
        services.logger,
    )
    return IncidentStore(services.state).open_incidents()


async def apply_retention(
    services: Services,
    target: str,
    location: str,
    *,
    dry_run: bool = False,
    refresh: bool = False,
    compact_now: bool = False,
    compacts: bool = True,
) -> Retention:
    """Compute the plan for ``target`` and, unless ``dry_run``, delete what falls out.

    The list comes from state unless ``refresh`` (or state's is missing or
    old). Deleting is one ``borg delete --stats`` for all archives (a name
    borg no longer has is only a warning); the space it frees is added up in
    state, and ``borg compact`` runs once that is worth it (compact_due), or
    at once with ``compact_now`` (a full disk needs its space back now).
    ``compacts=False`` (an append-only offsite repository: its host compacts)
    never runs ``borg compact`` and keeps no count of freed space.

    While an incident is open (:mod:`coffre.guard.incidents`: suspected
    ransomware, a suspect clock), nothing is deleted: the plan is returned
    with the incidents that froze it, and a WARNING says how many archives
    were held. ``compact_now`` still compacts (it frees what earlier
    deletions left, never an archive). Raises BorgError subclasses, StateError.
    """
    archives = await (list_archives if refresh else known_archives)(services, target, location)
    plan = plan_for(services, archives, services.clock.now())
    frozen = pruning_frozen(services, target, archives)
    if dry_run or not plan.delete or frozen:
        if frozen and plan.delete and not dry_run:
            _log_frozen(services, target, plan, frozen)
        if compact_now and compacts and not dry_run:
            await services.borg.run(argv.compact(location))
        return Retention(plan, frozen, dry_run)
    result = await services.borg.run(argv.delete(location, [a.name for a in plan.delete]))
    services.state.remove_archives(target, [a.name for a in plan.delete])
    if not compacts:
        return Retention(plan)
    freed = parse.deleted_bytes(result.logs)
    state = services.state
    pending = int(state.get_meta(_pending_key(target)) or 0) + (freed if freed is not None else 1)
    size = state.get_meta(_size_key(target))
    if compact_now or compact_due(pending, None if size is None else int(size)):
        await services.borg.run(argv.compact(location))
        pending = 0
    state.set_meta(_pending_key(target), str(pending))
    return Retention(plan)


def _log_frozen(
    services: Services, target: str, plan: retention.Plan, frozen: tuple[Incident, ...]
) -> None:
    kinds = ", ".join(i.kind for i in frozen)
    services.logger.warning(
        "retention of %s: pruning frozen (%s incident): %d archive(s) kept that "
        "retention would delete; see `coffre incident show`",
        target,
        kinds,
        len(plan.delete),
        extra={
            "MESSAGE_ID": logs.MSG_PRUNING_FROZEN,
            "COFFRE_TARGET": target,
            "COFFRE_INCIDENT": kinds,
            "COFFRE_HELD": str(len(plan.delete)),
        },
    )
