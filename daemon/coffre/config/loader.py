"""The configuration file: TOML in, a frozen :class:`coffre.core.config_types.Config` out.

Every problem is reported, not just the first, each with its dotted key path
(``retention.daily``, ``target[1].path``, ``source.paths[0]``), so a technician
fixes the file in one pass. Checking happens in two steps:

- :func:`parse` is pure: it validates the dict ``tomllib`` gives;
- :func:`check_environment` looks at the box: the passphrase file and the
  source directories.

:func:`load` reads the file and runs both, reporting their problems together.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import math
import os
import re
import socket
import stat
import tomllib
import zoneinfo
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeAlias, TypeVar, overload

from coffre.core.config_types import (
    DEFAULT_CONFIG_PATH,
    BorgConfig,
    Config,
    EncryptionConfig,
    LedsConfig,
    LocalTarget,
    MetricsConfig,
    OffsiteTarget,
    PathsConfig,
    RestoreConfig,
    RetentionConfig,
    ScheduleConfig,
    SourceConfig,
    TargetConfig,
    UploadWindow,
    UsbConfig,
)
from coffre.core.errors import ConfigError, ConfigProblem
from coffre.core.sshkeys import parse_public_key, parse_url
from coffre.core.upload_window import parse_days, parse_minute

__all__ = ["INTEGER_BOUNDS", "Bound", "check_environment", "load", "parse", "resolve_path"]

_T = TypeVar("_T")

#: Turns a raw TOML value into the typed value of a key, or raises :class:`_Invalid`.
_Converter: TypeAlias = Callable[[object], _T]

_DEFAULT_DAILY = time(1, 30)
_DEFAULT_TIMEZONE = "Europe/Paris"
_ENCRYPTION_MODES = ("repokey-blake2", "repokey", "keyfile-blake2", "keyfile")
#: Compression algorithms borg takes, with the levels each accepts (None: no level).
_COMPRESSION_LEVELS: dict[str, range | None] = {
    "none": None,
    "lz4": None,
    "zstd": range(1, 23),
    "zlib": range(0, 10),
    "lzma": range(0, 10),
}
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# Archive names are "<prefix>-<time>": no "::" (borg's repo::archive separator), no "/".
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Target names become metric labels and file names: keep them lowercase and plain.
_TARGET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHOW_MAX = 80


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
    return _environment_problems(config.source, config.encryption, config.targets)


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
        problems += _environment_problems(sections.source, sections.encryption, sections.targets)
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


# --- reading tables ----------------------------------------------------------


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING = _Missing.MISSING


class _Invalid(Exception):
    """A converter's verdict: the value does not fit the key.

    ``problems`` are (key path suffix, message) pairs: a list converter names
    its bad items with suffixes like ``[1]``.
    """

    def __init__(self, message: str = "", *, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (("", message),)


class _Table:
    """One TOML table being read; problems go to the shared ``problems`` list.

    The keys asked for are remembered, so that :meth:`finish` can name every
    other key as unknown, with a did-you-mean: the readers are the schema.
    """

    def __init__(
        self,
        raw: Mapping[str, Any],
        path: str,
        problems: list[ConfigProblem],
        noun: str = "key",
    ) -> None:
        self.raw = raw
        self.path = path
        self.problems = problems
        self.noun = noun
        self.known: list[str] = []

    def key_path(self, key: str) -> str:
        shown = key if _BARE_KEY.fullmatch(key) else _show(key)
        return f"{self.path}.{shown}" if self.path else shown

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.key_path(key), message))

    def get(self, key: str, *, required: bool) -> object:
        """The raw value of ``key``, or ``_MISSING`` (a problem if ``required``)."""
        self.known.append(key)
        if key in self.raw:
            return self.raw[key]
        if required:
            self.problem(key, f"required {self.noun} is missing")
        return _MISSING

    @overload
    def read(self, key: str, convert: _Converter[_T]) -> _T | None: ...
    @overload
    def read(self, key: str, convert: _Converter[_T], default: _T) -> _T: ...
    def read(
        self, key: str, convert: _Converter[_T], default: _T | _Missing = _MISSING
    ) -> _T | None:
        """``key`` converted; without ``default`` it is required.

        A bad or missing value is recorded as a problem and gives ``default``
        (None when required), so reading goes on and finds the other problems.
        """
        fallback = None if isinstance(default, _Missing) else default
        value = self.get(key, required=isinstance(default, _Missing))
        if value is _MISSING:
            return fallback
        try:
            return convert(value)
        except _Invalid as invalid:
            for suffix, message in invalid.problems:
                self.problems.append(ConfigProblem(self.key_path(key) + suffix, message))
            return fallback

    def table(self, key: str) -> _Table:
        """The optional sub-table ``key``; empty when absent or not a table."""
        return self._sub_table(key, required=False) or _Table({}, self.key_path(key), self.problems)

    def required_table(self, key: str) -> _Table | None:
        """The sub-table ``key``, or None (and a problem) when absent or not a table."""
        return self._sub_table(key, required=True)

    def _sub_table(self, key: str, *, required: bool) -> _Table | None:
        value = self.get(key, required=required)
        if isinstance(value, dict):
            return _Table(value, self.key_path(key), self.problems)
        if value is not _MISSING:
            self.problem(key, f"expected a table ([{key}]), got {_show(value)}")
        return None

    def finish(self) -> None:
        """Report every key that no reader asked for."""
        for key in self.raw:
            if key not in self.known:
                self.problem(key, f"unknown {self.noun}{_suggest(key, self.known, self.noun)}")


# --- converters --------------------------------------------------------------


def _string(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid(f"expected a string, got {_show(value)}")


@dataclass(frozen=True)
class Bound:
    """The integers a key takes: ``minimum`` to ``maximum``, and why no more (for messages)."""

    minimum: int
    maximum: int
    why: str


#: Every integer key, by its dotted path (``target.`` keys for each target), and its bounds.
#: TOML integers are unbounded: without a maximum, 100000000000 would pass the check
#: and break a job later (a timedelta or a float overflows, a list of that many
#: retention slots is built). The README's configuration reference shows each maximum.
INTEGER_BOUNDS: dict[str, Bound] = {
    "retention.daily": Bound(1, 366, "a year of daily restore points; older ones are monthly"),
    "retention.monthly": Bound(
        0, 240, "20 years, the time a French medical record is kept; each is a metric series"
    ),
    "borg.lock_wait": Bound(
        0, 3600, "an hour: a lock held longer is stale or another host's, never broken silently"
    ),
    "borg.checkpoint_interval": Bound(
        10, 86400, "a day: a cut backup resumes from its last checkpoint"
    ),
    "borg.stop_timeout": Bound(
        1, 600, "10 minutes; the unit's TimeoutStopSec= must leave room for it"
    ),
    "usb.swap_after_days": Bound(1, 365, "a year"),
    "usb.missing_after_days": Bound(1, 365, "a year"),
    "usb.check_max_duration": Bound(
        10, 3600, "an hour per disk job; the check resumes where it stopped next time"
    ),
    "restore.disk_wait": Bound(10, 3600, "an hour: the person who asked waits at the terminal"),
    "restore.browse_idle": Bound(1, 86400, "a day"),
    "restore.browse_max": Bound(
        60, 86400, "a day: while mounted, the target's backups wait for the browse"
    ),
    "restore.find_max_results": Bound(
        1, 100_000, "the hits travel in one answer and are printed one per line"
    ),
    "target.retry_for": Bound(0, 10080, "a week of minutes"),
    "target.retry_delay": Bound(1, 1800, "the longest wait between two retries, 30 minutes"),
    "target.connect_timeout": Bound(1, 300, "5 minutes"),
    "target.upload_window.limit_kbps": Bound(
        1, 1_000_000, "about 8 Gbit/s, more than a practice's uplink; for no limit, no window"
    ),
}


def _integer(key: str) -> _Converter[int]:
    """The converter of the integer key ``key`` of :data:`INTEGER_BOUNDS`."""
    bound = INTEGER_BOUNDS[key]

    def convert(value: object) -> int:
        # bool is an int in Python, but `true` is not a number in TOML.
        if not isinstance(value, int) or isinstance(value, bool) or value < bound.minimum:
            raise _Invalid(f"expected an integer >= {bound.minimum}, got {_show(value)}")
        if value > bound.maximum:
            raise _Invalid(
                f"{_show(value)} is more than {bound.maximum}, the most allowed ({bound.why}); "
                f"write a number from {bound.minimum} to {bound.maximum}"
            )
        return value

    return convert


def _absolute_path(value: object) -> Path:
    # A NUL would make every later os call raise ValueError instead of OSError.
    if isinstance(value, str) and "\0" not in value and Path(value).is_absolute():
        return Path(value)
    raise _Invalid(f'expected an absolute path (starting with "/"), got {_show(value)}')


#: C0 controls, DEL and C1 controls: no file name of the share holds one (Windows
#: refuses them), borg's argv builders refuse most, and a terminal shows none.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Pattern styles borg 1.4 knows in an exclude ("sh:**/*.tmp"); none: fnmatch.
_PATTERN_STYLES = ("fm", "sh", "re", "pp", "pf")


def _control_problem(value: str, what: str) -> str | None:
    """What is wrong with the control character in ``value`` (a ``what``), or None."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return (
        f"{_show(value)} contains a control character ({_char_name(found[0])}): "
        f"retype the {what} (one pasted with a tab or a trailing CR?)"
    )


