"""Reading one TOML table: every problem recorded with its dotted key path.

:class:`Table` remembers the keys its readers asked for, so that the others
are named as unknown; converters (:mod:`coffre.config.converters`) raise
:class:`Invalid`, which the table records; :func:`show` writes a value back
as TOML for a message.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, TypeAlias, TypeVar, overload

from coffre.core.errors import ConfigProblem

_T = TypeVar("_T")

#: Turns a raw TOML value into the typed value of a key, or raises :class:`Invalid`.
Converter: TypeAlias = Callable[[object], _T]

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
SHOW_MAX = 80


class Missing(enum.Enum):
    """A key that is not in the table (distinct from any TOML value)."""

    MISSING = enum.auto()


MISSING = Missing.MISSING


class Invalid(Exception):
    """A converter's verdict: the value does not fit the key.

    ``problems`` are (key path suffix, message) pairs: a list converter names
    its bad items with suffixes like ``[1]``.
    """

    def __init__(self, message: str = "", *, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (("", message),)


class Table:
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
        shown = key if BARE_KEY.fullmatch(key) else show(key)
        return f"{self.path}.{shown}" if self.path else shown

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.key_path(key), message))

    def get(self, key: str, *, required: bool) -> object:
        """The raw value of ``key``, or ``MISSING`` (a problem if ``required``)."""
        self.known.append(key)
        if key in self.raw:
            return self.raw[key]
        if required:
            self.problem(key, f"required {self.noun} is missing")
        return MISSING

    @overload
    def read(self, key: str, convert: Converter[_T]) -> _T | None: ...
    @overload
    def read(self, key: str, convert: Converter[_T], default: _T) -> _T: ...
    def read(self, key: str, convert: Converter[_T], default: _T | Missing = MISSING) -> _T | None:
        """``key`` converted; without ``default`` it is required.

        A bad or missing value is recorded as a problem and gives ``default``
        (None when required), so reading goes on and finds the other problems.
        """
        fallback = None if isinstance(default, Missing) else default
        value = self.get(key, required=isinstance(default, Missing))
        if value is MISSING:
            return fallback
        try:
            return convert(value)
        except Invalid as invalid:
            self.invalid(key, invalid)
            return fallback

    def invalid(self, key: str, invalid: Invalid) -> None:
        """Record the problems a converter found in the value of ``key``."""
        for suffix, message in invalid.problems:
            self.problems.append(ConfigProblem(self.key_path(key) + suffix, message))

    def table(self, key: str) -> Table:
        """The optional sub-table ``key``; empty when absent or not a table."""
        return self._sub_table(key, required=False) or Table({}, self.key_path(key), self.problems)

    def required_table(self, key: str) -> Table | None:
        """The sub-table ``key``, or None (and a problem) when absent or not a table."""
        return self._sub_table(key, required=True)

    def _sub_table(self, key: str, *, required: bool) -> Table | None:
        value = self.get(key, required=required)
        if isinstance(value, dict):
            return Table(value, self.key_path(key), self.problems)
        if value is not MISSING:
            self.problem(key, f"expected a table ([{key}]), got {show(value)}")
        return None

    def finish(self) -> None:
        """Report every key that no reader asked for."""
        for key in self.raw:
            if key not in self.known:
                self.problem(key, f"unknown {self.noun}{suggest(key, self.known, self.noun)}")


def show(value: object) -> str:
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
        shown = "[" + ", ".join(show(item) for item in value) + "]"
    elif isinstance(value, dict):
        shown = "{" + ", ".join(f"{show_key(k)} = {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, datetime | date | time):
        shown = value.isoformat()
    else:
        shown = repr(value)
    return shown if len(shown) <= SHOW_MAX else shown[: SHOW_MAX - 3] + "..."


def show_key(key: object) -> str:
    return key if isinstance(key, str) and BARE_KEY.fullmatch(key) else show(key)


def one_of(choices: Collection[str]) -> str:
    return ", ".join(show(choice) for choice in choices)


def did_you_mean(word: str, candidates: Collection[str]) -> str:
    import difflib  # only for a mistake: every CLI command reads the configuration

    by_lower = {candidate.lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(word, candidates, n=1)
    guess = by_lower.get(word.lower()) or (close[0] if close else None)
    return f"; did you mean {show(guess)}?" if guess else ""


def suggest(word: str, known: Sequence[str], noun: str) -> str:
    return did_you_mean(word, known) or f"; known {noun}s are {one_of(known)}"
