"""The only pyudev import: raw block-device events become DiskAppeared / DiskGone.

The monitor is read from the daemon's event loop (``loop.add_reader`` on its
netlink socket), never from a thread. Disks already plugged in when the
daemon starts produce no event: ``present()`` enumerates them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Filesystems coffre will put a repository on (POSIX semantics: borg needs
#: them; FAT and NTFS disks must be formatted by ``coffre disk enroll --format``).
SUPPORTED_FILESYSTEMS = frozenset({"ext4", "ext3", "xfs", "btrfs"})


@dataclass(frozen=True)
class DiskAppeared:
    """A block device carrying a filesystem is there (plugged, or media inserted).

    ``devpath`` is the kernel's path (the key of later events, valid after
    removal too); ``usb_device`` the sysfs path of the USB device to power off,
    None for other buses (loop devices in tests).
    """

    devpath: str
    devnode: str
    fs_uuid: str
    fs_type: str
    fs_label: str
    usb_device: str | None


@dataclass(frozen=True)
class DiskGone:
    """The block device at ``devpath`` went away, or lost its medium or filesystem."""

    devpath: str


DiskEvent = DiskAppeared | DiskGone


def translate(
    action: str, devpath: str, properties: Mapping[str, str], usb_device: str | None
) -> DiskEvent | None:
    """Pure: one udev event of subsystem ``block`` as a disk event, or None if irrelevant.

    ``add`` and ``change`` (loop devices and card readers announce media that
    way) with a filesystem UUID are appearances; ``remove``, and a ``change``
    that lost the filesystem (a loop device detached), are departures.
    """
    if action == "remove":
        return DiskGone(devpath)
    if action not in ("add", "change"):
        return None
    uuid = properties.get("ID_FS_UUID", "")
    devnode = properties.get("DEVNAME", "")
    if not uuid or not devnode or properties.get("ID_FS_USAGE", "filesystem") != "filesystem":
        return DiskGone(devpath) if action == "change" else None
    return DiskAppeared(
        devpath=devpath,
        devnode=devnode,
        fs_uuid=uuid,
        fs_type=properties.get("ID_FS_TYPE", ""),
        fs_label=properties.get("ID_FS_LABEL", ""),
        usb_device=usb_device,
    )


def _usb_device(device: Any) -> str | None:
    parent = device.find_parent("usb", "usb_device")
    return None if parent is None else str(parent.sys_path)


def _event(action: str, device: Any) -> DiskEvent | None:
    properties = {str(k): str(v) for k, v in device.properties.items()}
    usb = _usb_device(device) if action != "remove" else None
    return translate(action, str(device.device_path), properties, usb)


class UdevWatcher:
    """Watches block devices through udev's netlink monitor, in the event loop.

    ``on_event`` is called in the loop for each DiskAppeared / DiskGone.
    """

    def __init__(self, on_event: Callable[[DiskEvent], None], *, logger: logging.Logger) -> None:
        import pyudev

        self._on_event = on_event
        self._logger = logger
        self._context = pyudev.Context()
        self._monitor = pyudev.Monitor.from_netlink(self._context, source="udev")
        self._monitor.filter_by("block")
        self._loop: asyncio.AbstractEventLoop | None = None

    def present(self) -> list[DiskAppeared]:
        """The block devices carrying a filesystem now (those plugged in before we started)."""
        found: list[DiskAppeared] = []
        for device in self._context.list_devices(subsystem="block"):
            event = _event("add", device)
            if isinstance(event, DiskAppeared):
                found.append(event)
        return found

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start receiving events (call present() after, so no plug falls in between)."""
        self._monitor.start()
        self._loop = loop
        loop.add_reader(self._monitor.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._monitor.fileno())
            self._loop = None

    def _readable(self) -> None:
        # Read what is queued without blocking: poll(0) returns None when empty.
        while (device := self._monitor.poll(timeout=0)) is not None:
            event = _event(str(device.action), device)
            if event is not None:
                self._on_event(event)


def describe(events: Iterable[DiskEvent]) -> str:
    """A short human list of events, for logs (no file names: these are devices)."""
    return ", ".join(
        f"{e.devnode} ({e.fs_type} {e.fs_uuid})" if isinstance(e, DiskAppeared) else e.devpath
        for e in events
    )