def _char_name(char: str) -> str:
    names = {"\t": "a tab", "\r": "a carriage return", "\n": "a line feed", "\0": "a NUL"}
    return names.get(char, f"U+{ord(char):04X}")


def _borg_path(*, location: bool) -> _Converter[Path]:
    """An absolute path that borg gets on its command line as it is written.

    ``location``: a repository (or a folder repositories are mounted under),
    where borg reads ``::`` as the start of an archive name and expands
    ``{...}`` (``{hostname}``, ``{now}``) as placeholders.
    """

    def convert(value: object) -> Path:
        problem = _control_problem(value, "path") if isinstance(value, str) else None
        if problem is not None:
            raise _Invalid(problem)
        path = _absolute_path(value)
        text = str(value)
        if location and "::" in text:
            raise _Invalid(
                f'{_show(text)} contains "::", which borg reads as the start of an '
                'archive name; choose a folder whose name has no "::"'
            )
        if location and ("{" in text or "}" in text):
            raise _Invalid(
                f"{_show(text)} contains a brace, which borg would expand as a placeholder "
                '("{hostname}", "{now}"); choose a folder whose name has no "{" or "}"'
            )
        return path

    return convert


def _source_path(value: object) -> Path:
    path = _borg_path(location=False)(value)
    if ".." in path.parts:
        # Restores find a file by its source root as written: borg stores it folded.
        raise _Invalid(f'{_show(value)} contains "..": write the folder itself, {_normal(path)}')
    return path


