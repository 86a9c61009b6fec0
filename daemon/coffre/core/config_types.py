"""The configuration as frozen dataclasses: the shape every module reads.

``coffre.config.loader`` turns a TOML file into these; nothing else builds them
except tests. Every default is read from :mod:`coffre.core.config_keys`, where
each key is described once (the shipped file and the documents are generated
from it); a default that depends on the box (the archive prefix) or that the
loader fills in (the schedule) has no dataclass default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from coffre.core.config_keys import (
    default_bool,
    default_int,
    default_path,
    default_str,
    default_strings,
)
from coffre.core.errors import UsageError

DEFAULT_CONFIG_PATH = Path("/etc/coffre/coffre.toml")


@dataclass(frozen=True)
class SourceConfig:
    """What is backed up: absolute paths, and borg exclude patterns."""

    paths: tuple[Path, ...]
    exclude: tuple[str, ...] = default_strings("source.exclude")


@dataclass(frozen=True)
class ScheduleConfig:
    """When the nightly run is due: a local time of day in a timezone."""

    daily: time
    timezone: ZoneInfo


@dataclass(frozen=True)
class RetentionConfig:
    """How many daily (J, J-1, ...) and monthly (M, M-1, ...) restore points to keep.

    Only archives named ``<prefix>-...`` belong to coffre; others are never touched.
    """

    prefix: str
    daily: int = default_int("retention.daily")
    monthly: int = default_int("retention.monthly")


@dataclass(frozen=True)
class EncryptionConfig:
    """The passphrase file (0600) and the borg encryption mode used by ``init``."""

    passphrase_file: Path
    mode: str = default_str("encryption.mode")


@dataclass(frozen=True)
class PathsConfig:
    """Where coffre keeps its state, its caches and its runtime files."""

    state: Path = default_path("paths.state")  # noqa: RUF009 (a Path is immutable)
    cache: Path = default_path("paths.cache")  # noqa: RUF009 (a Path is immutable)
    runtime: Path = default_path("paths.runtime")  # noqa: RUF009 (a Path is immutable)

    @property
    def state_db(self) -> Path:
        return self.state / "state.db"

    @property
    def borg_base(self) -> Path:
        """Borg's config, keys and security dirs: stable storage, never a cache."""
        return self.state / "borg"

    @property
    def borg_cache(self) -> Path:
        return self.cache / "borg"

    @property
    def control_socket(self) -> Path:
        return self.runtime / "control.sock"

    @property
    def mounts(self) -> Path:
        """Where USB disks are mounted during a job, one stable folder per disk."""
        return self.runtime / "mnt"


@dataclass(frozen=True)
class BorgConfig:
    """How borg is run. ``binary`` empty means the borg installed beside coffre."""

    binary: str = default_str("borg.binary")
    lock_wait: int = default_int("borg.lock_wait")
    checkpoint_interval: int = default_int("borg.checkpoint_interval")
    compression: str = default_str("borg.compression")
    #: Seconds borg gets to write its checkpoint after SIGTERM before SIGKILL.
    stop_timeout: int = default_int("borg.stop_timeout")


@dataclass(frozen=True)
class UsbConfig:
    """Rotating USB disks: when to ask for a swap, when a disk counts as missing.

    ``check_max_duration`` bounds the ``borg check --repository-only`` each disk
    job makes (seconds); a partial check resumes where it stopped next time.
    """

    swap_after_days: int = default_int("usb.swap_after_days")
    missing_after_days: int = default_int("usb.missing_after_days")
    check_max_duration: int = default_int("usb.check_max_duration")


@dataclass(frozen=True)
class ChecksConfig:
    """The scheduled borg checks (``coffre.jobs.checking``, README "Checks").

    Periods in days: a complete pass of the rolling ``repository`` check, the
    ``archives`` check, the ``data`` check. ``repository_max_duration``: the
    seconds of one rolling slice; ``disk_data_budget``: the seconds a disk job
    may spend on a due data check (resumed, archive by archive, at the next plug).
    """

    repository_every_days: int = default_int("checks.repository_every_days")
    repository_max_duration: int = default_int("checks.repository_max_duration")
    archives_every_days: int = default_int("checks.archives_every_days")
    data_every_days: int = default_int("checks.data_every_days")
    disk_data_budget: int = default_int("checks.disk_data_budget")


