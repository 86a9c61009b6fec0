"""The Prometheus exporter: coffre's state as metrics, served by the daemon's own loop.

A :class:`CoffreCollector` in a registry of its own reads the facts of
``coffre.observe.facts.Observer`` at each scrape: sqlite reads (cached until state
changes) and the lanes' running jobs. A scrape never runs borg and never
waits for a job. The HTTP endpoint (``coffre.observe.endpoint``) is a small
asyncio server in the daemon's event loop.

The series (README, "Monitoring", is the reference). Labels come from names
only: ``target`` is a configured target's name or an enrolled USB disk's,
``disk`` a disk's name, ``slot`` a retention slot (J, J-1, ..., M, M-1, ...),
``kind`` a job kind or an error kind (``errors.ERROR_KINDS``, a bounded
set). Never a path, a file name, an archive name or an error message.
Series of every known target and disk exist from the start, at 0 when
state has nothing yet (a timestamp of 0 means "never"); the free space of a
disk, or of a local target's filesystem, is left out until measured.

A backup that ended with borg warnings made its archive: it is the
target's last success (``coffre_last_success_timestamp_seconds``: the
archive exists), but not a successful attempt (``coffre_last_attempt_success``
0, ``coffre_last_attempt_warning`` 1); ``coffre_files_not_backed_up`` counts
the files its archive lacks (a count: the names stay in the journal).

The scheduled checks' series (per target and kind) are built by
``coffre.observe.check_series``; the guard's (incidents, the frozen pruning,
each night's figures, the clock's synchronisation) by ``coffre.observe.guard_series``;
the restore-time estimate's by ``coffre.observe.restore_series``;
the audit log's witness (its length, the end of its hash chain) by
``coffre.observe.audit_series``; the restore drills' by ``coffre.observe.drill_series``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import get_args

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from coffre import __version__
from coffre.core import retention
from coffre.core.config_types import Config
from coffre.core.errors import ELSEWHERE_KINDS, ERROR_KINDS, CoffreError
from coffre.core.health import Facts, Health, TargetFacts, assess
from coffre.jobs.queue import JobKind
from coffre.observe.audit_series import AuditWitness
from coffre.observe.check_series import check_series
from coffre.observe.drill_series import drill_series
from coffre.observe.endpoint import Endpoint
from coffre.observe.facts import Observer
from coffre.observe.guard_series import guard_series
from coffre.observe.restore_series import restore_series
from coffre.observe.share_series import share_series
from coffre.storage.audit import audit_path
from coffre.storage.state import SUCCESS, WARNING, RunRecord

#: Error kinds only the CLI meets (never a run's outcome): no series for them.
CLI_ONLY_KINDS = frozenset(
    {
        "config",
        "usage",
        "daemon_unavailable",
        "permission",
        "not_in_archive",
        "would_overwrite",
        "destination",
        *ELSEWHERE_KINDS,
    }
)
#: The ``kind`` values of coffre_errors_total.
RUN_ERROR_KINDS: tuple[str, ...] = tuple(k for k in ERROR_KINDS if k not in CLI_ONLY_KINDS)
#: The ``kind`` values of coffre_job_running.
JOB_KINDS: tuple[str, ...] = get_args(JobKind)


def _seconds(run: RunRecord | None) -> float:
    """When ``run`` ended, in Unix seconds; 0 for none."""
    if run is None or run.finished_at is None:
        return 0.0
    return run.finished_at.timestamp()


class CoffreCollector(Collector):
    """Builds every coffre_ series from the observer's facts at collect time.

    ``borg_version`` is read at each collect (set once by the daemon).
    When state cannot be read, only ``coffre_up 0`` and the build info are given.
    """

    def __init__(self, observer: Observer, config: Config, logger: logging.Logger) -> None:
        self._observer = observer
        self._config = config
        self._logger = logger
        self.borg_version = "unknown"
        self._failing = False
        self._audit = AuditWitness(audit_path(config), logger)

    def describe(self) -> Iterable[Metric]:
        # Nothing: registering must not read state (and the names are ours alone).
        return []

    def collect(self) -> Iterable[Metric]:
        build = GaugeMetricFamily(
            "coffre_build_info",
            "coffre's version and the version of the borg it runs (1).",
            labels=["version", "borg_version"],
        )
        build.add_metric([__version__, self.borg_version], 1)
        up = GaugeMetricFamily(
            "coffre_up", "1 when the daemon answers and its state can be read, else 0."
        )
        try:
            facts = self._observer.facts()
        except (CoffreError, sqlite3.Error) as error:
            if not self._failing:
                self._logger.error("metrics: cannot read state: %s", error)
            self._failing = True
            up.add_metric([], 0)
            return [up, build]
        self._failing = False
        up.add_metric([], 1)
        return [up, build, *self._series(facts)]

    def _series(self, facts: Facts) -> list[Metric]:
        """Every family but ``coffre_up`` and the build info, in the exposition's order."""
        return [
            *_backups(facts),
            *_last_archives(facts),
            *self._repositories(facts),
            *self._jobs(facts),
            *self._disks(facts),
            *_counters(facts),
            *check_series(facts),
            *guard_series(facts),
            *drill_series(self._observer.drills()),
            *share_series(self._observer.share()),
            *restore_series(
                self._observer.restore_estimates(facts), self._config.restore.rto_hours
            ),
            _health(facts),
            *self._audit.series(),
        ]

    def _repositories(self, facts: Facts) -> list[Metric]:
        """What each target's repository holds, and how its host answers."""
        names = retention.slot_names(self._config.retention.daily, self._config.retention.monthly)
        slots = GaugeMetricFamily(
            "coffre_retention_slot_present",
            "1 when the target holds the restore point of the slot, by the calendar, else 0.",
            labels=["target", "slot"],
        )
        for target in facts.targets:
            for slot in names:
                slots.add_metric([target.name, slot], float(target.slots.get(slot, False)))
        return [
            _per_target(
                facts,
                "coffre_repository_archives",
                "Archives in the target's repository, as last listed (0: not listed yet).",
                lambda t: t.archives or 0,
            ),
            _per_target(
                facts,
                "coffre_repository_oldest_archive_timestamp_seconds",
                "Time of the oldest of coffre's archives on the target (0: none).",
                lambda t: t.oldest_archive.timestamp() if t.oldest_archive else 0.0,
            ),
            _per_target(
                facts,
                "coffre_repository_free_bytes",
                "Free space of the filesystem holding a local target's repository.",
                lambda t: t.free_bytes if t.kind == "local" else None,
            ),
            slots,
            _per_target(
                facts,
                "coffre_offsite_reachable",
                "1 when the offsite host answered the last preflight, else 0 (or never asked).",
                lambda t: float(bool(t.reachable)) if t.kind == "offsite" else None,
            ),
            _per_target(
                facts,
                "coffre_key_exported",
                "1 when the repository's key was printed for escrow (coffre key export --paper).",
                lambda t: None if t.key_exported is None else float(t.key_exported),
            ),
        ]

    def _jobs(self, facts: Facts) -> list[Metric]:
        running = GaugeMetricFamily(
            "coffre_job_running", "Jobs of the kind running now (all lanes).", labels=["kind"]
        )
        lanes = (facts.main_job, facts.read_job, facts.network_job)
        jobs = [job for job in lanes if job is not None]
        for kind in JOB_KINDS:
            running.add_metric([kind], sum(1 for job in jobs if job.kind == kind))
        progress = GaugeMetricFamily(
            "coffre_job_progress_ratio",
            "Progress of the running job (the main lane's, else a read's, else the upload's), "
            "0 to 1; "
            "0 when none runs or it is unknown.",
        )
        progress.add_metric([], (jobs[0].progress or 0.0) if jobs else 0.0)
        return [running, progress]

    def _disks(self, facts: Facts) -> list[Metric]:
        d = ["disk"]
        present = GaugeMetricFamily(
            "coffre_disk_present", "1 while the disk is plugged in and powered, else 0.", labels=d
        )
        seen = GaugeMetricFamily(
            "coffre_disk_last_seen_timestamp_seconds",
            "When the disk was last seen (plugged in, or at the end of its job; 0: never).",
            labels=d,
        )
        swap = GaugeMetricFamily(
            "coffre_disk_swap_due",
            "1 when the disk has been the only one plugged in for too long (usb.swap_after_days).",
            labels=d,
        )
        missing = GaugeMetricFamily(
            "coffre_disk_missing",
            "1 when the disk was not seen for usb.missing_after_days, else 0.",
            labels=d,
        )
        free = GaugeMetricFamily(
            "coffre_disk_free_bytes", "Free space on the disk at the end of its last job.", labels=d
        )
        for disk in facts.disks:
            label = [disk.name]
            present.add_metric(label, float(disk.present))
            seen.add_metric(label, disk.last_seen.timestamp() if disk.last_seen else 0.0)
            swap.add_metric(label, float(disk.swap_due))
            missing.add_metric(label, float(disk.missing))
            if disk.free_bytes is not None:
                free.add_metric(label, disk.free_bytes)
        return [present, seen, swap, missing, free]