def _exclude_pattern(value: object) -> str:
    """A borg exclude pattern, as ``borg create --exclude`` takes it (not empty, a known style)."""
    pattern = _string(value)
    if not pattern:
        raise _Invalid('an empty pattern; remove it, or write one such as "*.tmp"')
    problem = _control_problem(pattern, "pattern")
    if problem is not None:
        raise _Invalid(problem)
    # borg's own test (patterns.parse_pattern): two letters or digits, then ":".
    if len(pattern) > 2 and pattern[2] == ":" and pattern[:2].isalnum():
        style, body = pattern[:2], pattern[3:]
        if style not in _PATTERN_STYLES:
            styles = ", ".join(f'"{known}:"' for known in _PATTERN_STYLES)
            raise _Invalid(
                f'{_show(pattern)} starts with "{style}:", a pattern style borg does not know '
                f"(it knows {styles}); with no prefix a pattern is fnmatch"
            )
        if not body:
            # An empty "re:" matches every path: each backup would be empty, and "ok".
            raise _Invalid(
                f'{_show(pattern)} has nothing after "{style}:"; write what to exclude after it'
            )
        if style == "re":
            try:
                re.compile(body)  # borg compiles it with Python's re too
            except re.error as error:
                raise _Invalid(
                    f"{_show(pattern)} is not a regular expression ({error}); fix it, "
                    'or use a shell pattern ("sh:**/*.tmp")'
                ) from None
    return pattern


def _borg_binary(value: object) -> str:
    binary = _string(value)
    problem = _control_problem(binary, "path")
    if problem is not None:
        raise _Invalid(problem)
    return binary


