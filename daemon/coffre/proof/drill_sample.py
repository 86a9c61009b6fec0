"""Which files a restore drill reads back: pure, from the latest archive's listing.

A drill proves that the files a practice would ask for come back whole. So
its sample always holds some of the largest files (the most chunks, the
most likely to meet a damaged segment) and some of the most recently
changed (the ones a person asks for first), the rest drawn at random with
the ``random.Random`` given (seeded in tests), all within a number of files
and a byte budget. Regular files only: folders, links and devices carry no
content to compare. Names borg could not be given back on its command line
(a control character: see :func:`coffre.borg.argv.extract`) are left out.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coffre.borg.parse import parse_time

__all__ = ["LISTING_KEYS", "ArchivedFile", "SampleLimits", "choose", "files_of"]

#: ``borg list --format`` keys of the listing: with a format, borg's JSON lines hold its
#: fixed keys (type, path...) and these only (size and mtime are no longer given
#: unasked; checked with borg 1.4.5). ctime: was the file on the share touched since.
LISTING_KEYS = ("size", "mtime", "ctime")


@dataclass(frozen=True)
class ArchivedFile:
    """A regular file of an archive: its path as stored (no leading ``/``), size, times (UTC)."""

    path: str
    size: int
    mtime: datetime
    ctime: datetime | None

    @property
    def changed(self) -> datetime:
        """When the file last changed, by content (mtime) or by its inode (ctime)."""
        return self.mtime if self.ctime is None else max(self.mtime, self.ctime)


@dataclass(frozen=True)
class SampleLimits:
    """At most ``files`` files and ``budget`` bytes; ``largest`` and ``recent`` always in."""

    files: int
    budget: int
    largest: int
    recent: int


def files_of(json_lines: str) -> list[ArchivedFile]:
    """The regular files of ``borg list --json-lines --format '{ctime}'`` output, in borg's order.

    Raises ValueError naming the line for a line that is not a JSON object or
    lacks ``path``, ``type``, ``size`` or ``mtime``.
    """
    found = []
    for number, line in enumerate(json_lines.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"borg list line {number}"
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where} is not a JSON object")
        try:
            kind, path, size = obj["type"], obj["path"], obj["size"]
        except KeyError as exc:
            raise ValueError(f"{where} has no {exc.args[0]}") from None
        if kind != "-" or not isinstance(path, str) or not _speakable(path):
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"{where}: size is not a count: {size!r}")
        ctime = obj.get("ctime")
        found.append(
            ArchivedFile(
                path=path,
                size=size,
                mtime=parse_time(obj.get("mtime"), f"{where}.mtime"),
                ctime=None if not ctime else parse_time(ctime, f"{where}.ctime"),
            )
        )
    return found


def _speakable(path: str) -> bool:
    """Whether borg can be given ``path`` back as an argument (no control character, not empty)."""
    return bool(path) and not any(ord(c) < 32 or ord(c) == 127 for c in path)


def choose(
    files: Sequence[ArchivedFile], limits: SampleLimits, rng: random.Random
) -> list[ArchivedFile]:
    """The drill's sample of ``files``, in the order chosen: largest, recent, then random.

    Never more than ``limits.files`` files nor ``limits.budget`` bytes in all:
    a file larger than what is left of the budget is passed over (so "the
    largest" are the largest that fit). Each file at most once. An archive
    with fewer files than the sample gives all those that fit; an empty one, [].
    """
    chosen: list[ArchivedFile] = []
    taken: set[str] = set()
    left = limits.budget

    def take(candidates: Iterable[ArchivedFile], most: int) -> None:
        nonlocal left
        count = 0
        for one in candidates:
            if count >= most or len(chosen) >= limits.files:
                return
            if one.path in taken or one.size > left:
                continue
            chosen.append(one)
            taken.add(one.path)
            left -= one.size
            count += 1

    take(sorted(files, key=lambda f: (-f.size, f.path)), limits.largest)
    take(sorted(files, key=lambda f: (f.changed, f.path), reverse=True), limits.recent)
    # Sorted first: the same listing and seed give the same sample, whatever borg's order.
    rest = sorted((f for f in files if f.path not in taken), key=lambda f: f.path)
    rng.shuffle(rest)
    take(rest, limits.files)
    return chosen
