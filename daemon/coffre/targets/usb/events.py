"""From disk events to disk jobs: plug → job, unknown disks ignored, enrollment follow-up.

The daemon hands every DiskAppeared / DiskGone here. An enrolled disk that
appears gets a disk job; an unknown one is logged once and never touched.
Events about a disk whose job runs are the echo of that job (udev re-probes
a device when a mount closes it, a loop detach announces a change) and are
ignored; an appearance is confirmed by reading the device's filesystem
before acting, so a stale event about a powered-off disk starts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from coffre.core.clock import Clock, local_iso
from coffre.core.config_types import Config
from coffre.core.errors import DiskAbsent, UsageError
from coffre.core.reports import DiskView
from coffre.core.rotation import rotation
from coffre.jobs.queue import Job, JobRequest
from coffre.storage.state import State
from coffre.targets.usb import devices
from coffre.targets.usb.udev import DiskAppeared, DiskEvent, DiskGone

Submit = Callable[[JobRequest], Job]
Probe = Callable[[str], Awaitable[tuple[str, str]]]


class DiskWatch:
    """Keeps state's view of the plugged disks and queues their jobs."""

    def __init__(
        self,
        config: Config,
        state: State,
        clock: Clock,
        logger: logging.Logger,
        submit: Submit,
        busy: Callable[[str], bool],
        *,
        probe: Probe = devices.filesystem_of,
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._logger = logger
        self._submit = submit
        self._probe = probe
        #: Whether a job on that disk is queued or running: its events are our own echo.
        self.busy = busy
        #: Every block device with a filesystem seen, ours or not, by devpath.
        self.devices: dict[str, DiskAppeared] = {}
        self._unknown_logged: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Jobs waiting for a disk to be plugged in (a restore from it), by disk name.
        self._waiting: dict[str, asyncio.Future[None]] = {}

    def startup(self, present: list[DiskAppeared]) -> None:
        """At start: forget what state thought was plugged, take what the kernel shows."""
        now = self._clock.now()
        for disk in self._state.disks():
            if disk.present and disk.devpath:
                self._state.disk_gone(disk.devpath, now)
        for event in present:
            self.handle(event, confirmed=True)

    def handle(self, event: DiskEvent, *, confirmed: bool = False) -> None:
        """React to one disk event (called in the event loop)."""
        if isinstance(event, DiskGone):
            self.devices.pop(event.devpath, None)
            name = self._state.disk_gone(event.devpath, self._clock.now())
            if name is not None:
                self._logger.info("disk %s is gone", name)
            return
        self.devices[event.devpath] = event
        disk = self._state.disk_by_uuid(event.fs_uuid)
        if disk is None:
            if (event.devpath, event.fs_uuid) not in self._unknown_logged:
                self._unknown_logged.add((event.devpath, event.fs_uuid))
                self._logger.info(
                    "unknown disk at %s (filesystem %s %s): not mounted, not touched; "
                    "enroll it with `coffre disk enroll %s --name NAME` to use it",
                    event.devnode,
                    event.fs_type,
                    event.fs_uuid,
                    event.devnode,
                )
            return
        waiter = self._waiting.get(disk.name)
        if waiter is not None and not waiter.done():
            # Plugged for the job that waits for it (a restore): that job
            # uses it and powers it off; no backup job of its own.
            self._spawn(self._confirm_for_waiter(disk.name, event, waiter))
            return
        if self.busy(disk.name):
            return
        if confirmed:
            self._plugged(disk.name, event)
            return
        self._spawn(self._confirm(disk.name, event))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm_for_waiter(
        self, name: str, event: DiskAppeared, waiter: asyncio.Future[None]
    ) -> None:
        uuid, _ = await self._probe(event.devnode)
        if uuid != event.fs_uuid or waiter.done():
            return
        self._state.disk_seen(
            name, event.devnode, event.devpath, event.usb_device, self._clock.now()
        )
        self._logger.info(
            "disk %s plugged in at %s, for the job waiting for it", name, event.devnode
        )
        waiter.set_result(None)

    async def wait_plugged(self, name: str, within: float) -> None:
        """Return once the enrolled disk ``name`` is plugged in (at once if it is).

        A disk plugged meanwhile is handed to the waiting job instead of
        getting a backup job. Raises DiskAbsent after ``within`` seconds.
        """
        disk = self._state.disk(name)
        if disk is not None and disk.present:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[name] = waiter
        try:
            if disk is not None:
                # Seen by udev while a job of this disk made us ignore it.
                for event in list(self.devices.values()):
                    if event.fs_uuid == disk.fs_uuid:
                        self._spawn(self._confirm_for_waiter(name, event, waiter))
            await asyncio.wait_for(waiter, within)
        except TimeoutError:
            raise DiskAbsent(
                f"disk {name} was not plugged in within {within / 60:.0f} minute(s)",
                hint="plug it in, then ask again",
            ) from None
        finally:
            self._waiting.pop(name, None)

    async def _confirm(self, name: str, event: DiskAppeared) -> None:
        uuid, _ = await self._probe(event.devnode)
        if uuid == event.fs_uuid and not self.busy(name):
            self._plugged(name, event)

    def _plugged(self, name: str, event: DiskAppeared) -> None:
        self._state.disk_seen(
            name, event.devnode, event.devpath, event.usb_device, self._clock.now()
        )
        self._logger.info("disk %s plugged in at %s", name, event.devnode)
        self.queue_disks((name,), reason="plugged")

    def queue_disks(self, names: tuple[str, ...], *, reason: str) -> None:
        """Queue one disk job per disk (a disk's own job: one can fail alone)."""
        for name in names:
            self._submit(JobRequest(kind="disk", targets=(name,), reason=reason))

    def present_disks(self) -> tuple[str, ...]:
        """The enrolled disks plugged in now, for the nightly run."""
        return tuple(d.name for d in self._state.disks() if d.present)

    def enrolled(self, name: str, device: str) -> None:
        """After a successful enrollment: the disk is plugged in, back it up now."""
        event = next((e for e in self.devices.values() if e.devnode == device), None)
        if event is None:
            self._logger.warning("disk %s enrolled, but %s is not seen by udev", name, device)
            return
        disk = self._state.disk(name)
        if disk is not None:
            self._plugged(
                name,
                DiskAppeared(
                    devpath=event.devpath,
                    devnode=event.devnode,
                    fs_uuid=disk.fs_uuid,
                    fs_type=event.fs_type,
                    fs_label=event.fs_label,
                    usb_device=event.usb_device,
                ),
            )

    def forget(self, name: str) -> None:
        if self.busy(name):
            raise UsageError(f"disk {name} has a job queued or running", hint="wait for its end")
        if not self._state.forget_disk(name):
            raise UsageError(f"no enrolled disk named {name!r}")
        self._logger.info("disk %s forgotten (nothing on it was touched)", name)

    def report(self) -> list[DiskView]:
        """Every enrolled disk as `coffre disk list` and status show it."""
        now, disks = self._clock.now(), self._state.disks()
        tz = self._config.schedule.timezone
        rows: list[DiskView] = []
        for disk in disks:
            where = rotation(disk, disks, now, self._config.usb)
            # A partial backup (warnings) made its archive: it is the disk's last backup.
            last = self._state.last_completed(disk.name)
            failure = self._state.last_failure(disk.name)
            if failure is not None and last is not None and failure.id < last.id:
                failure = None  # a later success settled it
            rows.append(
                {
                    "name": disk.name,
                    "fs_uuid": disk.fs_uuid,
                    "present": disk.present,
                    "busy": self.busy(disk.name),
                    "safe_to_remove": disk.safe_to_remove,
                    "last_backup": local_iso(last.finished_at if last else None, tz),
                    "last_seen": local_iso(disk.last_seen, tz),
                    "days_since_swap": where.days_since_swap,
                    "swap_due": where.swap_due,
                    "missing": where.missing,
                    "free_bytes": disk.free_bytes,
                    "last_failure": None
                    if failure is None
                    else {
                        "kind": failure.error_kind,
                        "message": failure.error_message,
                        "at": local_iso(failure.finished_at, tz),
                    },
                }
            )
        return rows