@dataclass(frozen=True)
class MetricsConfig:
    """The Prometheus exporter (``coffre.observe.metrics``): served on ``listen``, "host:port".

    An IPv6 host is written in brackets (``"[::1]:9851"``). The box's own
    Prometheus agent scrapes it, so the default is loopback.
    """

    enabled: bool = default_bool("metrics.enabled")
    listen: str = default_str("metrics.listen")

    @property
    def host(self) -> str:
        """The address part of ``listen``, without IPv6 brackets."""
        host = self.listen.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") else host

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True)
class LedsConfig:
    """The box's lights (``coffre.observe.leds``): LED class devices under ``sysfs_root``.

    ``green``, ``amber`` and ``red`` name the LED directories
    (``<sysfs_root>/<name>/brightness``...).
    """

    enabled: bool = default_bool("leds.enabled")
    sysfs_root: Path = default_path("leds.sysfs_root")  # noqa: RUF009 (a Path is immutable)
    green: str = default_str("leds.green")
    amber: str = default_str("leds.amber")
    red: str = default_str("leds.red")


@dataclass(frozen=True)
class LocalTarget:
    """A Borg repository in a plain directory of the box."""

    name: str
    path: Path
    kind: Literal["local"] = "local"

    @property
    def location(self) -> str:
        """The repository location as borg takes it."""
        return str(self.path)


@dataclass(frozen=True)
class UploadWindow:
    """When an offsite upload is held to ``limit_kbps`` KiB/s (``coffre.core.upload_window``).

    ``days``: weekdays, 0 = Monday; ``start`` and ``end``: minutes since
    midnight, local time (``end`` up to 1440); an ``end`` not after ``start``
    runs past midnight.
    """

    days: frozenset[int]
    start: int
    end: int
    limit_kbps: int


