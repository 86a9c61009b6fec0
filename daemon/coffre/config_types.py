"""The configuration as frozen dataclasses: the shape every module reads.

``coffre.config`` turns a TOML file into these; nothing else builds them
except tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from coffre.errors import UsageError

DEFAULT_CONFIG_PATH = Path("/etc/coffre/coffre.toml")


@dataclass(frozen=True)
class SourceConfig:
    """What is backed up: absolute paths, and borg exclude patterns."""

    paths: tuple[Path, ...]
    exclude: tuple[str, ...] = ()


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
    daily: int = 3
    monthly: int = 2


@dataclass(frozen=True)
class EncryptionConfig:
    """The passphrase file (0600) and the borg encryption mode used by ``init``."""

    passphrase_file: Path
    mode: str = "repokey-blake2"


@dataclass(frozen=True)
class PathsConfig:
    """Where coffre keeps its state, its caches and its runtime files."""

    state: Path = Path("/var/lib/coffre")
    cache: Path = Path("/var/cache/coffre")
    runtime: Path = Path("/run/coffre")

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


@dataclass(frozen=True)
class BorgConfig:
    """How borg is run. ``binary`` empty means the borg installed beside coffre."""

    binary: str = ""
    lock_wait: int = 60
    checkpoint_interval: int = 1800
    compression: str = "zstd,3"
    #: Seconds borg gets to write its checkpoint after SIGTERM before SIGKILL.
    stop_timeout: int = 60


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


#: Every kind of target; more join the union as they are built.
TargetConfig = LocalTarget


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
    source_file: Path | None = None

    def target(self, name: str) -> TargetConfig:
        """The target called ``name``; raises UsageError naming the known ones."""
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets) or "none configured"
        raise UsageError(f"no target named {name!r}", hint=f"known targets: {known}")
