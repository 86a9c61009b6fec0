"""The restore-time series: how long getting everything back from each target takes.

Built from the estimates of ``coffre.observe.facts.Observer.restore_estimates``
(``coffre.proof.restore_estimate``) and ``restore.rto_hours``, for the exporter
(``coffre.observe.metrics``). Figures only; ``target`` is a target's or an
enrolled disk's name.

- ``coffre_restore_estimated_seconds{target}``: the estimate; absent while it
  is unknown (no drill yet, no archive yet, a failed last drill): never a guess.
- ``coffre_restore_estimate_stale{target}``: 1 when the drill it comes from is
  older than ``STALE_AFTER`` (45 days), else 0; absent with the estimate.
- ``coffre_restore_rto_seconds``: the practice's objective (``restore.rto_hours``).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from coffre.proof.restore_estimate import RestoreEstimate


def restore_series(estimates: Sequence[RestoreEstimate], rto_hours: int) -> list[Metric]:
    """The restore-time families for ``estimates`` and the objective. Raises nothing."""
    seconds = GaugeMetricFamily(
        "coffre_restore_estimated_seconds",
        "Seconds a full restore of the target's latest archive would take, from its last "
        "restore drill's throughput (absent: no drill yet).",
        labels=["target"],
    )
    stale = GaugeMetricFamily(
        "coffre_restore_estimate_stale",
        "1 when the drill the target's restore estimate comes from is older than 45 days.",
        labels=["target"],
    )
    for found in estimates:
        if found.seconds is None:
            continue
        seconds.add_metric([found.target], found.seconds)
        stale.add_metric([found.target], float(found.stale))
    objective = GaugeMetricFamily(
        "coffre_restore_rto_seconds",
        "The practice's recovery time objective: seconds a full restore may take "
        "(restore.rto_hours).",
    )
    objective.add_metric([], rto_hours * 3600.0)
    return [seconds, stale, objective]
