"""Pure: which Previous Versions to keep, which go, and when the next one is due.

Two kinds of versions (read-only snapshots of the share, see ``gmt_names``):

- ``office``: taken every ``every_minutes`` during the office hours (e.g.
  08:00 to 19:00, Monday to Friday, the box's timezone), so that a letter
  overwritten an hour ago can be taken back from Windows' Previous Versions;
- ``backup``: the snapshot a backup read (one per backup run).

Every version is kept ``keep_hours`` hours; besides, the last ``backup``
version of each of the ``keep_nights`` newest local days that have one (J,
J-1, J-2) is kept. The rest expires. When the filesystem fills, versions go
oldest first, whatever their kind (``by_age``), but never one a running job
holds. A version dated after now (a clock set back) is kept, not ranked: it
goes when it is older than ``keep_hours`` again, or for space.

No I/O, no clock: times are given, timezone-aware.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["OfficeHours", "Version", "by_age", "expired", "next_office", "office_due"]

Kind = Literal["office", "backup"]


@dataclass(frozen=True)
class Version:
    """A Previous Version: its folder ``name``, when it was taken (aware), its ``kind``."""

    name: str
    taken_at: datetime
    kind: Kind


@dataclass(frozen=True)
class OfficeHours:
    """When office versions are taken: ``days`` (0 = Monday), from ``start`` to ``end``
    (minutes since local midnight, ``end`` after ``start``, up to 1440), every
    ``every_minutes``, in ``tz``."""

    days: frozenset[int]
    start: int
    end: int
    every_minutes: int
    tz: ZoneInfo


def expired(
    versions: Iterable[Version],
    now: datetime,
    tz: ZoneInfo,
    *,
    keep_hours: int,
    keep_nights: int,
) -> tuple[Version, ...]:
    """The versions the schedule no longer keeps, oldest first.

    Kept: every version younger than ``keep_hours`` (or dated after ``now``),
    and the newest ``backup`` version of each of the ``keep_nights`` newest
    local days (in ``tz``) that have one. Raises ValueError for a naive time.
    """
    _aware(now)
    every = sorted(versions, key=_order)
    for version in every:
        _aware(version.taken_at)
    young = now - timedelta(hours=keep_hours)
    nightly = _last_backup_of_days(every, tz, keep_nights)
    gone = [v for v in every if v.taken_at <= young and v.name not in nightly]
    return tuple(gone)


def by_age(versions: Iterable[Version], held: Collection[str]) -> tuple[Version, ...]:
    """The versions that may go for space, oldest first; none of those named in ``held``."""
    return tuple(v for v in sorted(versions, key=_order) if v.name not in held)


def office_due(last_office: datetime | None, now: datetime, hours: OfficeHours) -> bool:
    """Whether an office version is due at ``now``: a slot of the office hours has
    begun since ``last_office`` (None: never taken)."""
    slot = _current_slot(now, hours)
    return slot is not None and (last_office is None or last_office < slot)


def next_office(now: datetime, hours: OfficeHours) -> datetime:
    """The first office slot strictly after ``now`` (aware, in ``hours.tz``).

    Looks up to eight days ahead; an office week without any day (no
    ``days``) gives ``now`` plus eight days, so a caller's timer still wakes.
    """
    _aware(now)
    local = now.astimezone(hours.tz)
    for offset in range(9):
        day = local.date() + timedelta(days=offset)
        for slot in _slots(day, hours):
            if slot > now:
                return slot
    return now + timedelta(days=8)


def _current_slot(now: datetime, hours: OfficeHours) -> datetime | None:
    """The latest office slot at or before ``now`` on ``now``'s local day, within the hours."""
    _aware(now)
    local = now.astimezone(hours.tz)
    minute = local.hour * 60 + local.minute
    if not hours.start <= minute < hours.end:
        return None
    started = [s for s in _slots(local.date(), hours) if s <= now]
    return started[-1] if started else None


def _slots(day: date, hours: OfficeHours) -> Sequence[datetime]:
    """The office slots of the local ``day`` (none on a day off)."""
    if day.weekday() not in hours.days:
        return ()
    midnight = datetime(day.year, day.month, day.day, tzinfo=hours.tz)
    slots = []
    for minute in range(hours.start, hours.end, hours.every_minutes):
        # Wall-clock slots: 08:00 stays 08:00 across a DST change.
        wall = midnight.replace(hour=minute // 60, minute=minute % 60)
        slots.append(wall)
    return slots


def _last_backup_of_days(versions: Sequence[Version], tz: ZoneInfo, nights: int) -> set[str]:
    """The names of the newest ``backup`` version of each of the ``nights`` newest
    local days having one (``versions`` sorted oldest first)."""
    newest: dict[date, str] = {}
    for version in versions:
        if version.kind == "backup":
            newest[version.taken_at.astimezone(tz).date()] = version.name
    days = sorted(newest, reverse=True)[:nights]
    return {newest[day] for day in days}


def _order(version: Version) -> tuple[datetime, str]:
    return (version.taken_at, version.name)


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware time is needed, not {moment!r}")
