"""A Borg repository in a plain directory of the box."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from coffre.borg.repository import read_repository_id
from coffre.core.config_types import LocalTarget
from coffre.core.errors import RepositoryIdMismatch
from coffre.jobs.services import Services
from coffre.targets.base import RemovableDisk


class LocalRepository:
    """The repository of a ``kind = "local"`` target: always reachable, compacted by the box."""

    compacts = True

    def __init__(self, target: LocalTarget) -> None:
        self._target = target

    @property
    def name(self) -> str:
        return self._target.name

    @property
    def location(self) -> str:
        return self._target.location

    def as_disk(self) -> RemovableDisk | None:
        return None

    def job_services(self, daemon: Services) -> Services:
        return daemon

    def require_ready(self) -> None:
        return None

    async def repository_id(self) -> str:
        # Read from the repository's own config file: no borg run, no lock.
        return read_repository_id(self._target.path)

    @asynccontextmanager
    async def opened(self, expected_id: str) -> AsyncIterator[str]:
        found = await self.repository_id()
        if found != expected_id:
            raise RepositoryIdMismatch(
                f"target {self.name}: the repository at {self.location} has ID {found}, "
                f"but coffre created {expected_id} there",
                hint="someone replaced or re-created it; nothing was written. If this new "
                f"repository is the right one, record it with `coffre target init {self.name} "
                "--adopt`",
            )
        yield self.location
