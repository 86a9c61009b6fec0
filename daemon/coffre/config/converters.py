"""Converters: a raw TOML value in, the typed value of a key out, or :class:`Invalid`.

:data:`CONVERTERS` gives each key of :data:`coffre.core.config_keys.KEYS` its
converter: integers are checked against their bounds, booleans and paths by
their type, every other key by the converter named here (a new string key
needs one: the import fails until it has). :func:`given` reads the keys of a
section with them.
"""

from __future__ import annotations

import functools
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import time
from pathlib import Path
from typing import Any, TypeVar

from coffre.config.table import MISSING, Converter, Invalid, Table, did_you_mean, one_of, show
from coffre.core.config_keys import KEYS, REQUIRED, Bound, Key, Type
from coffre.core.sshkeys import parse_public_key, parse_url
from coffre.core.upload_window import parse_days, parse_minute

_T = TypeVar("_T")

#: Every integer key, by its dotted path (``target.`` keys for each target), and its bounds.
INTEGER_BOUNDS: dict[str, Bound] = {
    path: key.bound for path, key in KEYS.items() if key.bound is not None
}
_ENCRYPTION_MODES = KEYS["encryption.mode"].choices
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


def string(value: object) -> str:
    if isinstance(value, str):
        return value
    raise Invalid(f"expected a string, got {show(value)}")


def integer(key: str) -> Converter[int]:
    """The converter of the integer key ``key`` (a dotted path), within its bounds.

    TOML integers are unbounded: without a maximum, 100000000000 would pass the
    check and break a job later (a timedelta or a float overflows, a list of
    that many retention slots is built). Raises KeyError for a key without bounds.
    """
    bound = INTEGER_BOUNDS[key]

    def convert(value: object) -> int:
        # bool is an int in Python, but `true` is not a number in TOML.
        if not isinstance(value, int) or isinstance(value, bool) or value < bound.minimum:
            raise Invalid(f"expected an integer >= {bound.minimum}, got {show(value)}")
        if value > bound.maximum:
            raise Invalid(
                f"{show(value)} is more than {bound.maximum}, the most allowed ({bound.why}); "
                f"write a number from {bound.minimum} to {bound.maximum}"
            )
        return value

    return convert


def absolute_path(value: object) -> Path:
    # A NUL would make every later os call raise ValueError instead of OSError.
    if isinstance(value, str) and "\0" not in value and Path(value).is_absolute():
        return Path(value)
    raise Invalid(f'expected an absolute path (starting with "/"), got {show(value)}')


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
        f"{show(value)} contains a control character ({_char_name(found[0])}): "
        f"retype the {what} (one pasted with a tab or a trailing CR?)"
    )


def _char_name(char: str) -> str:
    names = {"\t": "a tab", "\r": "a carriage return", "\n": "a line feed", "\0": "a NUL"}
    return names.get(char, f"U+{ord(char):04X}")


def borg_path(*, location: bool) -> Converter[Path]:
    """An absolute path that borg gets on its command line as it is written.

    ``location``: a repository (or a folder repositories are mounted under),
    where borg reads ``::`` as the start of an archive name and expands
    ``{...}`` (``{hostname}``, ``{now}``) as placeholders.
    """

    def convert(value: object) -> Path:
        problem = _control_problem(value, "path") if isinstance(value, str) else None
        if problem is not None:
            raise Invalid(problem)
        path = absolute_path(value)
        text = str(value)
        if location and "::" in text:
            raise Invalid(
                f'{show(text)} contains "::", which borg reads as the start of an '
                'archive name; choose a folder whose name has no "::"'
            )
        if location and ("{" in text or "}" in text):
            raise Invalid(
                f"{show(text)} contains a brace, which borg would expand as a placeholder "
                '("{hostname}", "{now}"); choose a folder whose name has no "{" or "}"'
            )
        return path

    return convert


def source_path(value: object) -> Path:
    path = borg_path(location=False)(value)
    if ".." in path.parts:
        # Restores find a file by its source root as written: borg stores it folded.
        raise Invalid(f'{show(value)} contains "..": write the folder itself, {normal(path)}')
    return path


