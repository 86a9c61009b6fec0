"""What every kind of target offers the jobs."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from coffre.jobs.services import Services
from coffre.storage.state import DiskRecord


class RemovableDisk(Protocol):
    """A repository on a disk that is plugged in for a job, then powered off.

    ``disk()`` is its record in state (raises DiskAbsent when it is not
    plugged in); ``free_bytes`` what was free on it when last unmounted.
    """

    @property
    def name(self) -> str: ...

    @property
    def free_bytes(self) -> int | None: ...

    def disk(self) -> DiskRecord: ...

    def opened(self, expected_id: str) -> AbstractAsyncContextManager[str]: ...


class Repository(Protocol):
    """A target's Borg repository, as the jobs see it.

    ``opened(expected_id)`` makes the repository reachable for the length of
    a job (a USB disk is mounted, a local directory is just checked) and
    yields the location to give borg. It raises RepositoryIdMismatch when the
    repository found there is not the one recorded, and BorgRepositoryMissing
    when there is none.

    The jobs ask it what differs between kinds instead of looking at its class:
    ``as_disk``, ``compacts``, ``job_services`` and ``require_ready``.
    """

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def compacts(self) -> bool:
        """Whether retention may run ``borg compact`` (False: append-only, its host compacts)."""
        ...

    def opened(self, expected_id: str) -> AbstractAsyncContextManager[str]: ...

    async def repository_id(self) -> str:
        """The ID of the repository at the location now (raises BorgRepositoryMissing)."""
        ...

    def as_disk(self) -> RemovableDisk | None:
        """The removable disk it lives on (its backup is a disk job: mount, back up, check,
        power off; a read waits for it to be plugged in), or None: always reachable."""
        ...

    def job_services(self, daemon: Services) -> Services:
        """The services jobs on it use, given the ``daemon``'s (an offsite one: borg over SSH)."""
        ...

    def require_ready(self) -> None:
        """Raise what keeps every job off it before its ID is looked at (an offsite host
        not enrolled: OffsiteNotEnrolled); nothing for the kinds always ready."""
        ...