def _per_target(
    facts: Facts, name: str, text: str, value: Callable[[TargetFacts], float | None]
) -> GaugeMetricFamily:
    """A gauge labelled ``target``: ``value`` of each target, none where it gives None."""
    family = GaugeMetricFamily(name, text, labels=["target"])
    for target in facts.targets:
        sample = value(target)
        if sample is not None:
            family.add_metric([target.name], sample)
    return family


def _outcome_is(run: RunRecord | None, outcome: str) -> float:
    """1.0 when ``run`` ended with ``outcome``, else 0.0 (no run included)."""
    return float(run is not None and run.outcome == outcome)


def _backups(facts: Facts) -> list[Metric]:
    """How each target's last backups went: when, whether whole, with how many warnings."""
    return [
        _per_target(
            facts,
            "coffre_last_success_timestamp_seconds",
            "End of the last backup of the target that made an archive, complete or with "
            "warnings (0: never).",
            lambda t: _seconds(t.last_success),
        ),
        _per_target(
            facts,
            "coffre_last_attempt_timestamp_seconds",
            "End of the last backup attempt of the target, successful or not (0: never).",
            lambda t: _seconds(t.last_attempt),
        ),
        _per_target(
            facts,
            "coffre_last_attempt_success",
            "1 when the last backup attempt of the target saved every file, else 0 (failed, "
            "or ended with warnings: see coffre_last_attempt_warning).",
            lambda t: _outcome_is(t.last_attempt, SUCCESS),
        ),
        _per_target(
            facts,
            "coffre_last_attempt_warning",
            "1 when the last backup attempt of the target made its archive with borg warnings "
            "(files not backed up, or changed while read), else 0.",
            lambda t: _outcome_is(t.last_attempt, WARNING),
        ),
        _per_target(
            facts,
            "coffre_files_not_backed_up",
            "Files the last archive made on the target lacks: unreadable, or vanished during "
            "the backup (0: none, or no archive).",
            _not_backed_up,
        ),
        _per_target(
            facts,
            "coffre_backup_warnings_in_a_row",
            "Backups of the target in a row, up to the last one that made an archive, that "
            "ended with warnings (failed ones are skipped; 0 once one ends clean).",
            lambda t: t.warnings_in_a_row,
        ),
        _per_target(
            facts,
            "coffre_last_duration_seconds",
            "Duration of the last backup attempt of the target.",
            lambda t: (t.last_attempt.duration or 0.0) if t.last_attempt else 0.0,
        ),
    ]


