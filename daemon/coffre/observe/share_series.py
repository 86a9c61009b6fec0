"""The share's series: snapshots or not, Previous Versions kept, room, how backups read it.

Built from the last survey the desk kept (:mod:`coffre.consistency.survey`)
and each target's last read (``jobs.backup.record_consistency``), both read
from state's meta by :meth:`coffre.observe.facts.Observer.share`. Counts,
bytes and times only: no version's content, no file name.

- ``coffre_share_snapshots``: 1 when backups read btrfs snapshots, 0 when
  they read the live share (``coffre status`` says why).
- ``coffre_previous_versions{kind}``: Previous Versions kept, by kind
  (``office``: the office hours'; ``backup``: the backups').
- ``coffre_previous_versions_oldest_timestamp_seconds``: the oldest one's time.
- ``coffre_share_filesystem_free_bytes``, ``coffre_share_filesystem_size_bytes``.
- ``coffre_backup_read_quiet{target}``: 1 when the target's last backup read a
  quiet share, 0 when the wait's bound was reached (a file may be torn).
- ``coffre_backup_read_snapshot{target}``: 1 when it read a snapshot.
- ``coffre_backup_quiet_wait_seconds{target}``: how long it waited for quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from coffre.consistency.quiet import Consistency
from coffre.consistency.survey import Survey

__all__ = ["ShareFacts", "share_series"]


@dataclass(frozen=True)
class ShareFacts:
    """The last survey (None: none yet) and each target's last read (unreadable ones left
    out)."""

    survey: Survey | None
    reads: Mapping[str, Consistency]


def share_series(facts: ShareFacts) -> list[Metric]:
    """The share's families, in the exposition's order (none before the first survey)."""
    families: list[Metric] = []
    survey = facts.survey
    if survey is not None:
        families += _survey(survey)
    quiet = GaugeMetricFamily(
        "coffre_backup_read_quiet",
        "1 when the target's last backup read a quiet share, 0 when it stopped waiting.",
        labels=["target"],
    )
    snapshot = GaugeMetricFamily(
        "coffre_backup_read_snapshot",
        "1 when the target's last backup read a btrfs snapshot, 0 when the live share.",
        labels=["target"],
    )
    waited = GaugeMetricFamily(
        "coffre_backup_quiet_wait_seconds",
        "Seconds the target's last backup waited for a quiet share.",
        labels=["target"],
    )
    for target, read in sorted(facts.reads.items()):
        quiet.add_metric([target], float(read.quiet))
        snapshot.add_metric([target], float(read.method == "snapshot"))
        waited.add_metric([target], read.waited)
    return [*families, quiet, snapshot, waited]


def _survey(survey: Survey) -> list[Metric]:
    enabled = GaugeMetricFamily(
        "coffre_share_snapshots",
        "1 when backups read btrfs snapshots of the share, 0 when they read it live.",
    )
    enabled.add_metric([], float(not survey.why_not))
    kept = GaugeMetricFamily(
        "coffre_previous_versions",
        "Previous Versions of the share kept, by kind (office hours', backups').",
        labels=["kind"],
    )
    oldest = GaugeMetricFamily(
        "coffre_previous_versions_oldest_timestamp_seconds",
        "When the oldest Previous Version kept was taken (Unix time).",
    )
    families: list[Metric] = [enabled]
    if survey.why_not:
        return families
    for kind in ("office", "backup"):
        kept.add_metric([kind], float(sum(1 for v in survey.versions if v.kind == kind)))
    families.append(kept)
    if survey.versions:
        oldest.add_metric([], min(v.taken_at for v in survey.versions).timestamp())
        families.append(oldest)
    if survey.free is not None and survey.total is not None:
        free = GaugeMetricFamily(
            "coffre_share_filesystem_free_bytes", "Bytes free on the share's filesystem."
        )
        free.add_metric([], float(survey.free))
        size = GaugeMetricFamily(
            "coffre_share_filesystem_size_bytes", "Size of the share's filesystem in bytes."
        )
        size.add_metric([], float(survey.total))
        families += [free, size]
    return families
