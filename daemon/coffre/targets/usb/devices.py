"""Block devices and mounts: the thin adapter over mount, umount, losetup, mkfs, sysfs.

Every call says what it did wrong in a DiskError; nothing here decides
whether a disk is ours: its filesystem UUID recorded at enrolment picks the
disk (:mod:`coffre.targets.usb.events`), and its repository ID is checked
before borg writes (:mod:`coffre.targets.usb.repository`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from pathlib import Path

from coffre.core.errors import DiskError

#: A disk is mounted without devices, set-uid programs or executables: it
#: holds a repository, nothing on it should ever run.
MOUNT_OPTIONS = "nosuid,nodev,noexec"


async def _tool(*argv: str) -> str:
    """Run a system tool; its stdout, or DiskError with its stderr."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise DiskError(f"cannot run {argv[0]}: {exc.strerror}", hint="install util-linux") from exc
    out, err = await proc.communicate()
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise DiskError(f"{' '.join(argv[:2])} failed: {detail}")
    return out.decode(errors="replace")


def is_mounted(mountpoint: Path) -> bool:
    """Whether something is mounted at ``mountpoint`` (read from /proc/self/mountinfo)."""
    target = str(mountpoint).replace(" ", "\\040")
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return any(line.split()[4] == target for line in info)


def mounts_of(devnode: str) -> list[str]:
    """The mount points of ``devnode`` in this namespace."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            fields = line.split()
            source = fields[fields.index("-") + 2]
            if source == devnode:
                found.append(fields[4].replace("\\040", " "))
    return found


async def mount(devnode: str, mountpoint: Path, fs_type: str, *, read_only: bool) -> None:
    """Mount ``devnode`` at ``mountpoint`` (created 0700) with MOUNT_OPTIONS."""
    mountpoint.mkdir(parents=True, exist_ok=True, mode=0o700)
    options = f"{MOUNT_OPTIONS},{'ro' if read_only else 'rw'}"
    await _tool("mount", "-t", fs_type, "-o", options, devnode, str(mountpoint))


async def remount_writable(mountpoint: Path) -> None:
    await _tool("mount", "-o", f"remount,rw,{MOUNT_OPTIONS}", str(mountpoint))


async def unmount(mountpoint: Path) -> None:
    """Unmount ``mountpoint``; when the device is gone, detach it lazily so nothing lingers."""
    try:
        await _tool("umount", str(mountpoint))
    except DiskError:
        if not is_mounted(mountpoint):
            return
        # A pulled disk cannot be flushed: detach the mount so the mount point
        # is free and the kernel drops it once borg's files are closed.
        await _tool("umount", "--lazy", str(mountpoint))
        raise


def detach_now(mountpoint: Path) -> None:
    """Detach ``mountpoint`` (``umount --lazy``), blocking: usable while the daemon stops.

    The kernel frees the mount once its last user leaves; a failure is left
    for the caller to see in the mount table (nothing is raised).
    """
    subprocess.run(
        ["umount", "--lazy", str(mountpoint)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=30,
    )


def sync(mountpoint: Path) -> None:
    """Flush the filesystem at ``mountpoint`` to the disk (syncfs)."""
    fd = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        os.sync()
    finally:
        os.close(fd)


def free_bytes(mountpoint: Path) -> int:
    stats = os.statvfs(mountpoint)
    return stats.f_bavail * stats.f_frsize


async def power_off(devnode: str, usb_device: str | None) -> None:
    """Make the device disappear so it can be pulled out.

    A USB disk: its USB device is removed through sysfs (the kernel flushes
    and stops it). A loop device (tests, image files): it is detached.
    """
    if usb_device is not None:
        try:
            (Path(usb_device) / "remove").write_text("1\n")
        except OSError as exc:
            raise DiskError(f"cannot power off {devnode} ({usb_device}): {exc.strerror}") from exc
        return
    if Path(devnode).name.startswith("loop"):
        await _tool("losetup", "--detach", devnode)
        await _until_detached(Path(devnode).name)
        return
    raise DiskError(
        f"{devnode} is neither on USB nor a loop device: coffre cannot power it off",
        hint="unmounted already: it is safe to remove once its activity light is off",
    )


#: Seconds a loop device may stay bound after its detach (udev still probing it).
DETACH_WAIT = 10.0


async def _until_detached(name: str, *, within: float = DETACH_WAIT) -> None:
    """Return once loop device ``name`` is unbound; raise DiskError after ``within`` s.

    The kernel detaches a loop device that is still open (udev probing it
    after the unmount) only when the last user closes it: "safe to remove"
    must not be said before (its ``/sys/block/NAME/loop`` folder goes then).
    """
    bound = Path("/sys/block") / name / "loop"
    deadline = asyncio.get_running_loop().time() + within
    while bound.exists():
        if asyncio.get_running_loop().time() > deadline:
            raise DiskError(
                f"/dev/{name} is still in use {within:.0f} s after it was detached",
                hint=f"see `fuser -v /dev/{name}`; it is unmounted, so nothing is lost",
            )
        await asyncio.sleep(0.05)


async def make_filesystem(devnode: str, label: str) -> None:
    """Create an ext4 filesystem labelled ``label`` on ``devnode`` (ERASES it)."""
    await _tool("mkfs.ext4", "-q", "-F", "-L", label, devnode)


async def filesystem_of(devnode: str) -> tuple[str, str]:
    """(UUID, type) of the filesystem on ``devnode``, read by blkid; ('', '') if none."""
    try:
        out = await _tool("blkid", "-p", "-o", "export", devnode)
    except DiskError:
        return "", ""
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return values.get("UUID", ""), values.get("TYPE", "")


def in_use(mountpoint: Path, *, ignore: frozenset[int] = frozenset()) -> bool:
    """Whether a process (but ``ignore``) works in, or has a file open under, ``mountpoint``."""
    prefix = str(mountpoint).rstrip("/") + "/"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in ignore:
            continue
        links = [proc / "cwd", proc / "root"]
        with contextlib.suppress(OSError):
            links += list((proc / "fd").iterdir())
        for link in links:
            try:
                where = str(link.readlink())
            except OSError:
                continue
            if where == str(mountpoint) or where.startswith(prefix):
                return True
    return False
