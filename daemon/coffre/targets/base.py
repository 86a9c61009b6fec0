"""What every kind of target offers the jobs."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Repository(Protocol):
    """A target's Borg repository, as the jobs see it.

    ``opened(expected_id)`` makes the repository reachable for the length of
    a job (a USB disk is mounted, a local directory is just checked) and
    yields the location to give borg. It raises RepositoryIdMismatch when the
    repository found there is not the one recorded, and BorgRepositoryMissing
    when there is none.
    """

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> str: ...

    def opened(self, expected_id: str) -> AbstractAsyncContextManager[str]: ...

    async def repository_id(self) -> str:
        """The ID of the repository at the location now (raises BorgRepositoryMissing)."""
        ...
