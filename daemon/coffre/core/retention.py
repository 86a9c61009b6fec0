"""Which archives of a repository to keep, each with its reason, and which to delete.

Pure: no I/O and no clock. The policy (the README's opening and its
``[retention]`` keys) keeps, on every repository, the restore points a
practice needs:

- ``J``, ``J-1``, ... ``J-(daily-1)``: the *latest* archive of each of the
  ``daily`` newest local calendar days that have an archive (ranked among the
  days that have one: a day without a backup uses no slot);
- ``M``, ``M-1``, ... ``M-(monthly-1)``: the *first* archive of each of the
  ``monthly`` newest local calendar months that have an archive;
- ``checkpoint``: the newest checkpoint archive, only while it is newer than the
  newest complete archive (an interrupted ``borg create`` resumes from it);
- ``future``: given ``now``, every archive dated after ``now`` plus a
  tolerance. It is set aside: kept, takes no J or M slot, and the checkpoint
  rule does not see it. A clock gone wrong (a box without a working RTC
  booting years ahead, then set right) or a forged far-future archive would
  otherwise take J and M for as long as that future lasts, and push out
  every real restore point it outranks.

Days and months are those of the box's timezone, not UTC's: a backup at
00:30 in Paris belongs to that Paris day although it is still the previous
day in UTC.

Only archives named ``<prefix>-...`` are ours. Others are left alone: never
kept, never deleted, reported as ignored.

Guarantees (checked by property tests): the plan over what a plan kept keeps
all of it, for the same reasons, and so does the plan over what is left after
an interrupted deletion; adding archives, of any time, never revives an
archive the smaller list's plan deleted; and, for a given ``now``, adding
archives dated in the future (any number, any time after the tolerance)
changes nothing the plan keeps, or why, or deletes among the others.

``borg prune`` cannot express "the first backup of the month" (it keeps the
last archive of each period), hence this module and ``borg delete``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from coffre.core.model import Archive

CHECKPOINT = "checkpoint"
#: The reason of an archive dated after "now" (beyond the tolerance): kept, never ranked.
FUTURE = "future"


@dataclass(frozen=True)
class Kept:
    """An archive the policy keeps, and every reason it is kept (e.g. ``("J", "M")``).

    Daily reasons come before monthly ones; ``"checkpoint"`` and ``"future"``
    are never combined with another reason.
    """

    archive: Archive
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The outcome of the policy over one repository's archive list.

    ``keep``, ``delete`` and ``ignored`` partition the archives given, each
    newest first (time, then name, then id: deterministic on ties).
    """

    keep: tuple[Kept, ...]
    delete: tuple[Archive, ...]
    ignored: tuple[Archive, ...]


def slot_names(daily: int, monthly: int) -> tuple[str, ...]:
    """The reason names of the policy, in order: ``("J", "J-1", ..., "M", "M-1", ...)``.

    Raises ValueError when ``daily < 1`` or ``monthly < 0``.
    """
    _check_counts(daily, monthly)
    return tuple(_slot("J", k) for k in range(daily)) + tuple(_slot("M", k) for k in range(monthly))


def plan(
    archives: Iterable[Archive],
    *,
    prefix: str,
    daily: int,
    monthly: int,
    tz: ZoneInfo,
    now: datetime | None = None,
    future_tolerance: timedelta = timedelta(0),
) -> Plan:
    """Apply the retention policy to ``archives`` (one repository, in any order).

    ``prefix`` names our archives (``<prefix>-...``), ``daily`` (>= 1) and
    ``monthly`` (>= 0) are the numbers of daily and monthly restore points,
    ``tz`` the timezone whose calendar days and months count. ``now``
    (aware), when given, sets aside our archives dated after ``now +
    future_tolerance`` (>= 0): kept for the reason ``"future"``, never ranked,
    never deleted. Without ``now`` every archive is ranked, whatever its date.

    Returns the :class:`Plan`. Raises ValueError when the counts are out of
    range, ``prefix`` is empty, ``now`` or an archive time is naive,
    ``future_tolerance`` is negative, or two archives share a name: borg names
    are unique in a repository, and since deletion is by name, a duplicate
    could make a kept archive be deleted.
    """
    _check_counts(daily, monthly)
    if not prefix:
        raise ValueError("the archive prefix must not be empty")
    given = list(archives)
    _check_archives(given)

    ignored = [a for a in given if not a.name.startswith(prefix + "-")]
    ours = [a for a in given if a.name.startswith(prefix + "-")]
    future = set(future_archives(ours, prefix=prefix, now=now, tolerance=future_tolerance))
    reasons = _ranked_reasons([a for a in ours if a not in future], daily, monthly, tz)
    reasons.update((a, [FUTURE]) for a in future)

    return Plan(
        keep=tuple(Kept(a, tuple(reasons[a])) for a in sorted(reasons, key=_order, reverse=True)),
        delete=tuple(sorted((a for a in ours if a not in reasons), key=_order, reverse=True)),
        ignored=tuple(sorted(ignored, key=_order, reverse=True)),
    )


