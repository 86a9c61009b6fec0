"""Enrolling a USB disk: its filesystem UUID, a Borg repository on it, its ID recorded.

Never formats without being told twice (``--format --yes``); never touches a
disk that is mounted elsewhere; never takes over a repository found on the
disk unless ``--adopt``.
"""

from __future__ import annotations

import re
from pathlib import Path

from coffre.borg import argv
from coffre.borg.repository import read_repository_id
from coffre.core.errors import BorgRepositoryMissing, DiskError, UsageError
from coffre.jobs.services import Services
from coffre.targets.usb import devices
from coffre.targets.usb.repository import REPOSITORY_FOLDER
from coffre.targets.usb.udev import SUPPORTED_FILESYSTEMS

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def check_name(services: Services, name: str) -> None:
    """Refuse a disk name that is malformed or already used by a target or another disk."""
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"invalid disk name {name!r}",
            hint="use 1 to 32 lowercase letters, digits, - or _ (e.g. disque-a)",
        )
    if any(t.name == name for t in services.config.targets):
        raise UsageError(f"{name!r} is already the name of a configured target")


async def enroll_disk(
    services: Services, devnode: str, name: str, *, format_disk: bool, adopt: bool
) -> tuple[str, str, str]:
    """Prepare the disk at ``devnode`` as coffre's disk ``name``.

    Returns (filesystem UUID, repository ID, what was done).

    Raises UsageError (bad name, already enrolled, no or unsupported
    filesystem without ``format_disk``, a repository there without
    ``adopt``), DiskError (mounted elsewhere, mount or mkfs failed) and
    BorgError subclasses.
    """
    _check_free(services, devnode, name)
    uuid, fs_type, done = await _filesystem(devnode, name, format_disk=format_disk)
    other = services.state.disk_by_uuid(uuid)
    if other is not None:
        raise UsageError(f"this disk is already enrolled as {other.name!r}")
    mountpoint = services.config.paths.mounts / name
    await devices.mount(devnode, mountpoint, fs_type, read_only=False)
    try:
        repository_id, adopted = await _repository(
            services, devnode, mountpoint / REPOSITORY_FOLDER, adopt=adopt
        )
    finally:
        await devices.unmount(mountpoint)
    services.state.enroll_disk(name, uuid, repository_id, services.clock.now())
    return uuid, repository_id, "adopted" if adopted else done


def _check_free(services: Services, devnode: str, name: str) -> None:
    """Refuse a bad or taken ``name``, and a ``devnode`` that is no block device or is mounted.

    Raises UsageError, or DiskError for a disk mounted elsewhere.
    """
    check_name(services, name)
    if services.state.disk(name) is not None:
        raise UsageError(
            f"a disk named {name!r} is already enrolled",
            hint=f"choose another name, or `coffre disk forget {name}` first",
        )
    if not Path(devnode).is_block_device():
        raise UsageError(f"{devnode} is not a block device", hint="e.g. /dev/sdb1 (see lsblk)")
    elsewhere = devices.mounts_of(devnode)
    if elsewhere:
        raise DiskError(
            f"{devnode} is mounted at {', '.join(elsewhere)}",
            hint="unmount it first: coffre mounts its disks itself, only during a job",
        )


async def _filesystem(devnode: str, name: str, *, format_disk: bool) -> tuple[str, str, str]:
    """The disk's filesystem (UUID, type), made first with ``format_disk``; and what was done.

    Raises UsageError for no or an unsupported filesystem without
    ``format_disk``, DiskError when mkfs fails.
    """
    uuid, fs_type = await devices.filesystem_of(devnode)
    if format_disk:
        await devices.make_filesystem(devnode, f"COFFRE-{name.upper()}"[:16])
        uuid, fs_type = await devices.filesystem_of(devnode)
        return uuid, fs_type, "formatted and enrolled"
    if not uuid or fs_type not in SUPPORTED_FILESYSTEMS:
        what = f"a {fs_type} filesystem" if fs_type else "no filesystem"
        raise UsageError(
            f"{devnode} has {what}; coffre needs ext4, xfs or btrfs",
            hint=f"to ERASE it and create one: coffre disk enroll {devnode} --name {name} "
            "--format --yes",
        )
    return uuid, fs_type, "enrolled"


async def _repository(
    services: Services, devnode: str, location: Path, *, adopt: bool
) -> tuple[str, bool]:
    """The repository ID at ``location`` (the mounted disk's), created there if none; adopted?

    A repository already there is taken only with ``adopt`` (borg must open
    it with this box's passphrase). Raises UsageError without ``adopt``,
    BorgError subclasses.
    """
    try:
        found: str | None = read_repository_id(location)
    except BorgRepositoryMissing:
        found = None
    if found is not None and not adopt:
        raise UsageError(
            f"{devnode} already holds a coffre repository (ID {found})",
            hint="to use it as is (its passphrase must be this box's): add --adopt",
        )
    if found is None:
        await services.borg.run(
            argv.init(str(location), encryption=services.config.encryption.mode)
        )
    else:
        await services.borg.run(argv.info_repository(str(location)))
    return read_repository_id(location), found is not None