def _not_backed_up(target: TargetFacts) -> float:
    """The files the last archive made lacks (its warnings), 0 when none or no archive."""
    made = target.last_stats  # of the last archive made
    lacking = made.warnings if made is not None else None
    return lacking.not_backed_up if lacking else 0


def _last_archives(facts: Facts) -> list[Metric]:
    """The size and file count of each target's last archive (0: none yet)."""
    return [
        _per_target(
            facts,
            "coffre_archive_original_bytes",
            "Original size of the source in the last archive made on the target.",
            lambda t: t.last_stats.original_bytes if t.last_stats else 0,
        ),
        _per_target(
            facts,
            "coffre_archive_deduplicated_bytes",
            "Bytes the last archive made on the target added to its repository.",
            lambda t: t.last_stats.deduplicated_bytes if t.last_stats else 0,
        ),
        _per_target(
            facts,
            "coffre_archive_files",
            "Number of files in the last archive made on the target.",
            lambda t: t.last_stats.nfiles if t.last_stats else 0,
        ),
    ]


def _counters(facts: Facts) -> list[Metric]:
    """Failed runs by target and error kind, and backups that ended with warnings."""
    errors = CounterMetricFamily(
        "coffre_errors",
        "Failed runs of the target, by kind of error.",
        labels=["target", "kind"],
    )
    for target in facts.targets:
        for kind in RUN_ERROR_KINDS:
            errors.add_metric([target.name, kind], facts.errors.get((target.name, kind), 0))
    warned = CounterMetricFamily(
        "coffre_backup_warnings",
        "Backups of the target that made their archive with borg warnings.",
        labels=["target"],
    )
    for target in facts.targets:
        warned.add_metric([target.name], facts.warnings.get(target.name, 0))
    return [errors, warned]


