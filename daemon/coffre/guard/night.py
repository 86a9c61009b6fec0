"""After a night's ``borg create``: plant and check the canaries, sample, judge.

:func:`assess` is the one entry the backup calls with what borg reported (the
archive's ``nfiles``, original and deduplicated sizes, and the ``create
--list --filter=AMCE`` statuses) and the previous backup of the same
repository (its file count and time: each repository has its own files
cache, so its own baseline). It returns the figures (numbers only: for
status, metrics, journal), the signal if the night crossed a rule, the
evidence lines kept on the box (``coffre incident show``: they may name files,
escaped), and the canary record to store.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from coffre.borg.records import FileStatus
from coffre.core.config_types import GuardConfig
from coffre.core.printable import controls_escaped
from coffre.guard.canaries import CanaryCheck, CanaryRecord, check_canaries, ensure_canaries
from coffre.guard.change_signal import NightFigures, Signal, Thresholds, evaluate
from coffre.guard.content_sample import SampleResult, sample_changed

#: Statuses whose file content is new to the repository's files cache.
CHANGED = frozenset({"A", "M", "C"})

# Evidence lines naming files: enough to show support, bounded for the state.
_MAX_EVIDENCE_FILES = 50


@dataclass(frozen=True)
class Baseline:
    """The previous backup to the same repository: its file count (borg's nfiles), its time."""

    files: int
    at: datetime


@dataclass(frozen=True)
class Assessment:
    """What :func:`assess` found; ``canaries`` is the record to store for the next night."""

    signal: Signal | None
    figures: NightFigures
    evidence: tuple[str, ...]
    canaries: CanaryRecord


def escape(text: str) -> str:
    """``text`` with every non-printable character as ``\\xNN`` (or ``\\uNNNN``), backslash doubled.

    A name from the share cannot then move a terminal's cursor or change its
    colours when ``coffre incident show`` prints it; doubled backslashes keep
    an escape apart from a name that holds one.
    """
    return controls_escaped(text.replace("\\", "\\\\"))


def _evidence(
    roots: Sequence[Path], canaries: CanaryCheck, sample: SampleResult, signal: Signal | None
) -> tuple[str, ...]:
    lines = []
    if signal is not None:
        lines.append("reasons: " + ", ".join(signal.reasons))
        lines.append(
            "figures: " + ", ".join(f"{key}={value}" for key, value in signal.figures.items())
        )
    for touched in canaries.touched:
        root = escape(str(roots[touched.root_index]))
        lines.append(f"canary {touched.what}: {root}/{escape(touched.name)}")
    for suspect in sample.found[:_MAX_EVIDENCE_FILES]:
        lines.append(
            f"looks encrypted (entropy {suspect.entropy:.2f} bits/byte): "
            f"{escape(str(suspect.root))}/{escape(suspect.relative)}"
        )
    if len(sample.found) > _MAX_EVIDENCE_FILES:
        lines.append(f"... and {len(sample.found) - _MAX_EVIDENCE_FILES} more suspect files")
    return tuple(lines)


def assess(
    config: GuardConfig,
    roots: Sequence[Path],
    *,
    files: int,
    original_bytes: int,
    new_bytes: int,
    statuses: Sequence[FileStatus],
    baseline: Baseline | None,
    canaries: CanaryRecord | None,
    now: datetime,
    rng: random.Random,
    replant: bool = False,
) -> Assessment:
    """Judge the night's backup of ``roots`` (module doc).

    ``files``, ``original_bytes``, ``new_bytes``: borg's nfiles, original and
    deduplicated sizes of the new archive; ``statuses``: its ``--list``
    records; ``baseline``: the previous backup to this repository (None for
    the first); ``canaries``: the stored record (None before the first
    plant); ``replant``: support cleared an incident (see ``canaries``).
    ``now`` and ``baseline.at`` must both be timezone-aware. With
    ``config.canaries`` false nothing is planted or checked and the record
    is handed back as it was (empty if None).

    Raises SourceUnavailable for a source root that cannot be opened; an
    unreadable sampled file is counted, never raised.
    """
    record = canaries if canaries is not None else CanaryRecord()
    check = CanaryCheck(0, ())
    if config.canaries:
        record = ensure_canaries(roots, canaries, replant=replant)
        check = check_canaries(roots, record)
    changed = [s.path for s in statuses if s.status in CHANGED]
    sample = sample_changed(
        roots, changed, limit=config.sample_files, head_bytes=config.sample_head_bytes, rng=rng
    )
    figures = NightFigures(
        files=files,
        previous_files=baseline.files if baseline is not None else None,
        added=sum(1 for s in statuses if s.status == "A"),
        modified=sum(1 for s in statuses if s.status in ("M", "C")),
        new_bytes=new_bytes,
        share_bytes=original_bytes,
        sampled=sample.sampled,
        suspects=sample.suspects,
        unreadable=sample.unreadable,
        canaries_checked=check.checked,
        canaries_touched=len(check.touched),
        hours_since_previous=(
            (now - baseline.at).total_seconds() / 3600 if baseline is not None else None
        ),
    )
    signal = evaluate(figures, Thresholds.from_config(config))
    return Assessment(signal, figures, _evidence(roots, check, sample, signal), record)
