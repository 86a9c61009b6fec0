"""Whether the box's clock is suspect, from its archives and the last sane time seen.

Pure: no I/O and no clock of its own; the caller passes ``now``. Retention
ranks archives by their time, so a clock gone wrong can delete good history
(issue 12). Retention already sets aside archives dated after ``now``
(``core.retention``, reason ``"future"``); this module says when pruning
should stop altogether and ``CoffreClockSuspect`` fire.

Two findings, both possible at once:

- ``"future"``: one or more of our archives (``<prefix>-...``, checkpoints
  too, not acknowledged by support) dated after ``now + tolerance``. Either
  the clock went backwards past the newest archive (a box without a working
  RTC booting in the past until NTP answers), or an archive was forged in the
  future. The archives are the lasting evidence: the finding holds as long as
  they are ahead of the clock, however often the guard is asked.
- ``"leap"``: ``now - last_sane > max_leap``: the clock jumped far ahead (a
  box booting in 2030). ``last_sane`` is the last ``now`` at which the guard
  found nothing (kept in state by the caller, updated with
  :func:`sane_reference`); None (never seen) gives no leap finding.

How the caller's loop plays out (each case is a unit test): after each
:func:`assess_clock` that returns None, ``last_sane`` becomes ``now``.

(i) The clock set a year ahead for two nightly backups, then back: the first
    night ahead is a leap (fires); ``last_sane`` stays put, so the second is
    one too. Back at the true time the leap is gone, but the two archives
    made meanwhile are a year ahead: "future", still firing. Support
    acknowledges those two names (they hold real backups, dated wrong): clear.
(ii) A box booting three years in the past: every archive is ahead, "future"
    fires (no leap: the clock went back). NTP then steps the clock to the
    true time: nothing is ahead, and ``now - last_sane`` is the time the box
    was off: clear by itself, no acknowledgement needed.
(iii) A practice closed four weeks in August, the box off: the first night
    back is four weeks after ``last_sane``, under ``max_leap`` (45 days by
    default): nothing. A box off longer than ``max_leap`` does fire, once:
    support clears it (the caller then sets ``last_sane`` to ``now``).
(iv) Nights across the DST changes of Europe/Paris: times are aware instants,
    a DST change moves no instant; NTP stepping the clock back two minutes
    leaves no archive beyond a tolerance of minutes: nothing.

Figures only in a finding's :meth:`ClockFinding.figures` (metrics, alert,
journal fields): archive names, which may say more than a date, stay on the
box in ``evidence``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from coffre.core.model import Archive
from coffre.core.retention import future_archives

#: Our archives are dated after now (beyond the tolerance).
FUTURE = "future"
#: The clock jumped further ahead of the last sane time than ``max_leap``.
LEAP = "leap"


@dataclass(frozen=True)
class ClockFinding:
    """Why the clock is suspect: ``kinds`` is ``("future",)``, ``("leap",)`` or both, in that order.

    ``future_count``: our unacknowledged archives dated after now + tolerance
    (0 without a "future" finding); ``future_ahead``: how far the furthest of
    them is ahead of now (zero without one); ``leap``: ``now - last_sane``
    when it exceeds ``max_leap``, else None; ``evidence``: the names of those
    future archives, newest first, for ``coffre incident show`` on the box
    only (never in metrics, labels or structured journal fields).
    """

    kinds: tuple[str, ...]
    future_count: int
    future_ahead: timedelta
    leap: timedelta | None
    evidence: tuple[str, ...]

    def figures(self) -> dict[str, int]:
        """The finding as whole numbers, safe to leave the box: no name in them.

        Keys: ``future_archives``, ``future_ahead_seconds``, ``leap_seconds``
        (0 when there is no leap).
        """
        return {
            "future_archives": self.future_count,
            "future_ahead_seconds": int(self.future_ahead.total_seconds()),
            "leap_seconds": int(self.leap.total_seconds()) if self.leap is not None else 0,
        }


def assess_clock(
    archives: Iterable[Archive],
    *,
    prefix: str,
    now: datetime,
    last_sane: datetime | None,
    tolerance: timedelta,
    max_leap: timedelta,
    acknowledged: frozenset[str],
) -> ClockFinding | None:
    """Whether the clock is suspect at ``now``, given one repository's ``archives``.

    ``prefix`` names our archives; ``last_sane`` is the last ``now`` at which
    this returned None (None: never); ``tolerance`` (>= 0) how far ahead of
    ``now`` an archive may be dated (clocks of a few minutes apart, an NTP
    step); ``max_leap`` (> 0) the longest the clock may move ahead between two
    sane observations (the box off for holidays); ``acknowledged`` the names
    of future archives support has looked at and cleared.

    Returns the :class:`ClockFinding`, or None when the clock looks sane.
    Raises ValueError when a time is naive, ``prefix`` is empty, ``tolerance``
    is negative or ``max_leap`` not positive.
    """
    if max_leap <= timedelta(0):
        raise ValueError(f"max_leap must be positive, got {max_leap}")
    if last_sane is not None and last_sane.utcoffset() is None:
        raise ValueError(f"last_sane must be timezone-aware, got {last_sane!r}")
    # The same rule retention applies: what it sets aside is what is reported.
    ahead = [
        a
        for a in future_archives(archives, prefix=prefix, now=now, tolerance=tolerance)
        if a.name not in acknowledged
    ]
    leap = now - last_sane if last_sane is not None else None
    if leap is not None and leap <= max_leap:
        leap = None
    kinds = ((FUTURE,) if ahead else ()) + ((LEAP,) if leap is not None else ())
    if not kinds:
        return None
    return ClockFinding(
        kinds=kinds,
        future_count=len(ahead),
        future_ahead=max((a.time for a in ahead), default=now) - now,
        leap=leap,
        evidence=tuple(a.name for a in ahead),
    )


def sane_reference(
    previous: datetime | None, now: datetime, finding: ClockFinding | None
) -> datetime | None:
    """The ``last_sane`` to keep after :func:`assess_clock` returned ``finding`` at ``now``.

    While the clock is suspect, ``previous`` (unchanged): a clock that leapt
    ahead must keep looking like a leap until it comes back or support clears
    it. When it is sane, ``now``, even if that is before ``previous`` (the
    clock was stepped back). Keeping the later of the two would leave a
    reference ahead of the true time after a backward correction (a new box
    first seen in 2030, then set right), and the leap rule would be blind for
    as long as that reference is ahead; moving back costs nothing, since a
    clock gone back past our archives is the "future" rule's to see, from the
    archives themselves, and a later legitimate night is measured from a true
    reference. Raises ValueError when ``now`` is naive.
    """
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    return previous if finding is not None else now