def _health(facts: Facts) -> Metric:
    """What the box's lights show now: 1 for that state, 0 for the others."""
    health = GaugeMetricFamily(
        "coffre_health",
        "1 for what the box's lights show now, 0 for the others.",
        labels=["state"],
    )
    shown = assess(facts).health
    for value in Health:
        health.add_metric([value.value], float(value is shown))
    return health


class _Families(Collector):
    """Already collected families, for generate_latest."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class Exporter:
    """The registry and the HTTP endpoint (``GET /metrics``) of a daemon."""

    def __init__(self, observer: Observer, config: Config, logger: logging.Logger) -> None:
        self.collector = CoffreCollector(observer, config, logger)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.endpoint = Endpoint(self.exposition, logger)
        #: Each family's last samples and their text, by name.
        self._rendered: dict[str, tuple[Metric, bytes]] = {}

    @property
    def borg_version(self) -> str:
        return self.collector.borg_version

    @borg_version.setter
    def borg_version(self, version: str) -> None:
        self.collector.borg_version = version

    def exposition(self) -> bytes:
        """The text exposition of every series now (what ``GET /metrics`` answers).

        The same bytes as ``generate_latest(self.registry)``, made faster: a
        family whose samples did not change since the last scrape is not
        formatted again (prometheus-client spends ~10 µs per sample; most
        families only change when a job ends).
        """
        rendered: dict[str, tuple[Metric, bytes]] = {}
        for family in self.registry.collect():
            known = self._rendered.get(family.name)
            if known is None or known[0] != family:
                known = (family, generate_latest(_Families([family])))
            rendered[family.name] = known
        self._rendered = rendered
        return b"".join(text for _, text in rendered.values())

    async def serve(self, host: str, port: int) -> bool:
        """Listen on ``host``:``port`` (``coffre.observe.endpoint``); False (and an ERROR log
        line) when it cannot."""
        return await self.endpoint.serve(host, port)

    async def close(self) -> None:
        """Stop serving and cut the connections still open."""
        await self.endpoint.close()
