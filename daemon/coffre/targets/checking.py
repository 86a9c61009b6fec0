"""A scheduled check or drill of a configured target, reached by its name (maintenance).

The local repository is checked in place; an offsite one over SSH with the
services of its jobs (``Repository.job_services``: the pinned host, the upload
limit of the hour). A USB disk is checked inside its disk job only, while it
is plugged in (``coffre.targets.usb.job``): asking for one here is refused.
The borg side is ``coffre.jobs.checking.check_at`` and
``coffre.jobs.drilling.drill_target``. (A drill a person asks, ``coffre
drill``, is a read: ``coffre.support.drill_job`` reaches even a USB disk.)
"""

from __future__ import annotations

from collections.abc import Mapping

from coffre.core.errors import TargetNotInitialised, UsageError
from coffre.jobs.checking import check_at
from coffre.jobs.drilling import drill_target
from coffre.jobs.services import Services
from coffre.proof.check_ledger import CheckKind, CheckRecord, kinds_for
from coffre.proof.drill_ledger import DrillRecord
from coffre.targets.base import Repository
from coffre.targets.registry import repository_for


async def check_target(
    services: Services, target: str, kind: CheckKind, *, budget: float | None
) -> CheckRecord:
    """Run the ``kind`` check of the configured ``target``; returns its record (see check_at).

    ``budget``: seconds it may take (None: no limit). Raises UsageError for an
    unknown target, a USB disk or a kind coffre does not run on that target
    (an offsite repository's segments are its host's job), OffsiteNotEnrolled,
    TargetNotInitialised, RepositoryIdMismatch, and the CoffreError that kept
    borg from checking (after recording it). Damage found is in the record.
    """
    _refuse_disk(
        services, target, "checked at its plug, by its disk job", "plug it in: its job checks it"
    )
    configured = services.config.target(target)
    if kind not in kinds_for(configured.kind):
        raise UsageError(
            f"coffre does not run the {kind} check on {target} ({configured.kind})",
            hint="an offsite host checks its own segments (packaging/hds/README.md); "
            f"coffre checks its archives: {', '.join(kinds_for(configured.kind))}",
        )
    repo, expected = _ready(services, target)
    async with repo.opened(expected) as location:
        return await check_at(
            repo.job_services(services), target, configured.kind, location, kind, budget=budget
        )


async def drill_configured(
    services: Services, target: str, *, person: Mapping[str, str] | None
) -> DrillRecord:
    """A restore drill of the configured ``target``'s latest archive; its record.

    ``person`` None: the schedule's. Raises what :func:`check_target` raises
    for a target it cannot reach, and what ``drill_target`` raises.
    """
    _refuse_disk(
        services,
        target,
        "drilled when a person asks, not by the schedule",
        f"plug it in and run `coffre drill --target {target}`",
    )
    repo, expected = _ready(services, target)
    async with repo.opened(expected) as location:
        return await drill_target(
            repo.job_services(services), target, person=person, location=location
        )


def _refuse_disk(services: Services, target: str, disk_is: str, hint: str) -> None:
    """Raise UsageError, saying it ``disk_is``, when ``target`` is a USB disk."""
    if services.state.disk(target) is not None:
        raise UsageError(f"disk {target} is {disk_is}", hint=hint)


def _ready(services: Services, target: str) -> tuple[Repository, str]:
    """The repository of the configured ``target`` and its recorded id, ready to open.

    Raises UsageError (an unknown target), the repository's own refusals and
    TargetNotInitialised.
    """
    repo = repository_for(services.config.target(target), services)
    repo.require_ready()
    expected = services.state.repository_id(target)
    if expected is None:
        raise TargetNotInitialised(
            f"target {target} has no repository recorded",
            hint=f"create it with `coffre target init {target}`",
        )
    return repo, expected
