"""The end of the audit chain, read cheaply: the last entries' seq and hash, and the head.

What leaves the box as a witness of the audit log (``coffre.observe.audit_series``):
the metrics carry, at every scrape, the seq and chain hash of the last
:data:`TAIL_ENTRIES` entries and of the head file. Since every line's hash
commits to all the lines before it (each line holds the previous one's hash),
a rewrite of any line at or before those entries changes a (seq, hash) pair
the central store has already seen, even when the head is rewritten to match.

Reading goes backwards from the end of the file by chunks, doubled each time,
and stops once it holds enough lines: a scrape never reads the whole log
(one restore line may list thousands of paths; years of entries are megabytes).
The log is read under a shared ``flock``, as :mod:`coffre.storage.audit`'s
readers do, so a record in progress is never half seen; :func:`fingerprint`
lets a caller skip the read altogether while the files are unchanged.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from coffre.storage.audit import entry_of_line, head_path, load_head

__all__ = [
    "TAIL_ENTRIES",
    "ChainTail",
    "Fingerprint",
    "Link",
    "fingerprint",
    "last_lines",
    "read_tail",
]

#: How many of the last lines are read (and their entries' hashes exported).
TAIL_ENTRIES = 16
# The first read backwards; ordinary lines are a few hundred bytes.
_CHUNK = 4096

#: What the log and its head file look like on disk, without reading them:
#: (inode, size, mtime, ctime) of each, None for a file that is not there.
Fingerprint = tuple[tuple[int, int, int, int] | None, tuple[int, int, int, int] | None]


@dataclass(frozen=True)
class Link:
    """One link of the chain: an entry's ``seq`` and ``hash``, the SHA-256 (hex) of its
    line's exact bytes (the ``prev`` of the next line), or what the head file says."""

    seq: int
    hash: str


@dataclass(frozen=True)
class ChainTail:
    """The end of the audit chain as read at one time.

    ``links``: the valid entries among the last lines, oldest first (a line that
    is not a valid entry is left out); ``head``: what the head file says (None
    when it is missing or damaged).
    """

    links: tuple[Link, ...]
    head: Link | None

    @property
    def entries(self) -> int:
        """The highest seq of the valid last entries: how many entries the log holds (0: none).

        Read from the log, not from the head file: a log deleted or emptied
        shows as 0, whatever its head file still says.
        """
        return max((link.seq for link in self.links), default=0)


def last_lines(read: Callable[[int, int], bytes], size: int, count: int) -> list[bytes]:
    """The last ``count`` lines of a file of ``size`` bytes, oldest first, without newlines.

    ``read(offset, length)`` gives ``length`` bytes of the file from ``offset``
    (it is called for the tail only, backwards, by chunks doubled each time).
    A last line without its newline (cut short) is a line. Returns fewer lines
    when the file has fewer; ``[]`` for an empty file or ``count`` < 1.
    Raises what ``read`` raises.
    """
    if size <= 0 or count < 1:
        return []
    end = size - 1 if read(size - 1, 1) == b"\n" else size
    held, position, chunk = b"", end, _CHUNK
    # ``count`` newlines before the end mean ``count`` whole lines held.
    while position > 0 and held.count(b"\n") < count:
        start = max(0, position - chunk)
        held = read(start, position - start) + held
        position, chunk = start, chunk * 2
    lines = held.split(b"\n")
    if position > 0:
        lines = lines[1:]  # the first one is only the end of a line
    return lines[-count:]


def read_tail(log: Path, count: int = TAIL_ENTRIES, *, wait: bool = True) -> ChainTail:
    """The last ``count`` lines' entries of the audit log ``log``, and its head file.

    Both are read under a shared lock on the log (a missing log has no
    entries; its head file is still read). ``wait=False`` does not wait for a
    record in progress: BlockingIOError then. Never follows a symlink in
    place of the log (OSError ELOOP). Raises OSError when the log cannot be
    read, or changed size while read (a writer that ignores the lock).
    """
    try:
        fd = os.open(log, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return ChainTail((), _head(log))
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | (0 if wait else fcntl.LOCK_NB))
        lines = last_lines(_reader(fd), os.fstat(fd).st_size, count)
        head = _head(log)  # under the lock: in step with the last line
    finally:
        os.close(fd)  # releases the lock
    links = []
    for line in lines:
        entry = entry_of_line(line)
        if entry is not None:
            links.append(Link(entry.seq, entry.hash))
    return ChainTail(tuple(links), head)


def fingerprint(log: Path) -> Fingerprint:
    """How the log ``log`` and its head file look now (two ``lstat``), to know they changed.

    The ctime is in it: ``touch -d`` can set a file's mtime back, not its
    ctime. Raises OSError other than "not there".
    """
    return _stat(log), _stat(head_path(log))


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns


def _reader(fd: int) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise OSError(f"the audit log changed while read ({len(data)} of {length} bytes)")
        return data

    return read


def _head(log: Path) -> Link | None:
    found = load_head(head_path(log))
    return None if found is None else Link(*found)
