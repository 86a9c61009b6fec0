"""A scheduled check of a configured target, reached by its name (``coffre check``, maintenance).

The local repository is checked in place; an offsite one over SSH with the
services of its jobs (``Repository.job_services``: the pinned host, the upload
limit of the hour). A USB disk is checked inside its disk job only, while it
is plugged in (``coffre.targets.usb.job``): asking for one here is refused.
The borg side is ``coffre.jobs.checking.check_at``.
"""

from __future__ import annotations

from coffre.core.errors import TargetNotInitialised, UsageError
from coffre.jobs.checking import check_at
from coffre.jobs.services import Services
from coffre.proof.check_ledger import CheckKind, CheckRecord, kinds_for
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
    if services.state.disk(target) is not None:
        raise UsageError(
            f"disk {target} is checked at its plug, by its disk job",
            hint="plug it in: its job backs it up, then checks it",
        )
    configured = services.config.target(target)
    if kind not in kinds_for(configured.kind):
        raise UsageError(
            f"coffre does not run the {kind} check on {target} ({configured.kind})",
            hint="an offsite host checks its own segments (packaging/hds/README.md); "
            f"coffre checks its archives: {', '.join(kinds_for(configured.kind))}",
        )
    repo = repository_for(configured, services)
    repo.require_ready()
    expected = services.state.repository_id(target)
    if expected is None:
        raise TargetNotInitialised(
            f"target {target} has no repository recorded",
            hint=f"create it with `coffre target init {target}`",
        )
    async with repo.opened(expected) as location:
        return await check_at(
            repo.job_services(services), target, configured.kind, location, kind, budget=budget
        )
