"""The clock as decisions see it: passed in, so that tests can give a fake one.

The machine's clock itself is :class:`coffre.daemon.clock.SystemClock`: core reads no clock."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...


def local_iso(moment: datetime | None, tz: tzinfo) -> str | None:
    """``moment`` (timezone-aware) as ISO 8601 in ``tz``; None for None. Raises nothing.

    Every time shown to people (status, disk list, find, restore) is in the
    box's timezone (``schedule.timezone``), the one of archive names and of
    retention's days: support reads them as the practice lives them.
    """
    return None if moment is None else moment.astimezone(tz).isoformat()