def exclude_pattern(value: object) -> str:
    """A borg exclude pattern, as ``borg create --exclude`` takes it (not empty, a known style)."""
    pattern = string(value)
    if not pattern:
        raise Invalid('an empty pattern; remove it, or write one such as "*.tmp"')
    problem = _control_problem(pattern, "pattern")
    if problem is not None:
        raise Invalid(problem)
    # borg's own test (patterns.parse_pattern): two letters or digits, then ":".
    if len(pattern) > 2 and pattern[2] == ":" and pattern[:2].isalnum():
        style, body = pattern[:2], pattern[3:]
        if style not in _PATTERN_STYLES:
            styles = ", ".join(f'"{known}:"' for known in _PATTERN_STYLES)
            raise Invalid(
                f'{show(pattern)} starts with "{style}:", a pattern style borg does not know '
                f"(it knows {styles}); with no prefix a pattern is fnmatch"
            )
        if not body:
            # An empty "re:" matches every path: each backup would be empty, and "ok".
            raise Invalid(
                f'{show(pattern)} has nothing after "{style}:"; write what to exclude after it'
            )
        if style == "re":
            try:
                re.compile(body)  # borg compiles it with Python's re too
            except re.error as error:
                raise Invalid(
                    f"{show(pattern)} is not a regular expression ({error}); fix it, "
                    'or use a shell pattern ("sh:**/*.tmp")'
                ) from None
    return pattern


def borg_binary(value: object) -> str:
    binary = string(value)
    problem = _control_problem(binary, "path")
    if problem is not None:
        raise Invalid(problem)
    return binary


def list_of(item: Converter[_T], what: str, *, non_empty: bool) -> Converter[tuple[_T, ...]]:
    def convert(value: object) -> tuple[_T, ...]:
        if not isinstance(value, list) or (non_empty and not value):
            raise Invalid(f"expected {what}, got {show(value)}")
        items: list[_T] = []
        problems: list[tuple[str, str]] = []
        for index, raw_item in enumerate(value):
            try:
                items.append(item(raw_item))
            except Invalid as invalid:
                problems += [(f"[{index}]{suffix}", msg) for suffix, msg in invalid.problems]
        if problems:
            raise Invalid(problems=problems)
        return tuple(items)

    return convert


def time_of_day(value: object) -> time:
    if isinstance(value, str) and (match := _TIME_OF_DAY.fullmatch(value)):
        return time(int(match[1]), int(match[2]))
    # A TOML local time (daily = 01:30:00) is as clear as the string.
    if isinstance(value, time) and value.second == value.microsecond == 0:
        return value
    raise Invalid(f'expected a time of day "HH:MM" (00:00 to 23:59), got {show(value)}')


@functools.cache
def timezone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_name(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f'expected a timezone name such as "Europe/Paris", got {show(value)}')
    if value not in timezone_names():
        raise Invalid(f"unknown timezone {show(value)}{did_you_mean(value, timezone_names())}")
    return value


def prefix(value: object) -> str:
    if isinstance(value, str) and _PREFIX.fullmatch(value):
        return value
    raise Invalid(
        'expected 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit, '
        f"got {show(value)}"
    )


def encryption_mode(value: object) -> str:
    if isinstance(value, str) and value in _ENCRYPTION_MODES:
        return value
    expected = f"expected one of {one_of(_ENCRYPTION_MODES)}"
    if isinstance(value, str) and (value == "none" or value.startswith("authenticated")):
        raise Invalid(
            f"{show(value)} is refused: the backups hold health data and must be encrypted; "
            + expected
        )
    raise Invalid(f"{expected}, got {show(value)}")


def compression(value: object) -> str:
    if isinstance(value, str):
        name, comma, level = value.removeprefix("auto,").partition(",")
        if name in _COMPRESSION_LEVELS:
            levels = _COMPRESSION_LEVELS[name]
            if not comma or (
                levels is not None and level.isascii() and level.isdigit() and int(level) in levels
            ):
                return value
    raise Invalid(
        'expected "none", "lz4", "zstd[,1-22]", "zlib[,0-9]" or "lzma[,0-9]", '
        f'optionally after "auto,", got {show(value)}'
    )


def target_name(value: object) -> str:
    if isinstance(value, str) and _TARGET_NAME.fullmatch(value):
        return value
    raise Invalid(
        'expected 1 to 32 lowercase letters, digits, "_" or "-", starting with a letter '
        f"or digit, got {show(value)}"
    )


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise Invalid(f"expected true or false, got {show(value)}")


# "host:port": an IPv4 address or a host name, or an IPv6 address in brackets.
_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})")


