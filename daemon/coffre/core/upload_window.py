"""Pure: the upload limit of an offsite target at a given local time.

A target's upload windows say how fast it may upload, and when:
``days = "mon-fri", from = "08:00", to = "19:00", limit_kbps = 2000`` keeps
uploads to 2000 KiB/s on weekday office hours. Outside every window there is
no limit. Where windows overlap, the lowest limit wins (the practice's
uplink is shared: the stricter rule is the one someone asked for). A window
whose end is not after its start runs past midnight: its days name the day
it starts on (``days = "fri", from = "22:00", to = "06:00"`` is the night of
Friday to Saturday). ``to = "24:00"`` means the end of the day.

No I/O, no clock: times are given, in the box's timezone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from coffre.core.config_types import UploadWindow

__all__ = ["DAY_NAMES", "limit_at", "next_change", "parse_days", "parse_minute"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")


def parse_days(text: str) -> frozenset[int]:
    """The weekdays (0 = Monday) of ``"mon-fri"``, ``"sat,sun"``, ``"fri-mon"`` or ``"all"``.

    Ranges may wrap around the week's end. Raises ValueError naming what is
    wrong for anything else (an unknown name, an empty item).
    """
    words = text.strip().lower()
    if words in ("all", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for item in words.split(","):
        first, dash, last = (part.strip() for part in item.partition("-"))
        start = _day(first, text)
        end = _day(last, text) if dash else start
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def _day(name: str, text: str) -> int:
    try:
        return DAY_NAMES.index(name)
    except ValueError:
        raise ValueError(
            f"{text!r}: {name!r} is not a day; use {', '.join(DAY_NAMES)}, "
            'ranges such as "mon-fri", lists such as "sat,sun", or "all"'
        ) from None


def parse_minute(text: str) -> int:
    """Minutes since midnight of ``"HH:MM"`` (``"24:00"`` gives 1440); ValueError otherwise."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f'expected a time "HH:MM" (00:00 to 24:00), got {text!r}')
    if match[1] is None:
        return _MINUTES_PER_DAY
    return int(match[1]) * 60 + int(match[2])


def _active(window: UploadWindow, moment: datetime) -> bool:
    """Whether ``window`` covers the local wall-clock time ``moment``."""
    minute = moment.hour * 60 + moment.minute
    weekday = moment.weekday()
    if window.start < window.end:
        return weekday in window.days and window.start <= minute < window.end
    # Past midnight: the evening part on its own days, the morning part the day after.
    if weekday in window.days and minute >= window.start:
        return True
    return (weekday - 1) % 7 in window.days and minute < window.end


def limit_at(windows: Sequence[UploadWindow], moment: datetime) -> int | None:
    """The upload limit in KiB/s at local time ``moment``; None when no window covers it.

    ``moment`` is read as a wall-clock time (its date, hour and minute), so
    it must already be in the box's timezone.
    """
    limits = [w.limit_kbps for w in windows if _active(w, moment)]
    return min(limits) if limits else None


def next_change(windows: Sequence[UploadWindow], moment: datetime) -> datetime | None:
    """The first minute boundary after ``moment`` where ``limit_at`` differs; None if never.

    Looks a week ahead (the windows repeat weekly). The result keeps
    ``moment``'s tzinfo and is computed on the wall clock: across a DST
    change it may be an hour off, which only moves a limit change by that
    hour once a year.
    """
    if not windows:
        return None
    current = limit_at(windows, moment)
    # Window edges fall on whole minutes: test each one of the coming week.
    edge = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(7 * _MINUTES_PER_DAY):
        if limit_at(windows, edge) != current:
            return edge
        edge += timedelta(minutes=1)
    return None
