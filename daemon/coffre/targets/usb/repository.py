"""An enrolled USB disk: its repository, reachable only while a job runs.

``opened`` mounts the disk read-only, checks that the repository on it is the
one recorded at enrollment, and only then makes it writable. On the way out
it syncs and unmounts, whatever happened; powering the device off is the disk
job's last step.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from coffre.borg.repository import read_repository_id
from coffre.core.errors import DiskAbsent, DiskError, RepositoryIdMismatch
from coffre.jobs.services import Services
from coffre.storage.state import DiskRecord
from coffre.targets.usb import devices

#: The folder of the disk that holds the Borg repository.
REPOSITORY_FOLDER = "coffre"


class UsbRepository:
    """The repository on the enrolled disk ``name``.

    ``lookup`` gives the disk's current record (device node, presence) from
    state; ``mount_root`` is where disks are mounted, one stable folder per
    disk (borg refuses a repository that moved: the path must not change).
    """

    compacts = True

    def __init__(
        self, name: str, lookup: Callable[[str], DiskRecord | None], mount_root: Path
    ) -> None:
        self._name = name
        self._lookup = lookup
        self.mountpoint = mount_root / name
        #: Free bytes on the disk when it was last unmounted by ``opened``.
        self.free_bytes: int | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def location(self) -> str:
        return str(self.mountpoint / REPOSITORY_FOLDER)

    def as_disk(self) -> UsbRepository:
        return self

    def job_services(self, daemon: Services) -> Services:
        return daemon

    def require_ready(self) -> None:
        return None

    def disk(self) -> DiskRecord:
        """The disk's record; DiskAbsent when it is not plugged in."""
        disk = self._lookup(self._name)
        if disk is None or not disk.present or not disk.devnode:
            raise DiskAbsent(
                f"disk {self._name} is not plugged in",
                hint="plug it in: its backup starts by itself",
            )
        return disk

    async def repository_id(self) -> str:
        async with self._mounted(read_only=True):
            return read_repository_id(Path(self.location))

    @contextlib.asynccontextmanager
    async def _mounted(self, *, read_only: bool) -> AsyncIterator[DiskRecord]:
        disk = self.disk()
        assert disk.devnode is not None
        if devices.is_mounted(self.mountpoint):
            # Left by a daemon that died mid-job: start from a clean state.
            await devices.unmount(self.mountpoint)
        uuid, fs_type = await devices.filesystem_of(disk.devnode)
        if uuid != disk.fs_uuid:
            raise DiskError(
                f"disk {self._name}: {disk.devnode} now carries filesystem {uuid or 'none'}, "
                f"not {disk.fs_uuid}",
                hint="the device changed since it was seen; unplug and plug the disk again",
            )
        await devices.mount(disk.devnode, self.mountpoint, fs_type, read_only=read_only)
        try:
            yield disk
        except BaseException:
            # The job failed (the disk may be gone): free the mount point, but
            # let the job's own error be the one reported.
            with contextlib.suppress(OSError, DiskError):
                await devices.unmount(self.mountpoint)
            raise
        devices.sync(self.mountpoint)
        self.free_bytes = devices.free_bytes(self.mountpoint)
        await devices.unmount(self.mountpoint)

    @contextlib.asynccontextmanager
    async def opened(self, expected_id: str) -> AsyncIterator[str]:
        async with self._mounted(read_only=True):
            found = read_repository_id(Path(self.location))
            if found != expected_id:
                raise RepositoryIdMismatch(
                    f"disk {self._name}: the repository on it has ID {found}, but coffre "
                    f"created {expected_id} on this disk",
                    hint="the disk was re-formatted or is an impostor with the same "
                    "filesystem UUID; nothing was written. Re-enroll it if it is yours",
                )
            await devices.remount_writable(self.mountpoint)
            yield self.location
