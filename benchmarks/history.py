"""Pure: the archive history the benchmarks start from, checked with coffre's own retention.

Before the measured night a repository holds a full J, J-1, J-2, M, M-1
set (every archive kept, every slot filled); tonight's archive makes exactly
one of them fall out, as a real night does. Which archives those are
depends on today's date in the box's timezone (the first days of a month
overlap the daily and monthly slots), so the history is derived from ``now``
and checked with :func:`coffre.core.retention.plan` rather than trusted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coffre.core import retention
from coffre.core.model import Archive
from coffre.jobs.backup import archive_name

DAILY, MONTHLY = 3, 2

#: Tonight's archive is checked at every instant from now to now + this:
#: the benchmark must not cross the local midnight.
HORIZON = timedelta(minutes=30)

# Local times of the history's archives: the nightly run's, and an earlier one
# for a month's first archive when it shares its day with a daily slot. Both
# exist on every day in Europe/Paris (DST changes at 02:00 and 03:00).
NIGHTLY_AT = time(1, 30)
MONTH_FIRST_AT = time(0, 30)


@dataclass(frozen=True)
class History:
    """The archives made before tonight, oldest first, and the one tonight drops."""

    archives: tuple[Archive, ...]
    dropped: Archive
    scheme: str

    def kept_reasons(self, tz: ZoneInfo, prefix: str) -> dict[str, tuple[str, ...]]:
        """Each archive's reasons before tonight (every archive has some)."""
        plan = retention.plan(self.archives, prefix=prefix, daily=DAILY, monthly=MONTHLY, tz=tz)
        return {k.archive.name: k.reasons for k in plan.keep}


def build(now: datetime, tz: ZoneInfo, prefix: str) -> History:
    """The history for a night at ``now`` (aware): the first scheme that checks out.

    Raises ValueError when none does (within HORIZON of the local midnight).
    """
    problems = []
    for scheme, moments in _schemes(now, tz):
        archives = _named(moments, tz, prefix)
        problem, dropped = _check(archives, now, tz, prefix)
        if dropped is not None:
            return History(tuple(archives), dropped, scheme)
        problems.append(f"{scheme}: {problem}")
    raise ValueError("no history fits a night at " + now.isoformat() + ": " + "; ".join(problems))


def _schemes(now: datetime, tz: ZoneInfo) -> Iterator[tuple[str, list[datetime]]]:
    today = now.astimezone(tz).date()
    first = today.replace(day=1)
    previous_first = (first - timedelta(days=1)).replace(day=1)

    # The ordinary night: the last three nights, and the first backup of this
    # month and of the last one. Tonight, J-2 (three nights ago) falls out.
    # On the 1st a new month starts too (M-1 would fall out as well): no.
    if today.day >= 2:
        moments = [_at(today - timedelta(days=k), NIGHTLY_AT, tz) for k in (1, 2, 3)]
        moments += [_at(first, MONTH_FIRST_AT, tz), _at(previous_first, MONTH_FIRST_AT, tz)]
        yield "last three nights, first of this month and of the last", moments

    # The 1st: two backups already today (the month's first, then a later one,
    # say a USB disk), the last two nights, the first of last month. Tonight's
    # archive replaces today's later one as J.
    midnight = _at(today, time(0, 0), tz)
    elapsed = now - midnight
    moments = [
        midnight + elapsed / 3,
        midnight + elapsed * 2 / 3,
        _at(today - timedelta(days=1), NIGHTLY_AT, tz),
        _at(today - timedelta(days=2), NIGHTLY_AT, tz),
        _at(previous_first, MONTH_FIRST_AT, tz),
    ]
    yield "two backups earlier today, the last two nights, first of last month", moments


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).replace(microsecond=0)


def _named(moments: Sequence[datetime], tz: ZoneInfo, prefix: str) -> list[Archive]:
    archives: list[Archive] = []
    for moment in sorted({m.replace(microsecond=0) for m in moments}):
        name = archive_name(prefix, moment.astimezone(tz), {a.name for a in archives})
        archives.append(Archive(time=moment.astimezone(tz), name=name))
    return archives


def _check(
    archives: list[Archive], now: datetime, tz: ZoneInfo, prefix: str
) -> tuple[str, Archive | None]:
    """("", the archive tonight drops), or (what is wrong, None)."""

    def planned(given: list[Archive]) -> retention.Plan:
        return retention.plan(given, prefix=prefix, daily=DAILY, monthly=MONTHLY, tz=tz)

    if any(a.time >= now for a in archives):
        return "an archive would be in the future", None
    before = planned(archives)
    if before.delete:
        return f"{len(before.delete)} archive(s) already fall out before tonight", None
    filled = {reason for k in before.keep for reason in k.reasons}
    missing = set(retention.slot_names(DAILY, MONTHLY)) - filled
    if missing:
        return f"slot(s) {', '.join(sorted(missing))} empty before tonight", None
    drops = set()
    for tonight in (now, now + HORIZON):
        if tonight.astimezone(tz).date() != now.astimezone(tz).date():
            return "the night would cross midnight: run the benchmark later", None
        tonight_archive = Archive(time=tonight, name=f"{prefix}-tonight")
        drops.add(planned([*archives, tonight_archive]).delete)
    if len(drops) != 1:
        return "tonight's drop depends on the hour", None
    (dropped,) = drops
    if len(dropped) != 1:
        return f"tonight drops {len(dropped)} archives, not one", None
    return "", dropped[0]
