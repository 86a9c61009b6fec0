"""Pure: what a backup that ended with borg warnings left out, counted by reason.

A backup has one of three outcomes: ``success`` (every file saved),
``warning`` (an archive was made, but borg could not save some files, or saw
some change while it read them) and ``failed`` (no archive). This module
holds the counts of a ``warning`` backup: a bounded set of reasons, never a
file name, so that they may go into state, status, metrics and alerts. The
names of the files stay on the box, in the journal (``coffre.jobs.backup``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field


class Reason(enum.StrEnum):
    """Why borg warned about a file (or about something else: ``OTHER``)."""

    #: The file could not be opened or read: permission denied (EACCES, EPERM, EBUSY).
    PERMISSION = "permission"
    #: Reading the file failed with an I/O error (EIO): the share's disk may be failing.
    IO_ERROR = "io_error"
    #: Another error of the operating system while reading the file.
    UNREADABLE = "unreadable"
    #: The file was listed, then gone (or replaced) before borg could read it.
    VANISHED = "vanished"
    #: The file changed while borg read it: saved as read, possibly inconsistent.
    CHANGED = "changed"
    #: A warning about no file in particular (a pattern that never matched...).
    OTHER = "other"


_BY_VALUE: dict[str, Reason] = {reason.value: reason for reason in Reason}

#: The reasons whose files are missing from the archive.
NOT_SAVED: frozenset[Reason] = frozenset(
    {Reason.PERMISSION, Reason.IO_ERROR, Reason.UNREADABLE, Reason.VANISHED}
)

#: How each reason of a missing file reads in a summary, in the order shown.
_MISSING_TEXT: tuple[tuple[Reason, str], ...] = (
    (Reason.IO_ERROR, "I/O error"),
    (Reason.PERMISSION, "permission denied"),
    (Reason.UNREADABLE, "unreadable"),
    (Reason.VANISHED, "vanished during the backup"),
)


def describe(reason: Reason) -> str:
    """A few words for one file's ``reason``, as the journal line of that file says it."""
    for known, text in _MISSING_TEXT:
        if known is reason:
            return f"not backed up ({text})"
    if reason is Reason.CHANGED:
        return "changed while being read (saved as read, may be inconsistent)"
    return "warning"


@dataclass(frozen=True)
class BackupWarnings:
    """The counts, by reason, of what borg warned about in one backup.

    An instance means the backup ended with warnings, even when every count
    is 0 (borg ended with a warning code and said nothing coffre knows).
    ``counts`` holds no zero and is not to be mutated.
    """

    counts: Mapping[Reason, int] = field(default_factory=dict)

    @classmethod
    def of(cls, counts: Mapping[Reason, int]) -> BackupWarnings:
        """The warnings of ``counts`` (zeros dropped). Raises ValueError on a negative count."""
        if any(n < 0 for n in counts.values()):
            raise ValueError(f"negative count in {dict(counts)}")
        return cls({reason: n for reason, n in counts.items() if n})

    def count(self, reason: Reason) -> int:
        """How many warnings had ``reason``."""
        return self.counts.get(reason, 0)

    @property
    def not_backed_up(self) -> int:
        """How many files the archive lacks (changed files are in it: not counted)."""
        return sum(n for reason, n in self.counts.items() if reason in NOT_SAVED)

    @property
    def summary(self) -> str:
        """One line for people, counts only (no file name), e.g.
        "3 file(s) not backed up: 2 I/O error, 1 vanished during the backup"."""
        parts = []
        if self.not_backed_up:
            reasons = ", ".join(
                f"{self.count(reason)} {text}"
                for reason, text in _MISSING_TEXT
                if self.count(reason)
            )
            parts.append(f"{self.not_backed_up} file(s) not backed up: {reasons}")
        if changed := self.count(Reason.CHANGED):
            parts.append(
                f"{changed} file(s) changed while being read (saved as read, may be inconsistent)"
            )
        if other := self.count(Reason.OTHER):
            parts.append(f"{other} other warning(s) of borg")
        return "; ".join(parts) or "borg ended with warnings"

    def to_json(self) -> str:
        """The counts as a JSON object (reason -> count), as state keeps them."""
        return json.dumps({str(reason): n for reason, n in sorted(self.counts.items())})

    @classmethod
    def from_json(cls, text: str) -> BackupWarnings:
        """The inverse of :meth:`to_json`. A reason this coffre does not know (written by
        a newer one) counts as ``OTHER``; raises ValueError on what is not such an object."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"not an object of counts: {text!r}")
        counts: dict[Reason, int] = {}
        for key, n in raw.items():
            if not isinstance(n, int) or isinstance(n, bool):
                raise ValueError(f"not a count: {key!r}: {n!r}")
            reason = _BY_VALUE.get(key, Reason.OTHER)
            counts[reason] = counts.get(reason, 0) + n
        return cls.of(counts)

    def as_dict(self) -> dict[str, int]:
        """Every reason with its count (0 too), for status: a bounded, stable set of keys."""
        return {str(reason): self.count(reason) for reason in Reason}