def listen(value: object) -> str:
    if isinstance(value, str) and (match := _LISTEN.fullmatch(value)) and 0 < int(match[2]) < 65536:
        return value
    raise Invalid(
        'expected "host:port" (e.g. "127.0.0.1:9851", "[::1]:9851"), port 1 to 65535, '
        f"got {show(value)}"
    )


def led_name(value: object) -> str:
    # One directory name under the sysfs root: never a path out of it.
    if isinstance(value, str) and value not in ("", ".", "..") and not {"/", "\0"} & set(value):
        return value
    raise Invalid(f'expected the name of an LED (e.g. "coffre:green"), got {show(value)}')


def via(parse: Callable[[str], _T], what: str) -> Converter[_T]:
    """A converter of strings through ``parse``, whose ValueError becomes the problem."""

    def convert(value: object) -> _T:
        if not isinstance(value, str):
            raise Invalid(f"expected {what}, got {show(value)}")
        try:
            return parse(value)
        except ValueError as error:
            raise Invalid(str(error)) from None

    return convert


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A parser that checks its text with ``parse`` (ValueError) and keeps it as written."""

    def check(text: str) -> str:
        parse(text)
        return text

    return check


def normal(path: Path) -> Path:
    """``path`` with ``.`` and ``..`` folded, without asking the filesystem."""
    return Path(os.path.normpath(path))


def is_within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _host_key(text: str) -> str:
    return parse_public_key(text).openssh


_TIME = 'a time "HH:MM"'

#: The keys whose converter their type does not give.
_BY_KEY: dict[str, Converter[Any]] = {
    "source.paths": list_of(source_path, "a non-empty list of absolute paths", non_empty=True),
    "source.exclude": list_of(exclude_pattern, "a list of strings", non_empty=False),
    "schedule.daily": time_of_day,
    "schedule.timezone": timezone_name,
    "retention.prefix": prefix,
    "encryption.mode": encryption_mode,
    # USB disks are mounted under it: their repositories' locations start with it.
    "paths.runtime": borg_path(location=True),
    "borg.binary": borg_binary,
    "borg.compression": compression,
    "metrics.listen": listen,
    "leds.green": led_name,
    "leds.amber": led_name,
    "leds.red": led_name,
    "target.name": target_name,
    "target.kind": string,
    "target.path": borg_path(location=True),
    "target.url": via(parse_url, "an ssh://user@host:port/path URL"),
    "target.host_keys": list_of(
        via(_host_key, '"type base64" host keys'),
        'a list of host keys ("ssh-ed25519 AAAA...")',
        non_empty=False,
    ),
    "target.upload_window.days": via(parse_days, 'days such as "mon-fri"'),
    "snapshots.office_days": via(_checked(parse_days), 'days such as "mon-fri"'),
    "snapshots.office_from": via(_checked(parse_minute), _TIME),
    "snapshots.office_to": via(_checked(parse_minute), _TIME),
    "quiescence.smbstatus": string,
    "quiescence.samba_config": string,
    "target.upload_window.from": via(parse_minute, _TIME),
    "target.upload_window.to": via(parse_minute, _TIME),
}


def _by_type(path: str, key: Key) -> Converter[Any]:
    """The converter a key's type gives; LookupError (on import) for a key left without one."""
    if path in _BY_KEY:
        return _BY_KEY[path]
    if key.type is Type.INTEGER:
        return integer(path)
    if key.type is Type.BOOLEAN:
        return boolean
    if key.type is Type.PATH:
        return absolute_path
    raise LookupError(f"{path}: a {key.type.value} key needs its converter in _BY_KEY")


#: Every key's converter, by its dotted path.
CONVERTERS: dict[str, Converter[Any]] = {path: _by_type(path, key) for path, key in KEYS.items()}


def given(t: Table, section: str, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The keys of ``section`` written in ``t`` (all, or those ``names``), converted.

    Returns them by name. A required key that is missing and a value that does
    not fit are recorded as problems in ``t`` and left out: the caller builds
    what it can and reading goes on. Unknown keys are for ``t.finish()``.
    """
    values: dict[str, Any] = {}
    wanted = None if names is None else set(names)
    for path, key in KEYS.items():
        owner, _, name = path.rpartition(".")
        if owner != section or (wanted is not None and name not in wanted):
            continue
        value = t.get(name, required=key.default is REQUIRED)
        if value is MISSING:
            continue
        try:
            values[name] = CONVERTERS[path](value)
        except Invalid as invalid:
            t.invalid(name, invalid)
    return values