def future_archives(
    archives: Iterable[Archive], *, prefix: str, now: datetime | None, tolerance: timedelta
) -> tuple[Archive, ...]:
    """Our archives (``<prefix>-...``, checkpoints too) dated after ``now + tolerance``.

    Newest first. None for ``now`` means "no notion of now": nothing is in
    the future. The one definition that :func:`plan` and the clock guard
    share, so that what retention sets aside is what the guard reports.

    Raises ValueError when ``now`` or an archive time is naive, ``tolerance``
    is negative, or ``prefix`` is empty.
    """
    if not prefix:
        raise ValueError("the archive prefix must not be empty")
    # A negative tolerance would make an archive of this very minute "future":
    # kept forever by retention, reported by the guard.
    if tolerance < timedelta(0):
        raise ValueError(f"the future tolerance must not be negative, got {tolerance}")
    if now is None:
        return ()
    _check_aware(now, "now")
    horizon = now + tolerance
    found = []
    for a in archives:
        _check_aware(a.time, f"the time of archive {a.name!r}")
        if a.name.startswith(prefix + "-") and a.time > horizon:
            found.append(a)
    return tuple(sorted(found, key=_order, reverse=True))


def slots_present(
    archives: Iterable[Archive],
    *,
    prefix: str,
    daily: int,
    monthly: int,
    now: datetime,
    tz: ZoneInfo,
) -> dict[str, bool]:
    """Which restore points exist by the calendar, for monitoring.

    Unlike :func:`plan` (which ranks the days that have an archive), this
    looks at the calendar as of ``now`` (aware) in ``tz``: ``"J"`` is True iff
    one of our complete archives (not a checkpoint, named ``<prefix>-...``) is
    on today's local date, ``"J-1"`` yesterday's, ...; ``"M"`` iff one is in
    the current local month, ``"M-1"`` the previous month (across years), ...

    Returns a dict keyed by :func:`slot_names`, in that order. Raises
    ValueError for an empty ``prefix``, a naive ``now`` or archive time, and
    counts out of range.
    """
    names = slot_names(daily, monthly)
    if not prefix:
        raise ValueError("the archive prefix must not be empty")
    _check_aware(now, "now")
    given = list(archives)
    for a in given:
        _check_aware(a.time, f"the time of archive {a.name!r}")
    ours = [a for a in given if a.name.startswith(prefix + "-") and not a.is_checkpoint]
    days = {_local_day(tz)(a) for a in ours}
    months = {_local_month(tz)(a) for a in ours}

    today = now.astimezone(tz).date()
    present = [today.toordinal() - k in days for k in range(daily)]
    present += [_month_number(today) - k in months for k in range(monthly)]
    return dict(zip(names, present, strict=True))


# --- helpers -----------------------------------------------------------------


def _slot(base: str, rank: int) -> str:
    return base if rank == 0 else f"{base}-{rank}"


def _ranked_reasons(
    ours: list[Archive], daily: int, monthly: int, tz: ZoneInfo
) -> dict[Archive, list[str]]:
    """The J, M and checkpoint reasons among ``ours`` (no future archive among them)."""
    complete = [a for a in ours if not a.is_checkpoint]
    checkpoints = [a for a in ours if a.is_checkpoint]
    reasons: dict[Archive, list[str]] = {}
    daily_kept = _newest_periods(complete, _local_day(tz), daily, latest=True)
    monthly_kept = _newest_periods(complete, _local_month(tz), monthly, latest=False)
    for rank, archive in enumerate(daily_kept):
        reasons.setdefault(archive, []).append(_slot("J", rank))
    for rank, archive in enumerate(monthly_kept):
        reasons.setdefault(archive, []).append(_slot("M", rank))

    # A checkpoint is never a restore point (it may hold half the files), but
    # the newest one lets an interrupted create resume without re-sending what
    # it already sent: worth keeping only until a complete archive supersedes it.
    # "Newer" is strict: a complete archive of the same instant supersedes it.
    if checkpoints:
        newest_checkpoint = max(checkpoints, key=_order)
        if not complete or newest_checkpoint.time > max(a.time for a in complete):
            reasons[newest_checkpoint] = [CHECKPOINT]
    return reasons


def _order(archive: Archive) -> tuple[datetime, str, str]:
    # Equal times happen (a clock stepped back, a second too coarse): the name
    # decides, so the same list gives the same plan in any order. Names are
    # unique (checked), so the id never decides; it only makes the key total.
    return (archive.time, archive.name, archive.id)


# Periods are numbered so that the previous one is ``n - 1``, also across
# months and years: a day by its proleptic ordinal, a month from year 0.


def _local_day(tz: ZoneInfo) -> Callable[[Archive], int]:
    return lambda a: a.time.astimezone(tz).date().toordinal()


def _local_month(tz: ZoneInfo) -> Callable[[Archive], int]:
    return lambda a: _month_number(a.time.astimezone(tz).date())


def _month_number(day: date) -> int:
    return day.year * 12 + day.month - 1


def _newest_periods(
    archives: list[Archive], period_of: Callable[[Archive], int], count: int, *, latest: bool
) -> list[Archive]:
    """For each of the ``count`` newest periods having an archive, newest period first,
    its latest archive (``latest``) or its first one, by :func:`_order`."""
    by_period: dict[int, list[Archive]] = {}
    for a in archives:
        by_period.setdefault(period_of(a), []).append(a)
    newest = sorted(by_period, reverse=True)[:count]
    pick = max if latest else min
    return [pick(by_period[p], key=_order) for p in newest]


def _check_counts(daily: int, monthly: int) -> None:
    if daily < 1:
        raise ValueError(f"daily must be at least 1 (J is today's restore point), got {daily}")
    if monthly < 0:
        raise ValueError(f"monthly must be 0 or more, got {monthly}")


def _check_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")


def _check_archives(archives: list[Archive]) -> None:
    seen: set[str] = set()
    for a in archives:
        _check_aware(a.time, f"the time of archive {a.name!r}")
        if a.name in seen:
            raise ValueError(f"archive name {a.name!r} appears twice")
        seen.add(a.name)