def _list_of(item: _Converter[_T], what: str, *, non_empty: bool) -> _Converter[tuple[_T, ...]]:
    def convert(value: object) -> tuple[_T, ...]:
        if not isinstance(value, list) or (non_empty and not value):
            raise _Invalid(f"expected {what}, got {_show(value)}")
        items: list[_T] = []
        problems: list[tuple[str, str]] = []
        for index, raw_item in enumerate(value):
            try:
                items.append(item(raw_item))
            except _Invalid as invalid:
                problems += [(f"[{index}]{suffix}", msg) for suffix, msg in invalid.problems]
        if problems:
            raise _Invalid(problems=problems)
        return tuple(items)

    return convert


def _time_of_day(value: object) -> time:
    if isinstance(value, str) and (match := _TIME_OF_DAY.fullmatch(value)):
        return time(int(match[1]), int(match[2]))
    # A TOML local time (daily = 01:30:00) is as clear as the string.
    if isinstance(value, time) and value.second == value.microsecond == 0:
        return value
    raise _Invalid(f'expected a time of day "HH:MM" (00:00 to 23:59), got {_show(value)}')


@functools.cache
def _timezone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone_name(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f'expected a timezone name such as "Europe/Paris", got {_show(value)}')
    if value not in _timezone_names():
        raise _Invalid(f"unknown timezone {_show(value)}{_did_you_mean(value, _timezone_names())}")
    return value


def _prefix(value: object) -> str:
    if isinstance(value, str) and _PREFIX.fullmatch(value):
        return value
    raise _Invalid(
        'expected 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit, '
        f"got {_show(value)}"
    )


def _encryption_mode(value: object) -> str:
    if isinstance(value, str) and value in _ENCRYPTION_MODES:
        return value
    expected = f"expected one of {_one_of(_ENCRYPTION_MODES)}"
    if isinstance(value, str) and (value == "none" or value.startswith("authenticated")):
        raise _Invalid(
            f"{_show(value)} is refused: the backups hold health data and must be encrypted; "
            + expected
        )
    raise _Invalid(f"{expected}, got {_show(value)}")


def _compression(value: object) -> str:
    if isinstance(value, str):
        name, comma, level = value.removeprefix("auto,").partition(",")
        if name in _COMPRESSION_LEVELS:
            levels = _COMPRESSION_LEVELS[name]
            if not comma or (
                levels is not None and level.isascii() and level.isdigit() and int(level) in levels
            ):
                return value
    raise _Invalid(
        'expected "none", "lz4", "zstd[,1-22]", "zlib[,0-9]" or "lzma[,0-9]", '
        f'optionally after "auto,", got {_show(value)}'
    )


def _target_name(value: object) -> str:
    if isinstance(value, str) and _TARGET_NAME.fullmatch(value):
        return value
    raise _Invalid(
        'expected 1 to 32 lowercase letters, digits, "_" or "-", starting with a letter '
        f"or digit, got {_show(value)}"
    )


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid(f"expected true or false, got {_show(value)}")


# "host:port": an IPv4 address or a host name, or an IPv6 address in brackets.
_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})")


def _listen(value: object) -> str:
    if isinstance(value, str) and (match := _LISTEN.fullmatch(value)) and 0 < int(match[2]) < 65536:
        return value
    raise _Invalid(
        'expected "host:port" (e.g. "127.0.0.1:9851", "[::1]:9851"), port 1 to 65535, '
        f"got {_show(value)}"
    )


def _led_name(value: object) -> str:
    # One directory name under the sysfs root: never a path out of it.
    if isinstance(value, str) and value not in ("", ".", "..") and not {"/", "\0"} & set(value):
        return value
    raise _Invalid(f'expected the name of an LED (e.g. "coffre:green"), got {_show(value)}')


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
        )


