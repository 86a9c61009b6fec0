"""The share's desk: read points for backups, Previous Versions on their schedule, room kept.

One per daemon. It is the only code that takes or removes snapshots of the
share, one operation at a time (a lock), and it knows which versions a
running backup holds, so that neither the schedule nor a full filesystem
takes one away from under borg.

- :meth:`ShareDesk.take_for_backup`: the run's read point. With snapshots
  (btrfs), wait (bounded) for a quiet share, then snapshot it as a ``backup``
  version; without, wait for quiet, then read the live share. Never raises
  for a snapshot: it falls back to the live share and says why.
- :meth:`ShareDesk.view`: the working folder and paths one ``borg create``
  gets from a point (the version bind-mounted at the target's fixed path, taken
  away after).
- :meth:`ShareDesk.tend`: the office versions when due, the expired ones
  removed, room made; the daemon's loop calls it, and a restore asks for room.
- :meth:`ShareDesk.clean_up_at_start`: the views a killed run left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from coffre.consistency.layout import Layout, layout_of
from coffre.consistency.quiescence import Quiescence
from coffre.consistency.quiet import Consistency
from coffre.consistency.read_point import ReadPoint, SourceView
from coffre.consistency.survey import SURVEY_KEY, Survey
from coffre.consistency.version_kinds import VersionKinds
from coffre.consistency.version_plan import (
    Kind,
    OfficeHours,
    Version,
    by_age,
    expired,
    office_due,
)
from coffre.consistency.versions import Folders, VersionFolders
from coffre.core.clock import Clock
from coffre.core.config_types import Config
from coffre.core.errors import SnapshotError, SnapshotNoSpace, StateError
from coffre.core.upload_window import parse_days, parse_minute
from coffre.storage import logs
from coffre.storage.state import State

__all__ = ["ShareDesk", "office_hours"]

#: Seconds given to btrfs to free a removed version's space before looking again.
FREE_WAIT = 30.0


def office_hours(config: Config) -> OfficeHours:
    """The office hours of ``[snapshots]`` (checked when the configuration was read)."""
    s = config.snapshots
    return OfficeHours(
        days=parse_days(s.office_days),
        start=parse_minute(s.office_from),
        end=parse_minute(s.office_to),
        every_minutes=s.every_minutes,
        tz=config.schedule.timezone,
    )


class ShareDesk:
    """Snapshots of ``config``'s sources (see the module doc)."""

    def __init__(
        self,
        config: Config,
        state: State,
        clock: Clock,
        logger: logging.Logger,
        quiescence: Quiescence,
        *,
        folders: Callable[[], Folders] | None = None,
    ) -> None:
        self._config, self._clock, self._logger = config, clock, logger
        self._state = state
        self._quiescence = quiescence
        try:
            layout = layout_of(config.source.paths)
            self._bad_layout: str | None = None
        except ValueError as error:
            layout, self._bad_layout = Layout(tuple(config.source.paths)), str(error)
        self._folders: Folders = folders() if folders else VersionFolders(layout)
        self._kinds = VersionKinds(state)
        self._lock = asyncio.Lock()
        self._held: Counter[str] = Counter()

    # --- backups ----------------------------------------------------------------

    async def take_for_backup(self, *, bound: int | None = None) -> ReadPoint:
        """The run's read point, held until :meth:`release`; the quiet wait lasts at most
        ``bound`` seconds (default ``quiescence.max_wait_seconds``). Raises nothing but
        cancellation (and what the quiet wait raises for a share that cannot be read)."""
        why = await self._why_not_snapshots()
        if why is None:
            await self._room_or_log()
            try:
                point = await self._quiescence.snapshot(
                    self._take_backup_version, self._drop, self._folders.newest_change, bound=bound
                )
            except SnapshotError as error:
                why = f"the snapshot failed: {error}"
            else:
                for name in set(point.versions.values()):
                    self._held[name] += 1
                self._keep(await self._survey(""))
                return point
        self._logger.warning(
            "backup reads the live share: %s", why, extra={"MESSAGE_ID": logs.MSG_SNAPSHOT_LIVE}
        )
        self._keep(await self._survey(why))
        return ReadPoint(await self._quiescence.live(why, bound=bound))

    def release(self, point: ReadPoint) -> None:
        """A run is done with ``point``: its version may expire. Raises nothing."""
        for name in set(point.versions.values()):
            self._held[name] -= 1
            if self._held[name] <= 0:
                del self._held[name]

    @asynccontextmanager
    async def view(self, point: ReadPoint, target: str) -> AsyncIterator[SourceView]:
        """What ``target``'s create reads from ``point``; its view removed afterwards.

        A view that cannot be shown (a mount refused, a folder gone)
        reads the live share instead, said in the comment. Raises nothing of
        its own but cancellation.
        """
        sources = self._config.source.paths
        consistency = point.consistency
        if point.versions:
            name = next(iter(point.versions.values()))
            try:
                async with self._lock:
                    root = await asyncio.to_thread(self._folders.make_view, name, target)
            except (SnapshotError, OSError) as error:
                why = f"the snapshot could not be shown to borg: {error}"
                self._logger.warning("backup of %s reads the live share: %s", target, why)
                consistency = Consistency("live", False, 0.0, None, self._clock.now(), why_live=why)
            else:
                relative = tuple(self._folders.layout.relative(s) for s in sources)
                try:
                    yield SourceView(root, relative, consistency.comment(), consistency)
                finally:
                    await self._drop_view(target)
                return
        yield SourceView(None, tuple(str(s) for s in sources), consistency.comment(), consistency)

    # --- the schedule and room ----------------------------------------------------

    async def tend(self) -> None:
        """An office version if one is due, the expired versions removed, room made.
        Raises nothing: what fails is logged (the next call tries again)."""
        why = await self._why_not_snapshots()
        if why is None:
            try:
                await self._office_if_due()
                await self._expire()
                await self._room()
            except (SnapshotError, OSError) as error:
                self._logger.error(
                    "Previous Versions: %s", error, extra={"MESSAGE_ID": logs.MSG_SNAPSHOT_FAILED}
                )
        # Also without snapshots: status and the metrics say so from the start.
        self._keep(await self._survey(why or ""))

    async def make_room(self) -> list[str]:
        """Remove the oldest versions no run holds until the filesystem has
        ``snapshots.min_free_percent`` free (or none is left); returns their names.
        Raises SnapshotError or OSError."""
        if await self._why_not_snapshots() is not None:
            return []
        return await self._room()

    async def make_room_quietly(self) -> None:
        """:meth:`make_room`, what fails logged (a restore never fails for the versions)."""
        if await self._why_not_snapshots() is None:
            await self._room_or_log()

    async def _room(self) -> list[str]:
        """:meth:`make_room` once snapshots are known to be usable."""
        removed: list[str] = []
        async with self._lock:
            while not await asyncio.to_thread(self._roomy):
                oldest = await self._remove_oldest()
                if oldest is None:
                    break
                removed.append(oldest)
        if removed:
            self._logger.warning(
                "the share's filesystem is short of room: removed %d Previous Version(s), "
                "oldest first (%s)",
                len(removed),
                ", ".join(removed),
                extra={"MESSAGE_ID": logs.MSG_SNAPSHOT_ROOM},
            )
        return removed

    async def _room_or_log(self) -> None:
        """:meth:`_room`, what fails logged: nothing fails for the versions."""
        try:
            await self._room()
        except (SnapshotError, OSError) as error:
            self._logger.error(
                "Previous Versions: no room made: %s",
                error,
                extra={"MESSAGE_ID": logs.MSG_SNAPSHOT_FAILED},
            )

    async def clean_up_at_start(self) -> None:
        """Remove the backup views a killed run left. Raises nothing (logged)."""
        if await self._why_not_snapshots() is not None:
            return
        try:
            async with self._lock:
                left = await asyncio.to_thread(self._folders.drop_all_views)
        except (SnapshotError, OSError) as error:
            self._logger.error("the views a cut-short backup left: %s", error)
            return
        for target in left:
            self._logger.warning(
                "removed the snapshot a cut-short backup of %s was reading",
                target,
                extra={"MESSAGE_ID": logs.MSG_SNAPSHOT_ROOM},
            )

    async def survey(self) -> Survey:
        """The share now (see ``consistency.survey``), for status. Raises nothing: a folder
        that cannot be read shows as why snapshots cannot be."""
        return await self._survey((await self._why_not_snapshots()) or "")

    async def _survey(self, why: str) -> Survey:
        """The share now, ``why`` snapshots cannot be taken already known (empty: they can)."""
        versions: tuple[Version, ...] = ()
        free = total = None
        if not why:
            try:
                versions = await self._listed()
                free, total = await asyncio.to_thread(self._folders.free)
            except OSError as error:
                why = f"the Previous Versions cannot be read: {error}"
        return Survey(self._clock.now(), why, versions, free, total)

    def _keep(self, survey: Survey) -> None:
        """``survey`` kept in state's meta, where the exporter reads it (a scrape lists no
        folder). A state that cannot write keeps the previous one."""
        with contextlib.suppress(StateError):
            self._state.set_meta(SURVEY_KEY, survey.to_json())

    # --- inside -------------------------------------------------------------------

    async def _why_not_snapshots(self) -> str | None:
        """None when backups can snapshot the share; else why not (status's words)."""
        if not self._config.snapshots.enabled:
            return "snapshots are off ([snapshots] enabled = false)"
        if self._bad_layout is not None:
            return self._bad_layout
        return await asyncio.to_thread(self._folders.unusable)

    async def _take_backup_version(self, at: datetime) -> dict[Path, str]:
        return await self._take(at, "backup")

    async def _take(self, at: datetime, kind: Kind) -> dict[Path, str]:
        """Version ``at`` of every source; on a full filesystem, the oldest version no run
        holds removed (whatever the free space says: btrfs refused) and one more try."""
        async with self._lock:
            try:
                name = await asyncio.to_thread(self._folders.take, at)
            except SnapshotNoSpace:
                oldest = await self._remove_oldest()
                if oldest is not None:
                    self._logger.warning(
                        "the share's filesystem is full: removed Previous Version %s",
                        oldest,
                        extra={"MESSAGE_ID": logs.MSG_SNAPSHOT_ROOM},
                    )
                name = await asyncio.to_thread(self._folders.take, at)
        with contextlib.suppress(StateError):  # a kind unknown counts as office: no failure
            self._kinds.record(name, kind)
        return {s: name for s in self._config.source.paths}

    async def _remove_oldest(self) -> str | None:
        """The oldest version no run holds removed, its space waited for; its name (None:
        none to remove). The caller holds the lock. Raises SnapshotError, OSError."""
        candidates = by_age(await self._listed(), self._held)
        if not candidates:
            return None
        await self._remove(candidates[0].name)
        await asyncio.to_thread(self._folders.wait_freed, FREE_WAIT)
        return candidates[0].name

    async def _drop(self, versions: dict[Path, str]) -> None:
        """A just-taken version that turned out not quiet: removed before another try."""
        async with self._lock:
            for name in set(versions.values()):
                await self._remove(name)

    async def _drop_view(self, target: str) -> None:
        try:
            async with self._lock:
                await asyncio.to_thread(self._folders.drop_view, target)
        except (SnapshotError, OSError) as error:
            # The next start takes it away; the next backup of the target replaces it.
            self._logger.error("the backup view of %s could not be removed: %s", target, error)

    async def _office_if_due(self) -> None:
        """The office version of the current slot, unless taken, or the filesystem is short
        of room (a new version would only push an older one out)."""
        if not await asyncio.to_thread(self._roomy):
            return
        now = self._clock.now()
        versions = await self._listed()
        office = [v.taken_at for v in versions if v.kind == "office"]
        if office_due(max(office) if office else None, now, office_hours(self._config)):
            await self._take(now, "office")

    async def _expire(self) -> None:
        s = self._config.snapshots
        versions = await self._listed()
        gone = expired(
            versions,
            self._clock.now(),
            self._config.schedule.timezone,
            keep_hours=s.keep_hours,
            keep_nights=s.keep_nights,
        )
        async with self._lock:
            for version in gone:
                if version.name not in self._held:
                    await self._remove(version.name)

    async def _listed(self) -> tuple[Version, ...]:
        """The versions on disk, with their kinds. Raises OSError."""
        return self._kinds.of(await asyncio.to_thread(self._folders.listed))

    async def _remove(self, name: str) -> None:
        """Remove version ``name`` and forget its kind. Raises SnapshotError, OSError."""
        await asyncio.to_thread(self._folders.remove, name)
        with contextlib.suppress(StateError):
            self._kinds.forget([name])

    def _roomy(self) -> bool:
        free, total = self._folders.free()
        return total == 0 or free * 100 >= total * self._config.snapshots.min_free_percent
