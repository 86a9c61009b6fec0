"""The restore drills' series: when each target was last drilled, how it went, how fast.

Built from each target's last drill (:class:`coffre.proof.drill_ledger.DrillRecord`,
read by :meth:`coffre.observe.facts.Observer.drills`) for the exporter
(``coffre.observe.metrics``). Counts, times and rates only: the names of files
that differ stay on the box (the journal, ``coffre drill``). A target never
drilled has no series.

- ``coffre_drill_last_timestamp_seconds{target}``: when its last drill ended.
- ``coffre_drill_last_success{target}``: 1 when that drill found every file
  identical, 0 when a file differed or the drill failed.
- ``coffre_drill_throughput_bytes_per_second{target}``: the extract's rate of
  that drill (absent when it timed nothing: a failed drill, an empty sample).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from coffre.proof.drill_ledger import DrillRecord


def drill_series(drills: Mapping[str, DrillRecord]) -> list[Metric]:
    """The three drill families for ``drills`` (by target), in the exposition's order."""
    when = GaugeMetricFamily(
        "coffre_drill_last_timestamp_seconds",
        "When the last restore drill of the target ended (Unix time).",
        labels=["target"],
    )
    success = GaugeMetricFamily(
        "coffre_drill_last_success",
        "1 when the last restore drill of the target read every sampled file back identical, "
        "else 0.",
        labels=["target"],
    )
    rate = GaugeMetricFamily(
        "coffre_drill_throughput_bytes_per_second",
        "The extract rate of the last restore drill of the target (bytes per second).",
        labels=["target"],
    )
    for target, record in sorted(drills.items()):
        when.add_metric([target], record.at.timestamp())
        success.add_metric([target], float(record.outcome == "ok"))
        throughput = record.throughput
        if throughput is not None:
            rate.add_metric([target], throughput)
    return [when, success, rate]
