"""When the nightly run is due, and which run to make after downtime.

Pure: no I/O and no clock; ``now`` is always given. The run is due once per
local calendar day, at a local time of day (``at``, naive) in a timezone.

Daylight saving time, as :func:`due_at` resolves it:

- a local time that does not exist that day (spring forward: 02:30 on
  2026-03-29 in Europe/Paris) runs as if the clock had not jumped yet, i.e.
  as many minutes after the gap as it was into it: 02:30 CET is 01:30Z, shown
  03:30 CEST. This is Python's ``fold=0`` for a missing time (PEP 495); the
  run is late by the gap, never skipped.
- a local time that happens twice (fall back: 02:30 on 2026-10-25 in
  Europe/Paris) runs at its first occurrence, 02:30 CEST = 00:30Z
  (``fold=0``), and only then: the day has one run.

Two consequences in rare zones, which callers need not special-case:

- where a gap reaches the end of the day (America/Nuuk springs forward from
  23:00 to 24:00 on the last Saturday of March), a run due in the gap lands
  on the next local date, shortly before that date's own run;
- where a whole calendar day does not exist (Pacific/Apia skipped
  2011-12-30), that day's run is the same instant as the next day's: the
  due instants are one run, not two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# due_at is monotonic in the day (no zone's offset jumps by more than a day),
# so the due instants around ``now`` are those of the local days around it.
# Three days each way is wider than any zone's jump needs.
_WINDOW = range(-3, 4)


def due_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (aware, UTC) of the run due on local ``day`` at local time ``at`` in ``tz``.

    A missing local time runs after the gap, shifted by the gap; an ambiguous
    one at its first occurrence (see the module docstring). ``at`` must be
    naive (its ``fold`` is ignored); raises ValueError otherwise.
    """
    if at.tzinfo is not None:
        raise ValueError(f"the time of day must be naive (local to {tz.key}), got {at!r}")
    local = datetime.combine(day, at.replace(fold=0), tzinfo=tz)
    return local.astimezone(UTC)


def last_due(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest due instant at or before ``now`` (aware), in UTC.

    Raises ValueError when ``now`` is naive or ``at`` is aware.
    """
    return max(d for d in _around(now, at, tz) if d <= now)


def next_due(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The earliest due instant strictly after ``now`` (aware), in UTC.

    Raises ValueError when ``now`` is naive or ``at`` is aware.
    """
    return min(d for d in _around(now, at, tz) if d > now)


def catch_up_due(
    last_run_due: datetime | None, now: datetime, at: time, tz: ZoneInfo
) -> datetime | None:
    """The due instant a run should be made for now, or None when none is due.

    ``last_run_due`` is the due instant of the last run made (None: never).
    When it is older than :func:`last_due` of ``now``, that one instant is
    returned: after several missed nights, ONE catch-up run, not one per
    night. When it is :func:`last_due` of ``now``, None: that run was made.

    A ``last_run_due`` later than ``now`` can only come from a clock that
    stepped back (an RTC reset, a bad time source later corrected). It is not
    trusted: the last due instant is returned, rather than making no backup
    until the clock reaches a date that may be years away.

    Raises ValueError when ``now`` or ``last_run_due`` is naive, or ``at`` aware.
    """
    _check_aware(now, "now")
    if last_run_due is not None:
        _check_aware(last_run_due, "last_run_due")
    latest = last_due(now, at, tz)
    if last_run_due is None or last_run_due < latest or last_run_due > now:
        return latest
    return None


def _around(now: datetime, at: time, tz: ZoneInfo) -> list[datetime]:
    _check_aware(now, "now")
    today = now.astimezone(tz).date()
    return [due_at(today + timedelta(days=k), at, tz) for k in _WINDOW]


def _check_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