@dataclass(frozen=True)
class OffsiteTarget:
    """A Borg repository on an HDS host, reached over SSH (``borg serve`` forced command).

    ``host_keys``: pinned host keys (``"ssh-ed25519 AAAA..."``); when empty, the
    keys pinned by ``coffre offsite enroll`` in the state dir are used.
    ``ssh_key``: the box's private key for this host (default: under the state
    dir, see ``coffre.targets.offsite.repository.key_file``). ``retry_for``: minutes during
    which a cut upload is retried, ``retry_delay`` the first wait in seconds
    (doubled at each retry).
    """

    name: str
    user: str
    host: str
    port: int
    path: str
    host_keys: tuple[str, ...] = default_strings("target.host_keys")
    upload_windows: tuple[UploadWindow, ...] = ()
    retry_for: int = default_int("target.retry_for")
    retry_delay: int = default_int("target.retry_delay")
    connect_timeout: int = default_int("target.connect_timeout")
    ssh_key: Path | None = None
    kind: Literal["offsite"] = "offsite"

    @property
    def location(self) -> str:
        """The repository location as borg takes it: ``ssh://user@host:port/path``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}{self.path}"


#: Every kind of target; more join the union as they are built.
TargetConfig = LocalTarget | OffsiteTarget


@dataclass(frozen=True)
class RestoreConfig:
    """Restores, finds and browsing for support staff (``coffre restore``, ``find``, ``browse``).

    ``disk_wait``: seconds a job on an unplugged USB disk waits for it.
    ``browse_idle``: seconds a browse mount stays with nobody inside it;
    ``browse_max``: seconds it stays at most. ``find_max_results``: hits
    sent back by one ``coffre find`` (more are counted, not listed).
    ``rto_hours``: how long a full restore may take (the practice's objective).
    """

    disk_wait: int = default_int("restore.disk_wait")
    browse_idle: int = default_int("restore.browse_idle")
    browse_max: int = default_int("restore.browse_max")
    find_max_results: int = default_int("restore.find_max_results")
    #: The recovery time objective, in hours (``coffre.proof.restore_estimate``).
    rto_hours: int = default_int("restore.rto_hours")


@dataclass(frozen=True)
class GuardConfig:
    """The ransomware guard's thresholds (``coffre.guard``) and the clock guard's tolerances.

    Percentages are of the share's file count (``rewritten_percent``,
    ``vanished_percent``: of the previous backup's), of the sampled files
    (``suspect_percent``) or of the share's bytes (``new_data_percent``).
    ``compare_within_hours``: the previous backup is a baseline only when at
    most this old. ``clock_tolerance_minutes`` and ``clock_max_leap_days``
    are the clock guard's (``coffre.guard.clock``).
    """

    canaries: bool = default_bool("guard.canaries")
    sample_files: int = default_int("guard.sample_files")
    sample_head_bytes: int = default_int("guard.sample_head_bytes")
    min_files: int = default_int("guard.min_files")
    rewritten_percent: int = default_int("guard.rewritten_percent")
    vanished_percent: int = default_int("guard.vanished_percent")
    suspect_percent: int = default_int("guard.suspect_percent")
    min_suspects: int = default_int("guard.min_suspects")
    new_data_percent: int = default_int("guard.new_data_percent")
    compare_within_hours: int = default_int("guard.compare_within_hours")
    clock_tolerance_minutes: int = default_int("guard.clock_tolerance_minutes")
    clock_max_leap_days: int = default_int("guard.clock_max_leap_days")


@dataclass(frozen=True)
class DrillsConfig:
    """Restore drills (``coffre.proof``): how often, and how big a sample.

    ``every_days``: days between two scheduled drills of a target. ``files``
    and ``mib``: the sample's most files and MiB; ``largest`` and ``recent``:
    how many of them are the largest files (that fit) and the most recently
    changed, always included.
    """

    every_days: int = default_int("drills.every_days")
    files: int = default_int("drills.files")
    mib: int = default_int("drills.mib")
    largest: int = default_int("drills.largest")
    recent: int = default_int("drills.recent")


@dataclass(frozen=True)
class SnapshotsConfig:
    """btrfs snapshots and Previous Versions (``coffre.consistency``).

    ``office_days`` (``"mon-fri"``), ``office_from`` and ``office_to``
    (``"HH:MM"``) are kept as written, checked on load (parse them with
    ``coffre.core.upload_window``); ``every_minutes`` between two office
    Previous Versions; every version is kept ``keep_hours`` hours, and the
    last backup's of each of the last ``keep_nights`` days besides; under
    ``min_free_percent`` free, the oldest go first.
    """

    enabled: bool = default_bool("snapshots.enabled")
    office_days: str = default_str("snapshots.office_days")
    office_from: str = default_str("snapshots.office_from")
    office_to: str = default_str("snapshots.office_to")
    every_minutes: int = default_int("snapshots.every_minutes")
    keep_hours: int = default_int("snapshots.keep_hours")
    keep_nights: int = default_int("snapshots.keep_nights")
    min_free_percent: int = default_int("snapshots.min_free_percent")


@dataclass(frozen=True)
class QuiescenceConfig:
    """The wait for a quiet share before a backup (``coffre.consistency.quiet``).

    ``max_wait_seconds`` at most (0: no wait), ``disk_max_wait_seconds`` for a USB
    disk's backup; quiet means no file open for
    writing over SMB (``smbstatus``, reading ``samba_config`` when not empty)
    and no change for ``quiet_seconds``.
    """

    max_wait_seconds: int = default_int("quiescence.max_wait_seconds")
    disk_max_wait_seconds: int = default_int("quiescence.disk_max_wait_seconds")
    quiet_seconds: int = default_int("quiescence.quiet_seconds")
    smbstatus: str = default_str("quiescence.smbstatus")
    samba_config: str = default_str("quiescence.samba_config")


@dataclass(frozen=True)
class Config:
    """The whole configuration. ``source_file`` is where it was read from."""

    source: SourceConfig
    schedule: ScheduleConfig
    retention: RetentionConfig
    encryption: EncryptionConfig
    paths: PathsConfig = field(default_factory=PathsConfig)
    borg: BorgConfig = field(default_factory=BorgConfig)
    targets: tuple[TargetConfig, ...] = ()
    usb: UsbConfig = field(default_factory=UsbConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    leds: LedsConfig = field(default_factory=LedsConfig)
    restore: RestoreConfig = field(default_factory=RestoreConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    drills: DrillsConfig = field(default_factory=DrillsConfig)
    snapshots: SnapshotsConfig = field(default_factory=SnapshotsConfig)
    quiescence: QuiescenceConfig = field(default_factory=QuiescenceConfig)
    source_file: Path | None = None

    def target(self, name: str) -> TargetConfig:
        """The target called ``name``; raises UsageError naming the known ones."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none configured"
        raise UsageError(f"no target named {name!r}", hint=f"known targets: {known}")
