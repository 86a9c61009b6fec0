"""Waiting for a quiet share before reading it (bounded), with or without a snapshot.

Quiet (``quiet.is_quiet``): no file of the share open for writing over SMB,
and nothing changed in it for ``quiescence.quiet_seconds``.

- :meth:`Quiescence.live` (no btrfs): look at the live share until it is
  quiet or ``max_wait_seconds`` have passed; borg then walks it. What borg
  reads later in the walk may still change: the record says the share was
  quiet when the walk began, nothing more.
- :meth:`Quiescence.snapshot`: wait until no SMB writer, take the snapshot,
  then look at the snapshot itself: a change within ``quiet_seconds`` before
  it was taken means a save may have been cut in two, so the snapshot is
  dropped and taken again once that change is ``quiet_seconds`` old. Past
  the bound, the last snapshot stands, recorded as not quiet.

Change times are the filesystem's, compared with the wall clock
(``time.time_ns``), not with coffre's clock: both must be the kernel's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from coffre.consistency.quiet import Consistency, Observation, is_quiet
from coffre.consistency.read_point import ReadPoint
from coffre.consistency.smb_activity import open_for_writing
from coffre.core.config_types import QuiescenceConfig
from coffre.core.errors import SmbStatusUnavailable
from coffre.storage.dirfd import opened
from coffre.storage.newest_change import MOVING, newest_change_ns

__all__ = ["Quiescence", "Versions"]

#: The versions a snapshot made: each source path and its version's name.
Versions = dict[Path, str]

#: Seconds between two looks at a share still written to.
POLL = 2.0
_NS = 1_000_000_000


class Quiescence:
    """The quiet wait over ``sources`` (see the module doc).

    ``writers`` counts the files open for writing over SMB (None: unknown);
    ``sleep`` and ``monotonic`` are the waits', ``wall`` the kernel's time of
    day that change times are compared with (tests pass their own).
    """

    def __init__(
        self,
        config: QuiescenceConfig,
        sources: Sequence[Path],
        logger: logging.Logger,
        *,
        writers: Callable[[], Awaitable[int | None]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        self._config, self._sources, self._logger = config, tuple(sources), logger
        self._writers = writers or self._smb_writers
        self._sleep, self._monotonic = sleep, monotonic
        self._wall = wall or _wall
        self._smb_said: str | None = None

    async def live(self, why_live: str, *, bound: int | None = None) -> Consistency:
        """Wait (at most ``bound`` seconds, default ``max_wait_seconds``) for the live share
        to be quiet; how it went. Raises OSError when a source cannot be read at all."""
        limit = self._config.max_wait_seconds if bound is None else bound
        began = self._monotonic()
        while True:
            seen = Observation(
                await self._writers(), await asyncio.to_thread(self._newest_live), self._wall()
            )
            waited = self._monotonic() - began
            quiet = is_quiet(seen, self._config.quiet_seconds)
            if quiet or waited >= limit:
                return Consistency("live", quiet, waited, seen.writers, seen.at, why_live)
            await self._sleep(self._pause(seen, waited, limit))

    async def snapshot(
        self,
        take: Callable[[datetime], Awaitable[Versions]],
        drop: Callable[[Versions], Awaitable[None]],
        newest: Callable[[Versions], int],
        *,
        bound: int | None = None,
    ) -> ReadPoint:
        """A snapshot taken at a quiet moment if one comes within ``bound`` seconds
        (default ``max_wait_seconds``).

        ``take(at)`` snapshots every source, ``drop`` removes such a
        snapshot, ``newest`` gives a snapshot's newest change time (ns).
        Raises what ``take`` raises (SnapshotError).
        """
        limit = self._config.max_wait_seconds if bound is None else bound
        began = self._monotonic()
        while True:
            writers = await self._writers()
            waited = self._monotonic() - began
            out_of_time = waited >= limit
            if writers and not out_of_time:
                await self._sleep(min(POLL, limit - waited))
                continue
            at = self._wall()
            versions = await take(at)
            seen = Observation(writers, _when(await asyncio.to_thread(newest, versions), at), at)
            quiet = is_quiet(seen, self._config.quiet_seconds)
            waited = self._monotonic() - began
            if quiet or waited >= limit:
                return ReadPoint(Consistency("snapshot", quiet, waited, writers, at), versions)
            await drop(versions)
            await self._sleep(self._pause(seen, waited, limit))

    def _pause(self, seen: Observation, waited: float, limit: int) -> float:
        """Until the newest change is ``quiet_seconds`` old (or a poll), within ``limit``."""
        left = max(limit - waited, 0.0)
        pause = POLL
        if not seen.writers and seen.newest_change is not None:
            age = (seen.at - seen.newest_change).total_seconds()
            pause = max(self._config.quiet_seconds - age, 0.2)
        return min(pause, left)

    def _newest_live(self) -> datetime | None:
        newest = 0
        for source in self._sources:
            with opened(os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)) as fd:
                found = newest_change_ns(fd)
            if found == MOVING:
                return self._wall()
            newest = max(newest, found)
        return datetime.fromtimestamp(newest / _NS, UTC) if newest else None

    async def _smb_writers(self) -> int | None:
        """Samba's count of files open for writing in the sources; None when it cannot
        tell (said once in the journal, until it can again)."""
        try:
            count = await open_for_writing(
                self._sources,
                smbstatus=self._config.smbstatus,
                samba_config=self._config.samba_config or None,
            )
        except SmbStatusUnavailable as error:
            if self._smb_said != str(error):
                self._logger.warning("quiet share: open files unknown: %s", error)
            self._smb_said = str(error)
            return None
        self._smb_said = None
        return count


def _wall() -> datetime:
    return datetime.fromtimestamp(time.time_ns() / _NS, UTC)


def _when(newest_ns: int, at: datetime) -> datetime | None:
    """A newest change time (ns) as a datetime; MOVING reads as ``at`` (changing now)."""
    if newest_ns == MOVING:
        return at
    return datetime.fromtimestamp(newest_ns / _NS, UTC) if newest_ns else None
