"""Creating (or adopting) a target's repository and recording its ID."""

from __future__ import annotations

from coffre.borg import argv
from coffre.core.errors import BorgRepositoryExists, BorgRepositoryMissing, UsageError
from coffre.jobs.archive_list import list_archives
from coffre.jobs.services import Services
from coffre.targets.base import Repository


async def init_target(
    services: Services, repo: Repository, *, adopt: bool = False, replace: bool = False
) -> tuple[str, str]:
    """Create the repository of ``repo`` and record its ID; returns (ID, what was done).

    - nothing there: ``borg init`` (the configured encryption), ID recorded;
    - the recorded repository there already: nothing to do;
    - another repository there: refused unless ``adopt``; with it, the
      passphrase is proven on it (``borg info``) and its ID recorded;
    - a recorded repository that vanished: refused unless ``replace`` (a
      missing mount would otherwise get a fresh repository in its place).

    Raises BorgRepositoryExists, UsageError and BorgError subclasses.
    """
    state, now = services.state, services.clock.now()
    recorded = state.repository_id(repo.name)
    try:
        found: str | None = await repo.repository_id()
    except BorgRepositoryMissing:
        found = None
    if found is not None and found == recorded:
        return found, "already initialised"
    if found is not None:
        if not adopt:
            raise BorgRepositoryExists(
                f"target {repo.name}: a repository already exists at {repo.location} (ID {found})",
                rc=0,
                hint=f"to record it as this target's repository: `coffre target init {repo.name} "
                "--adopt` (its passphrase must be the configured one)",
            )
        await services.borg.run(argv.info_repository(repo.location))
        state.record_repository(repo.name, found, repo.location, now)
        await list_archives(services, repo.name, repo.location)
        return found, "adopted"
    if recorded is not None and not replace:
        raise UsageError(
            f"target {repo.name}: its repository (ID {recorded}) is missing at {repo.location}",
            hint="if the storage is only not mounted, mount it and retry; if the repository is "
            f"truly lost, create a new one with `coffre target init {repo.name} --replace`",
        )
    await services.borg.run(argv.init(repo.location, encryption=services.config.encryption.mode))
    created = await repo.repository_id()
    state.record_repository(repo.name, created, repo.location, now)
    state.replace_archives(repo.name, [], now)
    return created, "created"
