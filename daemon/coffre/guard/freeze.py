"""Whether pruning may delete: the open incidents, after the clock guard's review.

Called by retention (:mod:`coffre.jobs.pruning`) before any ``borg delete``,
on every target: one open incident, of any kind, and nothing is deleted
anywhere. The clock guard is reviewed here, over the archives of *every*
target state knows (a future archive on a USB disk freezes the local
repository's pruning too: it is the box's clock that is in doubt).

State keeps, besides the incidents (:mod:`coffre.guard.incidents`):
``guard.clock.last_sane``, the last moment the guard saw a sane clock (the
clock guard's leap reference), and ``guard.clock.acknowledged``, the names of
the archives a person acknowledged as dated in the future when clearing a
clock incident.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from coffre.core.config_types import GuardConfig
from coffre.core.model import Archive
from coffre.guard import clock
from coffre.guard.incidents import CLOCK, Incident, IncidentStore
from coffre.storage import logs
from coffre.storage.state import State

LAST_SANE = "guard.clock.last_sane"
ACKNOWLEDGED = "guard.clock.acknowledged"


def tolerance(config: GuardConfig) -> timedelta:
    """How far in the future an archive may be dated before it is "in the future"."""
    return timedelta(minutes=config.clock_tolerance_minutes)


def acknowledged(state: State) -> frozenset[str]:
    """The archive names a person acknowledged as dated in the future."""
    raw = state.get_meta(ACKNOWLEDGED)
    try:
        names = json.loads(raw) if raw else []
    except ValueError:
        names = []
    return frozenset(str(n) for n in names) if isinstance(names, list) else frozenset()


def known_archives(state: State, targets: Iterable[str]) -> dict[str, list[Archive]]:
    """The archive lists state knows, by target (targets without one left out)."""
    lists = {name: state.archives(name) for name in targets}
    return {name: found for name, found in lists.items() if found is not None}


def review_clock(
    state: State,
    config: GuardConfig,
    prefix: str,
    now: datetime,
    archives: Mapping[str, Sequence[Archive]],
    logger: logging.Logger,
) -> Incident | None:
    """Ask the clock guard about ``now`` and ``archives`` (by target); open or close the incident.

    A finding opens the clock incident (or adds a sighting to it) and is
    logged at ERROR; no finding closes an open clock incident (logged) and
    moves ``last_sane``. Returns the open clock incident, or None.
    Raises StateError when state cannot write.
    """
    everything = [a for found in archives.values() for a in found]
    last_sane = state.get_time(LAST_SANE)
    finding = clock.assess_clock(
        everything,
        prefix=prefix,
        now=now,
        last_sane=last_sane,
        tolerance=tolerance(config),
        max_leap=timedelta(days=config.clock_max_leap_days),
        acknowledged=acknowledged(state),
    )
    store = IncidentStore(state)
    reference = clock.sane_reference(last_sane, now, finding)
    if reference is not None and reference != last_sane:
        state.set_time(LAST_SANE, reference)
    if finding is None:
        closed = store.close(CLOCK)
        if closed is not None:
            logger.warning(
                "the clock is sane again: pruning may resume (clock incident of %s closed)",
                closed.opened_at.isoformat(),
                extra={"MESSAGE_ID": logs.MSG_GUARD_CLEARED, "COFFRE_INCIDENT": CLOCK},
            )
        return None
    named = set(finding.evidence)
    targets = sorted(t for t, found in archives.items() if {a.name for a in found} & named)
    incident, opened = store.sight(
        CLOCK,
        at=now,
        target=",".join(targets) or "-",
        reasons=finding.kinds,
        figures=finding.figures(),
        evidence=[f"archive dated in the future: {name}" for name in finding.evidence],
    )
    if opened:
        logger.error(
            "the clock is suspect (%s): pruning is frozen on every target; backups go on",
            _described(finding),
            extra={"MESSAGE_ID": logs.MSG_GUARD_CLOCK, "COFFRE_INCIDENT": CLOCK},
        )
    return incident


def acknowledge_future(
    state: State, config: GuardConfig, now: datetime, targets: Iterable[str]
) -> list[str]:
    """Acknowledge every archive state knows dated after ``now`` (plus the tolerance).

    Called when a person clears a clock incident; ``last_sane`` becomes
    ``now``. Returns the names acknowledged. Raises StateError.
    """
    limit = now + tolerance(config)
    lists = known_archives(state, targets)
    future = sorted({a.name for found in lists.values() for a in found if a.time > limit})
    state.set_meta(ACKNOWLEDGED, json.dumps(sorted(acknowledged(state) | set(future))))
    state.set_time(LAST_SANE, now)
    return future


def _described(finding: clock.ClockFinding) -> str:
    """The finding in words, figures only."""
    said = []
    if finding.future_count:
        days = finding.future_ahead.total_seconds() / 86400
        said.append(f"{finding.future_count} archive(s) dated up to {days:.1f} day(s) ahead")
    if finding.leap is not None:
        said.append(f"the clock leapt {finding.leap.total_seconds() / 86400:.1f} day(s) ahead")
    return "; ".join(said)
