"""A box's repository on the HDS host, read from its files: the I/O around hds_segments,
hds_ledger and hds_log. Stdlib only (copied onto the HDS host).

The repositories are written by ``borg serve`` only (the box's key can run nothing else),
but files are still opened without following symlinks.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from hds_ledger import Measure, replay
from hds_log import Log, parse
from hds_segments import repository_entries, segment_files


class NotARepository(Exception):
    """The path is remote, or not a borg repository this host can read."""


@dataclass(frozen=True)
class State:
    """One repository's figures: the log, the replayed measure, the segments' bytes on disk,
    and whether its config says append-only (then ``borg compact`` frees nothing)."""

    log: Log
    measure: Measure
    disk_bytes: int
    append_only_config: bool


def _read(path: Path) -> str:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as stream:
        return stream.read()


def local_repository(text: str) -> Path:
    """The local path of the repository named ``text``.

    Raises NotARepository for an ``ssh://`` or ``host:path`` name (the tools read the files,
    and compaction must never go through a box's key), or a directory without a borg config.
    """
    if text.startswith("ssh://") or "::" in text:
        raise NotARepository(f"{text}: give the local path of the repository on this host")
    path = Path(text).absolute()
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(_read(path / "config"))
        config.get("repository", "id")
    except (OSError, configparser.Error) as error:
        raise NotARepository(f"{path}: not a borg repository ({error})") from None
    return path


def read_log(repository: Path) -> Log:
    """The repository's transactions log (empty if it has none)."""
    try:
        return parse(_read(repository / "transactions"))
    except FileNotFoundError:
        return Log()


def read_state(repository: Path) -> State:
    """Measure ``repository``: every segment's headers are read (not their data).

    Raises OSError, hds_segments.SegmentDamaged.
    """
    log = read_log(repository)
    measure = replay(repository_entries(repository), since=log.compacted_through)
    disk = sum(path.stat().st_size for _, path in segment_files(repository))
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(_read(repository / "config"))
    append_only = config.getboolean("repository", "append_only", fallback=False)
    return State(log, measure, disk, append_only)


def append_note(repository: Path, line: str) -> None:
    """Append ``line`` to the repository's transactions log (O_APPEND: borg's own lines,
    written the same way, are never cut)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    descriptor = os.open(repository / "transactions", flags, 0o600)
    with os.fdopen(descriptor, "a", encoding="ascii") as stream:
        stream.write(line)
