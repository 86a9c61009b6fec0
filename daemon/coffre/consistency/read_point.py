"""What a backup reads: a read point (the run's snapshot, or the live share) and its sharing.

A run of several targets (the nightly: the box's repository, then each HDS
host in the network lane) reads one point: the first target's backup takes
it, the others reuse it, and the run lets it go when its last part ends. A
USB disk's job takes its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coffre.consistency.quiet import Consistency

__all__ = ["ReadPoint", "SharedPoint", "SourceView"]


@dataclass(frozen=True)
class ReadPoint:
    """The share as a run reads it: ``versions`` maps each source path to the name of its
    read-only snapshot (empty: the live share), with how it was obtained."""

    consistency: Consistency
    versions: Mapping[Path, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceView:
    """What one borg create is given: its working folder (None: as the daemon's), the
    paths, the archive's comment, and how the share was read (None: not looked at,
    a daemon without the share's desk)."""

    cwd: Path | None
    paths: tuple[str, ...]
    comment: str
    consistency: Consistency | None


class SharedPoint:
    """A read point taken once, by whoever asks first, and let go once.

    ``get(take)`` returns the point, calling ``take`` only the first time (a
    failed ``take`` is not kept: the next ``get`` tries again). ``close()``
    calls the release given by ``take``'s caller, once.
    """

    def __init__(self) -> None:
        self._point: ReadPoint | None = None
        self._release: Callable[[ReadPoint], None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def get(
        self,
        take: Callable[[], Awaitable[ReadPoint]],
        release: Callable[[ReadPoint], None],
    ) -> ReadPoint:
        """The point, taken with ``take`` if not yet; ``release`` is what ``close`` calls."""
        async with self._lock:
            if self._point is None:
                self._point = await take()
                self._release = release
            return self._point

    def close(self) -> None:
        """Let the point go (its snapshot may then expire); idempotent; raises nothing."""
        if self._closed:
            return
        self._closed = True
        if self._point is not None and self._release is not None:
            self._release(self._point)
