"""Pure: how long getting everything back from a target takes, from its last restore drill.

In: the target's last drill (what it extracted, how long ``borg extract``
took, when) and the size a full restore writes, that is the latest archive's
*original* size and file count (``RunStats.original_bytes`` and ``nfiles`` of
the last backup that made an archive): ``borg extract`` writes every file
whole, whatever the repository's deduplication and compression saved. Out:
a :class:`RestoreEstimate`, or an unknown one with its reason: no drill yet,
no backup yet, a failed drill: never a guess.

The model (``benchmarks/restore_estimate.py`` measures it against a real full
restore of a practice-like share): a ``borg extract`` of an archive of N files
that writes n of them, b bytes, named by p path patterns, spends

    START_SECONDS + N x (SCAN_SECONDS + p x MATCH_SECONDS) + n x PER_FILE_SECONDS + b / rate

Every extract reads the archive's whole item list, whatever it writes, and
matches each item against each ``pp:`` pattern it was given: a drill names
its n files (p = n), a full restore none (p = 0). So the drill's time, less
its fixed, scanning, matching and per-file parts, gives the rate its bytes
came at; the full restore (n = N) is that rate applied to the archive's
size, plus its own fixed, scanning and per-file parts. On a large archive
the drill's matching is most of its time: leaving it in would make a
restore look several times longer than it is. A drill that reads few bytes is
dominated by the fixed and per-file parts: the rate is then taken no faster
than :data:`MAX_RATE_FACTOR` times the drill's plain bytes per second.

For an offsite target the drill extracts over SSH from the host: its rate is
the practice's Internet link (the host's upload, the practice's download),
and so is the estimate. A drill older than :data:`STALE_AFTER` still gives
the figure, flagged stale: the disk, the link or the share may have changed.

Nothing here does I/O or reads a clock: ``now`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

#: A drill older than this makes the estimate stale (a monthly drill missed, and half a month).
STALE_AFTER = timedelta(days=45)
# Measured by benchmarks/restore_estimate.py with borg 1.4.5 on a 2-core x86-64 VM (cold page
# cache). On a slower CPU every part is slower: the drill's parts are then under-subtracted (its
# rate reads slow: the estimate errs long) and the full restore's per-file part under-counted
# (it errs short); the benchmark run on the box says by how much.
#: Seconds every ``borg extract`` spends whatever it writes: starting Python, opening the
#: repository, reading the manifest.
START_SECONDS = 0.45
#: Seconds every ``borg extract`` spends per file of the archive, written or not: reading
#: the archive's item list.
SCAN_SECONDS = 9e-6
#: Seconds per file of the archive and per ``pp:`` pattern of the extract: matching.
MATCH_SECONDS = 0.25e-6
#: Seconds a ``borg extract`` spends per file it writes, beyond its bytes: creating it,
#: setting its owner, mode and times.
PER_FILE_SECONDS = 0.15e-3
#: The rate is never taken faster than this times the drill's bytes per second: a drill
#: whose time is nearly all fixed cost must not make a fast disk out of a rounding error.
MAX_RATE_FACTOR = 10.0

#: Drill outcomes whose extract ran to its end (a mismatch is found after the extract).
TIMED_OUTCOMES = frozenset({"ok", "mismatch"})


class DrillMeasure(Protocol):
    """What the estimate needs of a drill record (``coffre.proof.drill_ledger.DrillRecord``)."""

    @property
    def at(self) -> datetime: ...

    @property
    def files(self) -> int: ...

    @property
    def bytes(self) -> int: ...

    @property
    def extract_seconds(self) -> float: ...

    @property
    def outcome(self) -> str: ...


@dataclass(frozen=True)
class FullSize:
    """What a full restore of a target writes: its latest archive's original bytes and files."""

    bytes: int
    files: int


@dataclass(frozen=True)
class RestoreEstimate:
    """How long getting everything back from ``target`` takes, or why that is unknown.

    ``seconds`` is None when unknown, and ``unknown`` says why (e.g. "no drill
    yet"). ``rate``: the bytes per second the drill measured (its plain
    bytes / extract seconds, as shown to people). ``over_link``: an offsite
    target, whose figure is the practice's Internet link. ``stale``: the drill
    is older than :data:`STALE_AFTER`.
    """

    target: str
    seconds: float | None
    unknown: str | None = None
    drill_at: datetime | None = None
    rate: float | None = None
    size: FullSize | None = None
    over_link: bool = False
    stale: bool = False

    def over(self, objective_seconds: float) -> bool:
        """Whether the estimate exceeds ``objective_seconds`` (False when unknown)."""
        return self.seconds is not None and self.seconds > objective_seconds


def estimate(
    target: str,
    kind: str,
    drill: DrillMeasure | None,
    size: FullSize | None,
    now: datetime,
) -> RestoreEstimate:
    """The time a full restore of ``target`` (of ``kind`` local, usb, offsite) takes.

    ``drill``: the target's last drill (None: never drilled); ``size``: its
    latest archive's size (None: no archive yet); ``now``: aware. Returns an
    unknown estimate, with its reason, when there is no drill, no archive, or
    the last drill did not time a whole extract (it failed, or read nothing).
    Raises nothing.
    """
    over_link = kind == "offsite"
    if drill is None:
        return RestoreEstimate(target, None, "no drill yet", over_link=over_link)
    at, stale = drill.at, now - drill.at > STALE_AFTER
    if drill.outcome not in TIMED_OUTCOMES:
        return RestoreEstimate(
            target, None, "the last drill failed", at, over_link=over_link, stale=stale
        )
    if drill.bytes <= 0 or drill.extract_seconds <= 0:
        return RestoreEstimate(
            target, None, "the last drill read nothing", at, over_link=over_link, stale=stale
        )
    plain = drill.bytes / drill.extract_seconds
    if size is None:
        return RestoreEstimate(
            target, None, "no backup yet", at, plain, over_link=over_link, stale=stale
        )
    rate = _rate(drill, plain, size)
    per_file = SCAN_SECONDS + PER_FILE_SECONDS
    seconds = START_SECONDS + size.files * per_file + size.bytes / rate
    return RestoreEstimate(target, seconds, None, at, plain, size, over_link, stale)


def _rate(drill: DrillMeasure, plain: float, size: FullSize) -> float:
    """The bytes per second of the drill's data, its fixed, scanning and matching (of the
    archive of ``size``, against one pattern per file drilled) and per-file parts taken out."""
    files = max(drill.files, 0)
    scan = size.files * (SCAN_SECONDS + files * MATCH_SECONDS)
    fixed = START_SECONDS + scan + files * PER_FILE_SECONDS
    left = drill.extract_seconds - fixed
    ceiling = plain * MAX_RATE_FACTOR
    if left <= drill.bytes / ceiling:
        return ceiling
    return drill.bytes / left


def duration_words(seconds: float) -> str:
    """``seconds`` as a person reads a restore time: "under a minute", "12 min",
    "3 h 10 min", "4 days 2 h". Rounded to the minute under an hour, to ten minutes
    under two days, to the hour beyond: an estimate, not a stopwatch. Raises nothing.
    """
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        tens = round(minutes / 10) * 10
        hours, rest = divmod(tens, 60)
        return f"{hours} h" if rest == 0 else f"{hours} h {rest:02d} min"
    days, hours = divmod(round(minutes / 60), 24)  # two days at least: "days"
    return f"{days} days" if hours == 0 else f"{days} days {hours} h"
