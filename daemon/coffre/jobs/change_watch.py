"""After each backup, the change signal: what the night did to the share, and the incident it opens.

The figures come from the create borg just made (its file count, sizes and
``--list`` statuses) and from the share itself (canaries, a sample of the
changed files): :func:`coffre.guard.night.assess`. Here they meet state:

- the baseline is the previous backup of the same target that made an
  archive, unless a person cleared an incident since (after a recovery the
  share is rewritten on purpose: that night is the new baseline);
- the canaries' record and the night's figures are kept in state (status and
  metrics read them: counts only);
- a signal opens (or adds to) the ``ransomware`` incident, which freezes
  pruning on every target, and is logged at ERROR with its figures as
  journal fields; file names stay in the incident's evidence on the box.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime

from coffre.borg.records import FileStatus
from coffre.core.model import RunStats
from coffre.guard import night
from coffre.guard.canaries import CanaryRecord, ensure_canaries
from coffre.guard.change_signal import NightFigures, Signal
from coffre.guard.incidents import RANSOMWARE, IncidentStore
from coffre.jobs.services import Services
from coffre.storage import logs

CANARIES_KEY = "guard.canaries"
#: When a person last cleared an incident: backups before it are no baseline.
CLEARED_KEY = "guard.cleared_at"


def figures_key(target: str) -> str:
    """State's key of the latest night's figures of ``target`` (JSON)."""
    return f"guard.night.{target}"


def baseline(services: Services, target: str) -> night.Baseline | None:
    """The previous backup of ``target`` the night is compared with (None: no baseline)."""
    state = services.state
    previous = state.last_run_with_stats(target)
    if previous is None or previous.stats is None or previous.finished_at is None:
        return None
    cleared = state.get_time(CLEARED_KEY)
    if cleared is not None and previous.finished_at <= cleared:
        return None
    return night.Baseline(files=previous.stats.nfiles, at=previous.finished_at)


def plant_canaries(services: Services) -> None:
    """Plant the canaries not planted yet (the first backup, a new share folder); record them.

    Called before ``borg create``, so that the archive holds them as the
    share does. Nothing when ``guard.canaries`` is off. Raises StateError,
    and SourceUnavailable for a share folder that cannot be opened.
    """
    state, config = services.state, services.config
    if not config.guard.canaries:
        return
    raw = state.get_meta(CANARIES_KEY)
    before = CanaryRecord.from_json(raw) if raw else None
    record = ensure_canaries(config.source.paths, before, replant=False)
    if record != before:
        state.set_meta(CANARIES_KEY, record.to_json())


def watch(
    services: Services, target: str, stats: RunStats, statuses: Sequence[FileStatus]
) -> Signal | None:
    """Assess the backup of ``target`` that gave ``stats`` and ``statuses``; record it.

    Returns the signal (None: a normal night). Raises StateError when state
    cannot write, and what :func:`coffre.guard.night.assess` raises.
    """
    state, config = services.state, services.config
    now = services.clock.now()
    raw = state.get_meta(CANARIES_KEY)
    assessment = night.assess(
        config.guard,
        config.source.paths,
        files=stats.nfiles,
        original_bytes=stats.original_bytes,
        new_bytes=stats.deduplicated_bytes,
        statuses=statuses,
        baseline=baseline(services, target),
        canaries=CanaryRecord.from_json(raw) if raw else None,
        now=now,
        rng=random.Random(),
    )
    state.set_meta(CANARIES_KEY, assessment.canaries.to_json())
    figures = night_figures(assessment.figures)
    state.set_meta(figures_key(target), json.dumps({"at": now.isoformat(), **figures}))
    if assessment.signal is not None:
        _raise(services, target, now, assessment)
    return assessment.signal


def night_figures(figures: NightFigures) -> dict[str, int | float]:
    """The figures of a night as a flat mapping of numbers (None left out), ``vanished``
    (computed from the others) included."""
    flat: dict[str, int | float] = {
        k: v
        for k, v in vars(figures).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    flat["vanished"] = figures.vanished
    return flat


def _raise(services: Services, target: str, now: datetime, assessment: night.Assessment) -> None:
    signal = assessment.signal
    assert signal is not None
    _, opened = IncidentStore(services.state).sight(
        RANSOMWARE,
        at=now,
        target=target,
        reasons=signal.reasons,
        figures=signal.figures,
        evidence=assessment.evidence,
    )
    shown = ", ".join(f"{k} {v}" for k, v in sorted(signal.figures.items()))
    services.logger.error(
        "backup of %s: the share looks attacked (%s: %s): pruning is %s on every "
        "target; backups go on; see `coffre incident show`",
        target,
        ", ".join(signal.reasons),
        shown,
        "frozen" if opened else "still frozen",
        extra={
            "MESSAGE_ID": logs.MSG_GUARD_RANSOMWARE,
            "COFFRE_TARGET": target,
            "COFFRE_INCIDENT": RANSOMWARE,
            "COFFRE_GUARD_REASONS": ",".join(signal.reasons),
            **{f"COFFRE_GUARD_{k.upper()}": str(v) for k, v in signal.figures.items()},
        },
    )