def _read_sections(
    raw: Mapping[str, Any], hostname: str, problems: list[ConfigProblem]
) -> _Sections:
    root = _Table(raw, "", problems, noun="section")
    source_table = root.required_table("source")
    source = _source(source_table) if source_table is not None else None
    schedule = _schedule(root.table("schedule"))
    retention = _retention(root.table("retention"), hostname)
    encryption_table = root.required_table("encryption")
    encryption = _encryption(encryption_table) if encryption_table is not None else None
    paths = _paths(root.table("paths"))
    borg = _borg(root.table("borg"))
    usb = _usb(root.table("usb"))
    metrics = _metrics(root.table("metrics"))
    leds = _leds(root.table("leds"))
    restore = _restore(root.table("restore"))
    targets = _targets(root, source)
    root.finish()
    return _Sections(
        source, schedule, retention, encryption, paths, borg, targets, usb, metrics, leds, restore
    )


# The dataclasses' defaults are read from the classes, so config_types stays the
# one place where they are written.


def _source(t: _Table) -> SourceConfig | None:
    paths = t.read(
        "paths", _list_of(_source_path, "a non-empty list of absolute paths", non_empty=True)
    )
    exclude = t.read(
        "exclude",
        _list_of(_exclude_pattern, "a list of strings", non_empty=False),
        SourceConfig.exclude,
    )
    t.problems.extend(_overlapping_sources(t.raw.get("paths")))
    t.finish()
    return SourceConfig(paths, exclude) if paths is not None else None


def _overlapping_sources(raw: object) -> list[ConfigProblem]:
    """A source path given twice, or inside another (after folding ``.`` and ``//``).

    ``raw`` is the list as written; the paths that are valid on their own are
    compared, even when others are not (every problem is said in one pass).
    borg would back the inner one's files up twice, and a restore could not
    tell which root a path belongs to. The problem goes on the inner path.
    """
    paths: dict[int, Path] = {}
    for index, item in enumerate(raw if isinstance(raw, list) else ()):
        with contextlib.suppress(_Invalid):
            paths[index] = _source_path(item)
    problems: list[ConfigProblem] = []
    normal = {index: _normal(path) for index, path in paths.items()}
    for index, path in normal.items():
        for other, outer in normal.items():
            if other == index or not _is_within(path, outer):
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


def _schedule(t: _Table) -> ScheduleConfig | None:
    daily = t.read("daily", _time_of_day, _DEFAULT_DAILY)
    zone_name = t.read("timezone", _timezone_name, _DEFAULT_TIMEZONE)
    t.finish()
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except zoneinfo.ZoneInfoNotFoundError:
        # Only when the box has no timezone database at all (no tzdata package).
        t.problem("timezone", f"no timezone data for {_show(zone_name)}; install tzdata")
        return None
    return ScheduleConfig(daily=daily, timezone=zone)


def _retention(t: _Table, hostname: str) -> RetentionConfig:
    retention = RetentionConfig(
        prefix=t.read("prefix", _prefix, _default_prefix(hostname)),
        daily=t.read("daily", _integer("retention.daily"), RetentionConfig.daily),
        monthly=t.read("monthly", _integer("retention.monthly"), RetentionConfig.monthly),
    )
    t.finish()
    return retention


def _encryption(t: _Table) -> EncryptionConfig | None:
    passphrase_file = t.read("passphrase_file", _absolute_path)
    mode = t.read("mode", _encryption_mode, EncryptionConfig.mode)
    t.finish()
    return EncryptionConfig(passphrase_file, mode) if passphrase_file is not None else None


def _paths(t: _Table) -> PathsConfig:
    paths = PathsConfig(
        state=t.read("state", _absolute_path, PathsConfig.state),
        cache=t.read("cache", _absolute_path, PathsConfig.cache),
        # USB disks are mounted under it: their repositories' locations start with it.
        runtime=t.read("runtime", _borg_path(location=True), PathsConfig.runtime),
    )
    t.finish()
    return paths


def _borg(t: _Table) -> BorgConfig:
    borg = BorgConfig(
        binary=t.read("binary", _borg_binary, BorgConfig.binary),
        lock_wait=t.read("lock_wait", _integer("borg.lock_wait"), BorgConfig.lock_wait),
        checkpoint_interval=t.read(
            "checkpoint_interval",
            _integer("borg.checkpoint_interval"),
            BorgConfig.checkpoint_interval,
        ),
        compression=t.read("compression", _compression, BorgConfig.compression),
        stop_timeout=t.read("stop_timeout", _integer("borg.stop_timeout"), BorgConfig.stop_timeout),
    )
    t.finish()
    return borg


