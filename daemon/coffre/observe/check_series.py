"""The scheduled checks' series: per target and kind, when and how the checks went.

Built from :class:`coffre.core.health.Facts` (the check ledger, read by
``coffre.observe.facts``) by :func:`check_series`, for the exporter
(``coffre.observe.metrics``). Labels: ``target`` a target's or an enrolled
disk's name, ``kind`` one of ``repository``, ``archives``, ``data``, only the
kinds coffre runs on that target (``coffre.proof.check_ledger.kinds_for``:
an offsite target has ``archives`` only, its host reads its segments). Times
and 0/1 only: the sentence of a failed check (which may quote borg naming a
file) stays in status and the journal.

- ``coffre_check_last_success_timestamp_seconds{target,kind}``: the end of
  the last complete pass that found nothing wrong (0: never). A rolling
  repository check counts only once a slice reaches the last segment.
- ``coffre_check_last_attempt_timestamp_seconds{target,kind}``: the end of
  the last check, whatever it found (0: never).
- ``coffre_check_last_attempt_success{target,kind}``: 1 when the last check
  found nothing wrong (a slice of a pass included), 0 when it found damage or
  could not run, or none ran yet (tell by the attempt's time).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from coffre.core.health import Facts


def _seconds(moment: datetime | None) -> float:
    return 0.0 if moment is None else moment.timestamp()


def check_series(facts: Facts) -> list[Metric]:
    """The three families of the checks, every (target, kind) coffre checks. Raises nothing."""
    labels = ["target", "kind"]
    success = GaugeMetricFamily(
        "coffre_check_last_success_timestamp_seconds",
        "End of the last complete pass of the check that found nothing wrong (0: never).",
        labels=labels,
    )
    attempt = GaugeMetricFamily(
        "coffre_check_last_attempt_timestamp_seconds",
        "End of the last check of the kind on the target, whatever it found (0: never).",
        labels=labels,
    )
    ok = GaugeMetricFamily(
        "coffre_check_last_attempt_success",
        "1 when the last check of the kind found nothing wrong, else 0 (damage found, "
        "could not run, or never ran).",
        labels=labels,
    )
    for target in facts.targets:
        for check in target.checks:
            pair = [target.name, check.kind]
            success.add_metric(pair, _seconds(check.last_success))
            attempt.add_metric(pair, _seconds(check.last_attempt))
            ok.add_metric(pair, float(check.last_ok is True))
    return [success, attempt, ok]
