"""The guard's series: its incidents, the frozen pruning, each night's figures, the clock.

Built from :class:`coffre.core.health.Facts` by :func:`guard_series`, for the
exporter (``coffre.observe.metrics``). Counts and times only: the guard's
evidence may name files of the share (patient data), and it stays on the box
(``coffre incident show``). Labels are bounded: ``kind`` an incident kind
(``coffre.guard.incidents.KINDS``), ``target`` a target's or a disk's name,
``change``, ``verdict`` and ``state`` the fixed values below.

- ``coffre_guard_incident{kind}``: 1 while an incident of the kind is open,
  else 0; every kind always exported.
- ``coffre_guard_incident_opened_timestamp_seconds{kind}``: when the open
  incident opened (absent while none is open).
- ``coffre_guard_pruning_frozen``: 1 while any incident is open.
- ``coffre_guard_night_timestamp_seconds{target}``,
  ``coffre_guard_night_files{target,change}``,
  ``coffre_guard_night_sample{target,verdict}``: the latest night's figures
  of each target that has some; a figure the guard did not give is absent.
- ``coffre_guard_canaries{state}``: the canaries checked and touched, by
  the latest night that checked them (the canaries are the share's, not a
  target's).
- ``coffre_clock_synchronized``: 1 when the clock is NTP-synchronised, 0
  when not; absent when unknown.
"""

from __future__ import annotations

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from coffre.core.health import Facts, NightFacts
from coffre.guard.incidents import KINDS

#: ``change`` label -> the night figure it shows (files of the night, by what happened).
CHANGES = {"added": "added", "modified": "modified", "vanished": "vanished"}
#: ``verdict`` label -> the night figure: files sampled, and those that look encrypted.
VERDICTS = {"sampled": "sampled", "suspect": "suspects"}
#: ``state`` label -> the night figure: canaries checked, and those found touched.
CANARIES = {"checked": "canaries_checked", "touched": "canaries_touched"}


def guard_series(facts: Facts) -> list[Metric]:
    """Every guard and clock family for ``facts``, in the exposition's order. Raises nothing."""
    return [*_incidents(facts), *_nights(facts), _canaries(facts), _clock(facts)]


def _incidents(facts: Facts) -> list[Metric]:
    open_ = GaugeMetricFamily(
        "coffre_guard_incident",
        "1 while an incident of the guard of the kind is open (pruning frozen), else 0.",
        labels=["kind"],
    )
    opened = GaugeMetricFamily(
        "coffre_guard_incident_opened_timestamp_seconds",
        "When the open incident of the kind opened (absent while none is open).",
        labels=["kind"],
    )
    by_kind = {incident.kind: incident for incident in facts.incidents}
    for kind in KINDS:
        incident = by_kind.get(kind)
        open_.add_metric([kind], float(incident is not None))
        if incident is not None:
            opened.add_metric([kind], incident.opened_at.timestamp())
    frozen = GaugeMetricFamily(
        "coffre_guard_pruning_frozen",
        "1 while an incident freezes pruning on every target (nothing is deleted), else 0.",
    )
    frozen.add_metric([], float(bool(facts.incidents)))
    return [open_, opened, frozen]


def _nights(facts: Facts) -> list[Metric]:
    at = GaugeMetricFamily(
        "coffre_guard_night_timestamp_seconds",
        "When the guard took the figures of the target's latest backup.",
        labels=["target"],
    )
    files = GaugeMetricFamily(
        "coffre_guard_night_files",
        "Files the target's latest backup found added, modified or vanished since the "
        "previous one.",
        labels=["target", "change"],
    )
    sample = GaugeMetricFamily(
        "coffre_guard_night_sample",
        "Changed files of the target's latest backup whose content was sampled, and those "
        "that look encrypted.",
        labels=["target", "verdict"],
    )
    for night in facts.nights:
        if night.at is not None:
            at.add_metric([night.target], night.at.timestamp())
        _labelled(files, night, CHANGES)
        _labelled(sample, night, VERDICTS)
    return [at, files, sample]


def _labelled(family: GaugeMetricFamily, night: NightFacts, figures: dict[str, str]) -> None:
    """Add to ``family`` the ``figures`` (label value -> figure name) ``night`` has."""
    for label, name in figures.items():
        if name in night.figures:
            family.add_metric([night.target, label], night.figures[name])


def _canaries(facts: Facts) -> Metric:
    family = GaugeMetricFamily(
        "coffre_guard_canaries",
        "Canary files the latest backup checked in the share, and those found touched.",
        labels=["state"],
    )
    checked = [n for n in facts.nights if CANARIES["checked"] in n.figures]
    if checked:
        # The share's canaries: the latest night that looked tells how they stand.
        latest = max(checked, key=lambda n: n.at.timestamp() if n.at else float("-inf"))
        for label, name in CANARIES.items():
            if name in latest.figures:
                family.add_metric([label], latest.figures[name])
    return family


def _clock(facts: Facts) -> Metric:
    family = GaugeMetricFamily(
        "coffre_clock_synchronized",
        "1 when the box's clock is NTP-synchronised, 0 when not (absent: unknown).",
    )
    if facts.clock_synchronised is not None:
        family.add_metric([], float(facts.clock_synchronised))
    return family