def _usb(t: _Table) -> UsbConfig:
    usb = UsbConfig(
        swap_after_days=t.read(
            "swap_after_days", _integer("usb.swap_after_days"), UsbConfig.swap_after_days
        ),
        missing_after_days=t.read(
            "missing_after_days", _integer("usb.missing_after_days"), UsbConfig.missing_after_days
        ),
        check_max_duration=t.read(
            "check_max_duration", _integer("usb.check_max_duration"), UsbConfig.check_max_duration
        ),
    )
    t.finish()
    return usb


def _restore(t: _Table) -> RestoreConfig:
    restore = RestoreConfig(
        disk_wait=t.read("disk_wait", _integer("restore.disk_wait"), RestoreConfig.disk_wait),
        browse_idle=t.read(
            "browse_idle", _integer("restore.browse_idle"), RestoreConfig.browse_idle
        ),
        browse_max=t.read("browse_max", _integer("restore.browse_max"), RestoreConfig.browse_max),
        find_max_results=t.read(
            "find_max_results", _integer("restore.find_max_results"), RestoreConfig.find_max_results
        ),
    )
    t.finish()
    return restore


def _metrics(t: _Table) -> MetricsConfig:
    metrics = MetricsConfig(
        enabled=t.read("enabled", _boolean, MetricsConfig.enabled),
        listen=t.read("listen", _listen, MetricsConfig.listen),
    )
    t.finish()
    return metrics


def _leds(t: _Table) -> LedsConfig:
    leds = LedsConfig(
        enabled=t.read("enabled", _boolean, LedsConfig.enabled),
        sysfs_root=t.read("sysfs_root", _absolute_path, LedsConfig.sysfs_root),
        green=t.read("green", _led_name, LedsConfig.green),
        amber=t.read("amber", _led_name, LedsConfig.amber),
        red=t.read("red", _led_name, LedsConfig.red),
    )
    t.finish()
    return leds


# --- targets -----------------------------------------------------------------


def _local_target(t: _Table, name: str | None) -> LocalTarget | None:
    path = t.read("path", _borg_path(location=True))
    return LocalTarget(name=name, path=path) if name is not None and path is not None else None


def _via(parse: Callable[[str], _T], what: str) -> _Converter[_T]:
    """A converter of strings through ``parse``, whose ValueError becomes the problem."""

    def convert(value: object) -> _T:
        if not isinstance(value, str):
            raise _Invalid(f"expected {what}, got {_show(value)}")
        try:
            return parse(value)
        except ValueError as error:
            raise _Invalid(str(error)) from None

    return convert


def _upload_windows(t: _Table) -> tuple[UploadWindow, ...]:
    """``[[target.upload_window]]`` tables: days, from, to, limit_kbps."""
    value = t.get("upload_window", required=False)
    if value is _MISSING:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        t.problem("upload_window", f"expected [[target.upload_window]] tables, got {_show(value)}")
        return ()
    windows: list[UploadWindow] = []
    for index, item in enumerate(value):
        w = _Table(item, f"{t.key_path('upload_window')}[{index}]", t.problems)
        days = w.read("days", _via(parse_days, 'days such as "mon-fri"'), frozenset(range(7)))
        start = w.read("from", _via(parse_minute, 'a time "HH:MM"'))
        end = w.read("to", _via(parse_minute, 'a time "HH:MM"'))
        limit = w.read("limit_kbps", _integer("target.upload_window.limit_kbps"))
        w.finish()
        if start == 24 * 60:
            w.problem("from", 'expected a time "HH:MM" from 00:00 to 23:59')
        elif start is not None and start == end:
            w.problem("to", 'equals "from": the window is empty (00:00 to 24:00 is a whole day)')
        elif start is not None and end is not None and limit is not None:
            windows.append(UploadWindow(days, start, end, limit))
    return tuple(windows)


