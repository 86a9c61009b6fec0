"""The configuration file: TOML in, a frozen :class:`coffre.core.config_types.Config` out.

Every problem is reported, not just the first, each with its dotted key path
(``retention.daily``, ``target[1].path``, ``source.paths[0]``), so a technician
fixes the file in one pass. Checking happens in two steps:

- :func:`parse` is pure: it validates the dict ``tomllib`` gives;
- :func:`check_environment` looks at the box: the passphrase file and the
  source directories.

:func:`load` reads the file and runs both, reporting their problems together.
Which keys exist, their defaults and bounds are in
:mod:`coffre.core.config_keys`; the converters in :mod:`coffre.config.converters`,
the targets in :mod:`coffre.config.targets`, the checks of the box in
:mod:`coffre.config.environment`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coffre.config.converters import (
    INTEGER_BOUNDS,
    given,
    is_within,
    normal,
    source_path,
)
from coffre.config.environment import environment_problems
from coffre.config.table import Invalid, Table, show
from coffre.config.targets import read_targets
from coffre.core.config_keys import Bound, default_str, default_time
from coffre.core.config_types import (
    DEFAULT_CONFIG_PATH,
    BorgConfig,
    ChecksConfig,
    Config,
    DrillsConfig,
    EncryptionConfig,
    GuardConfig,
    LedsConfig,
    MetricsConfig,
    PathsConfig,
    QuiescenceConfig,
    RestoreConfig,
    RetentionConfig,
    ScheduleConfig,
    SnapshotsConfig,
    SourceConfig,
    TargetConfig,
    UsbConfig,
)
from coffre.core.errors import ConfigError, ConfigProblem
from coffre.core.upload_window import parse_minute

__all__ = ["INTEGER_BOUNDS", "Bound", "check_environment", "load", "parse", "resolve_path"]


# --- public API -------------------------------------------------------------


def resolve_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """Where the configuration file is.

    ``--config`` (``cli_value``) wins, then ``COFFRE_CONFIG`` from ``environ``,
    then :data:`coffre.core.config_types.DEFAULT_CONFIG_PATH`. An empty value counts
    as not given, as an exported but empty variable usually means "unset".
    Raises nothing; whether the file exists is :func:`load`'s business.
    """
    for value in (cli_value, environ.get("COFFRE_CONFIG")):
        if value:
            return Path(value)
    return DEFAULT_CONFIG_PATH


def parse(raw: Mapping[str, Any], *, hostname: str, source_name: str = "<config>") -> Config:
    """Validate ``raw`` (a dict as ``tomllib`` returns it) into a :class:`Config`.

    Pure: no file is looked at (only the timezone database, to know the zones).
    ``hostname`` gives the default archive prefix. ``source_file`` is left None.

    Raises :class:`ConfigError` named ``source_name``, listing every problem found.
    """
    problems: list[ConfigProblem] = []
    sections = _read_sections(raw, hostname, problems)
    if problems:
        raise ConfigError(source_name, problems)
    return sections.assemble()


def check_environment(config: Config) -> list[ConfigProblem]:
    """The checks that look at the box, for a parsed ``config``.

    The passphrase file must exist, be a regular non-empty file readable by us
    and closed to group and others; each source path must be a directory; no
    local target may sit inside a source once symlinks are resolved.
    Returns the problems found (empty when all is well); raises nothing.
    """
    return environment_problems(config.source, config.encryption, config.targets)


def load(path: Path, *, hostname: str | None = None, check_files: bool = True) -> Config:
    """Read, parse and check the configuration file at ``path``.

    ``hostname`` (default: :func:`socket.gethostname`) gives the default archive
    prefix. Returns the :class:`Config`, with ``source_file`` set to ``path``.
    ``check_files=False`` skips :func:`check_environment`: the CLI only needs
    the paths to reach the daemon, which checks the files itself.

    Raises :class:`ConfigError` when the file cannot be read, is not UTF-8 or
    not TOML (the problem gives tomllib's line and column), or with every
    problem of :func:`parse` and :func:`check_environment` together.
    """
    raw = _read_toml(path)
    problems: list[ConfigProblem] = []
    sections = _read_sections(raw, socket.gethostname() if hostname is None else hostname, problems)
    if check_files:
        # Even with parse problems, check what did parse: one pass fixes the file.
        problems += environment_problems(sections.source, sections.encryption, sections.targets)
    if problems:
        raise ConfigError(str(path), problems)
    return replace(sections.assemble(), source_file=path)


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at ``path``; ConfigError with the one problem if it cannot be had."""
    try:
        data = path.read_bytes()
        # utf-8-sig: a file last saved by a Windows editor may start with a BOM.
        return tomllib.loads(data.decode("utf-8-sig"))
    except FileNotFoundError:
        message = "no such file (another one can be given with --config or COFFRE_CONFIG)"
    except OSError as error:
        message = f"cannot be read: {error.strerror or error}"
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        message = f"is not UTF-8 text (invalid byte on line {line})"
    except tomllib.TOMLDecodeError as error:
        message = f"TOML syntax error: {error}"  # tomllib's text ends "(at line L, column C)"
    # The message carries all the cause says; its traceback would only be noise.
    raise ConfigError(str(path), [ConfigProblem("", message)]) from None


# --- sections ----------------------------------------------------------------


@dataclass
class _Sections:
    """What parsed; None (or a None target) where a section could not be built."""

    source: SourceConfig | None
    schedule: ScheduleConfig | None
    retention: RetentionConfig
    encryption: EncryptionConfig | None
    paths: PathsConfig
    borg: BorgConfig
    targets: list[TargetConfig | None]
    usb: UsbConfig
    metrics: MetricsConfig
    leds: LedsConfig
    restore: RestoreConfig
    guard: GuardConfig
    checks: ChecksConfig
    drills: DrillsConfig
    snapshots: SnapshotsConfig
    quiescence: QuiescenceConfig

    def assemble(self) -> Config:
        """The Config; only called when no problem was found, so every part is there."""
        targets = tuple(t for t in self.targets if t is not None)
        assert self.source is not None and self.schedule is not None
        assert self.encryption is not None
        assert targets and len(targets) == len(self.targets)
        return Config(
            source=self.source,
            schedule=self.schedule,
            retention=self.retention,
            encryption=self.encryption,
            paths=self.paths,
            borg=self.borg,
            targets=targets,
            usb=self.usb,
            metrics=self.metrics,
            leds=self.leds,
            restore=self.restore,
            guard=self.guard,
            checks=self.checks,
            drills=self.drills,
            snapshots=self.snapshots,
            quiescence=self.quiescence,
        )


def _read_sections(
    raw: Mapping[str, Any], hostname: str, problems: list[ConfigProblem]
) -> _Sections:
    root = Table(raw, "", problems, noun="section")
    source_table = root.required_table("source")
    source = _source(source_table) if source_table is not None else None
    schedule = _schedule(root.table("schedule"))
    retention_table = root.table("retention")
    # The prefix's default depends on the box: written here, beside the keys given.
    retention = RetentionConfig(
        **{"prefix": _default_prefix(hostname), **_section(retention_table, "retention")}
    )
    encryption_table = root.required_table("encryption")
    encryption = _encryption(encryption_table) if encryption_table is not None else None
    paths = PathsConfig(**_section(root.table("paths"), "paths"))
    borg = BorgConfig(**_section(root.table("borg"), "borg"))
    usb = UsbConfig(**_section(root.table("usb"), "usb"))
    metrics = MetricsConfig(**_section(root.table("metrics"), "metrics"))
    leds = LedsConfig(**_section(root.table("leds"), "leds"))
    restore = RestoreConfig(**_section(root.table("restore"), "restore"))
    guard = GuardConfig(**_section(root.table("guard"), "guard"))
    checks = ChecksConfig(**_section(root.table("checks"), "checks"))
    drills = DrillsConfig(**_section(root.table("drills"), "drills"))
    snapshots = _snapshots(root.table("snapshots"))
    quiescence = QuiescenceConfig(**_section(root.table("quiescence"), "quiescence"))
    targets = read_targets(root, source)
    root.finish()
    return _Sections(
        source,
        schedule,
        retention,
        encryption,
        paths,
        borg,
        targets,
        usb,
        metrics,
        leds,
        restore,
        guard,
        checks,
        drills,
        snapshots,
        quiescence,
    )


def _section(t: Table, section: str) -> dict[str, Any]:
    """The keys of ``section`` written in ``t``, converted, by name; then unknown keys reported.

    The keys absent (or invalid: a problem is recorded) are left out, so the
    dataclass's defaults, read from :mod:`coffre.core.config_keys`, apply.
    """
    keys = given(t, section)
    t.finish()
    return keys


def _source(t: Table) -> SourceConfig | None:
    keys = given(t, "source")
    t.problems.extend(_overlapping_sources(t.raw.get("paths")))
    t.finish()
    return SourceConfig(**keys) if "paths" in keys else None


def _overlapping_sources(raw: object) -> list[ConfigProblem]:
    """A source path given twice, or inside another (after folding ``.`` and ``//``).

    ``raw`` is the list as written; the paths that are valid on their own are
    compared, even when others are not (every problem is said in one pass).
    borg would back the inner one's files up twice, and a restore could not
    tell which root a path belongs to. The problem goes on the inner path.
    """
    paths: dict[int, Path] = {}
    for index, item in enumerate(raw if isinstance(raw, list) else ()):
        with contextlib.suppress(Invalid):
            paths[index] = source_path(item)
    problems: list[ConfigProblem] = []
    folded = {index: normal(path) for index, path in paths.items()}
    for index, path in folded.items():
        for other, outer in folded.items():
            if other == index or not is_within(path, outer):
                continue
            if path == outer and other > index:
                continue  # the same path twice: said once, on the second
            key = f"source.paths[{index}]"
            if path == outer:
                message = f"{paths[index]} is source.paths[{other}] again; remove one of them"
            else:
                message = (
                    f"{paths[index]} is inside source.paths[{other}] ({paths[other]}): "
                    "its files would be backed up twice; remove it"
                )
            problems.append(ConfigProblem(key, message))
            break
    return problems


def _schedule(t: Table) -> ScheduleConfig | None:
    keys = _section(t, "schedule")
    zone_name = keys.get("timezone", default_str("schedule.timezone"))
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except zoneinfo.ZoneInfoNotFoundError:
        # Only when the box has no timezone database at all (no tzdata package).
        t.problem("timezone", f"no timezone data for {show(zone_name)}; install tzdata")
        return None
    return ScheduleConfig(daily=keys.get("daily", default_time("schedule.daily")), timezone=zone)


def _snapshots(t: Table) -> SnapshotsConfig:
    """``[snapshots]``; office hours that end before they start are a problem (defaults kept)."""
    snapshots = SnapshotsConfig(**_section(t, "snapshots"))
    if parse_minute(snapshots.office_from) >= parse_minute(snapshots.office_to):
        t.problem("office_to", f"{snapshots.office_to!r} is not after office_from")
        return SnapshotsConfig()
    return snapshots


def _encryption(t: Table) -> EncryptionConfig | None:
    keys = _section(t, "encryption")
    return EncryptionConfig(**keys) if "passphrase_file" in keys else None


def _default_prefix(hostname: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", hostname).strip("._-")[:64].rstrip("._-")
    return cleaned or "coffre"