def _offsite_target(t: _Table, name: str | None) -> OffsiteTarget | None:
    url = t.read("url", _via(parse_url, "an ssh://user@host:port/path URL"))
    no_keys: tuple[str, ...] = ()
    host_keys = t.read(
        "host_keys",
        _list_of(
            _via(lambda text: parse_public_key(text).openssh, '"type base64" host keys'),
            'a list of host keys ("ssh-ed25519 AAAA...")',
            non_empty=False,
        ),
        no_keys,
    )
    windows = _upload_windows(t)
    retry_for = t.read("retry_for", _integer("target.retry_for"), OffsiteTarget.retry_for)
    retry_delay = t.read("retry_delay", _integer("target.retry_delay"), OffsiteTarget.retry_delay)
    timeout = t.read(
        "connect_timeout", _integer("target.connect_timeout"), OffsiteTarget.connect_timeout
    )
    ssh_key = t.read("ssh_key", _absolute_path, None)
    if name is None or url is None:
        return None
    return OffsiteTarget(
        name=name,
        user=url.user,
        host=url.host,
        port=url.port,
        path=url.path,
        host_keys=host_keys,
        upload_windows=windows,
        retry_for=retry_for,
        retry_delay=retry_delay,
        connect_timeout=timeout,
        ssh_key=ssh_key,
    )


#: Every kind of target and the function reading its table (after name and kind):
#: a new kind is one entry here.
_TARGET_KINDS: dict[str, Callable[[_Table, str | None], TargetConfig | None]] = {
    "local": _local_target,
    "offsite": _offsite_target,
}


def _targets(root: _Table, source: SourceConfig | None) -> list[TargetConfig | None]:
    value = root.get("target", required=True)
    if value is _MISSING:
        return []
    if not isinstance(value, list) or not value:
        root.problem("target", f"expected one or more [[target]] tables, got {_show(value)}")
        return []
    targets: list[TargetConfig | None] = []
    for index, item in enumerate(value):
        path = f"{root.key_path('target')}[{index}]"
        if isinstance(item, dict):
            targets.append(_target(_Table(item, path, root.problems)))
        else:
            root.problems.append(ConfigProblem(path, f"expected a table, got {_show(item)}"))
            targets.append(None)
    root.problems.extend(_target_conflicts(targets, source))
    return targets


def _target(t: _Table) -> TargetConfig | None:
    name = t.read("name", _target_name)
    kind = t.read("kind", _string)
    if kind is None:
        return None
    read_kind = _TARGET_KINDS.get(kind)
    if read_kind is None:
        t.problem("kind", f"unknown kind {_show(kind)}; expected one of {_one_of(_TARGET_KINDS)}")
        return None  # the other keys depend on the kind: nothing more to say about them
    target = read_kind(t, name)
    t.finish()
    return target


def _target_conflicts(
    targets: Sequence[TargetConfig | None], source: SourceConfig | None
) -> list[ConfigProblem]:
    """Names used twice, two targets on one repository, a repository inside a source."""
    problems: list[ConfigProblem] = []
    names: set[str] = set()
    locations: dict[Path, int] = {}
    for index, target in enumerate(targets):
        if target is None:
            continue
        if target.name in names:
            problems.append(
                ConfigProblem(
                    f"target[{index}].name", f"duplicate target name {_show(target.name)}"
                )
            )
        names.add(target.name)
        if not isinstance(target, LocalTarget):
            continue
        key = f"target[{index}].path"
        path = _normal(target.path)
        if path in locations:
            # Two names for one repository would split its history in the state.
            problems.append(
                ConfigProblem(
                    key,
                    f"{target.path} is already the repository of target[{locations[path]}]; "
                    "each target needs its own repository",
                )
            )
        locations.setdefault(path, index)
        for source_index, source_path in enumerate(source.paths if source is not None else ()):
            if _is_within(path, _normal(source_path)):
                problems.append(ConfigProblem(key, _inside_source(target.path, source_index)))
    return problems


def _inside_source(target_path: Path, source_index: int, via: str = "") -> str:
    return (
        f"{target_path} is inside source.paths[{source_index}]{via}: "
        "the repository would back itself up every night"
    )


# --- environment -------------------------------------------------------------


def _environment_problems(
    source: SourceConfig | None,
    encryption: EncryptionConfig | None,
    targets: Sequence[TargetConfig | None],
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if encryption is not None:
        problems += _passphrase_file_problems(encryption.passphrase_file)
    if source is None:
        return problems
    resolved_sources: list[Path | None] = []
    for index, path in enumerate(source.paths):
        key = f"source.paths[{index}]"
        status = _stat(path, key, problems)
        if status is not None and not stat.S_ISDIR(status.st_mode):
            problems.append(ConfigProblem(key, f"{path} is not a directory"))
        resolved_sources.append(_resolved(path))
    # parse() compared the paths as written; a symlink can still lead a target in.
    for index, target in enumerate(targets):
        if not isinstance(target, LocalTarget) or (resolved := _resolved(target.path)) is None:
            continue
        for source_index, source_path in enumerate(source.paths):
            real_source = resolved_sources[source_index]
            if (
                real_source is not None
                and _is_within(resolved, real_source)
                and not _is_within(_normal(target.path), _normal(source_path))
            ):
                message = _inside_source(target.path, source_index, " through symlinks")
                problems.append(ConfigProblem(f"target[{index}].path", message))
    return problems


def _passphrase_file_problems(path: Path) -> list[ConfigProblem]:
    key = "encryption.passphrase_file"
    problems: list[ConfigProblem] = []
    status = _stat(path, key, problems)
    if status is None:
        return problems
    if not stat.S_ISREG(status.st_mode):
        return [ConfigProblem(key, f"{path} is not a regular file")]
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        # Whoever reads it can open every backup of the practice's health data.
        opened = " and ".join(
            word for bits, word in ((0o044, "readable"), (0o022, "writable")) if mode & bits
        )
        problems.append(
            ConfigProblem(
                key,
                f"{path} is {opened or 'accessible'} by group or others (mode {mode:04o}); "
                f"run: chmod 600 {path}",
            )
        )
    if not os.access(path, os.R_OK):
        problems.append(ConfigProblem(key, f"{path} is not readable by uid {os.getuid()}"))
    elif status.st_size == 0:
        problems.append(ConfigProblem(key, f"{path} is empty; write the passphrase in it"))
    return problems


def _stat(path: Path, key: str, problems: list[ConfigProblem]) -> os.stat_result | None:
    """``path``'s status (following symlinks), or None with the problem recorded."""
    try:
        return path.stat()
    except FileNotFoundError:
        problems.append(ConfigProblem(key, f"{path} does not exist"))
    except OSError as error:
        problems.append(ConfigProblem(key, f"{path} cannot be examined: {error.strerror}"))
    return None


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return None


# --- small helpers -----------------------------------------------------------


def _normal(path: Path) -> Path:
    """``path`` with ``.`` and ``..`` folded, without asking the filesystem."""
    return Path(os.path.normpath(path))


def _is_within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _default_prefix(hostname: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", hostname).strip("._-")[:64].rstrip("._-")
    return cleaned or "coffre"


def _show(value: object) -> str:
    """``value`` as TOML would write it, cut short when long."""
    shown: str
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
        # json escapes C0 controls only: DEL and C1 ones would reach the terminal as they are.
        shown = re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m[0]):04x}", shown)
    elif isinstance(value, float) and not math.isfinite(value):
        shown = str(value)  # inf, -inf, nan: TOML spells them as Python prints them
    elif isinstance(value, list):
        shown = "[" + ", ".join(_show(item) for item in value) + "]"
    elif isinstance(value, dict):
        shown = "{" + ", ".join(f"{_show_key(k)} = {_show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, datetime | date | time):
        shown = value.isoformat()
    else:
        shown = repr(value)
    return shown if len(shown) <= _SHOW_MAX else shown[: _SHOW_MAX - 3] + "..."


def _show_key(key: object) -> str:
    return key if isinstance(key, str) and _BARE_KEY.fullmatch(key) else _show(key)


def _one_of(choices: Collection[str]) -> str:
    return ", ".join(_show(choice) for choice in choices)


def _did_you_mean(word: str, candidates: Collection[str]) -> str:
    import difflib  # only for a mistake: every CLI command reads the configuration

    by_lower = {candidate.lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(word, candidates, n=1)
    guess = by_lower.get(word.lower()) or (close[0] if close else None)
    return f"; did you mean {_show(guess)}?" if guess else ""


def _suggest(word: str, known: Sequence[str], noun: str) -> str:
    return _did_you_mean(word, known) or f"; known {noun}s are {_one_of(known)}"
