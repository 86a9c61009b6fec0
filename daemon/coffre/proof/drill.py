"""The comparing half of a restore drill: each extracted file against the share or borg's hash.

A file whose entry on the share still has the archive's size, mtime and
ctime is compared byte for byte with the share (tolerance zero): nothing
touched it since the backup, so any difference is damage. Any other file
(edited, replaced, gone, or that cannot be read safely) is compared with the
content hash borg computes from the archive (``borg list --format
'{xxh64}'``), so an edit since the backup is never a false alarm and damage
in the repository is still found.

The share is hostile: its files are opened from the configured source path
folder by folder with ``O_NOFOLLOW`` (a link is never followed; a file that
is not a regular one is not read: a FIFO would hang the drill), and a file
whose metadata changes while it is read is judged by the hash instead.
Functions here do I/O on descriptors and return verdicts; they never print
a name (the caller escapes them).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal

from borg.algorithms.checksums import StreamingXXH64  # type: ignore[import-untyped]

from coffre.proof.drill_sample import ArchivedFile
from coffre.storage.dirfd import opened, walk_open

__all__ = [
    "HASH_KEY",
    "Verdict",
    "by_bytes",
    "by_hash",
    "hashes_of",
    "metadata_matches",
    "open_extracted",
    "open_in_share",
    "same_content",
    "xxh64_of",
]

#: The ``borg list --format`` key of the content hash a drill compares with.
HASH_KEY = "xxh64"

_READ = 1 << 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: borg shows times to the microsecond (through a float): a file is the same within this.
_TIME_SLACK_NS = 2_000
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Verdict:
    """How one sampled file compared: ``how`` ("bytes" with the share, "hash" with borg's),
    ``ok``, and when not, ``why`` (words, no name)."""

    path: str
    how: Literal["bytes", "hash"]
    ok: bool
    why: str | None = None


def metadata_matches(st: os.stat_result, entry: ArchivedFile) -> bool:
    """Whether the share's ``st`` still has ``entry``'s size, mtime and ctime (if borg has it)."""
    if st.st_size != entry.size or not _same_time(st.st_mtime_ns, entry.mtime):
        return False
    return entry.ctime is None or _same_time(st.st_ctime_ns, entry.ctime)


def _same_time(ns: int, when: datetime) -> bool:
    micros = (when - _EPOCH) // timedelta(microseconds=1)
    return abs(ns - micros * 1000) < _TIME_SLACK_NS


def _open_file(dir_fd: int, name: str) -> int | None:
    """A regular file ``name`` of ``dir_fd``, opened without following a link (None if not).

    O_NOATIME first: a drill must not make the share's files look read.
    """
    try:
        fd = os.open(name, _FILE_FLAGS | os.O_NOATIME, dir_fd=dir_fd)
    except PermissionError:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _open_below(anchor_fd: int, parts: Sequence[str], shown: PurePosixPath) -> int | None:
    """The regular file ``parts`` below ``anchor_fd``, never through a link; None if not there."""
    if not parts:
        return None
    try:
        folder, _ = walk_open(anchor_fd, parts[:-1], shown=shown)
    except OSError:
        return None
    with opened(folder):
        return _open_file(folder, parts[-1])


def open_in_share(roots: Sequence[PurePosixPath], path: str) -> int | None:
    """The share's file at ``/path`` (``path`` as stored), opened read-only; None when it is
    in no root, missing, not a regular file, or behind a link (then borg's hash judges it).

    The root itself (the configuration's source path) is opened as configured.
    """
    where = PurePosixPath("/" + path)
    for root in roots:
        if root in where.parents:
            try:
                root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
            with opened(root_fd):
                return _open_below(root_fd, where.relative_to(root).parts, root)
    return None


def open_extracted(tree_fd: int, path: str) -> int | None:
    """The extracted file ``path`` (as stored) below the scratch ``tree_fd``; None if absent."""
    return _open_below(tree_fd, PurePosixPath(path).parts, PurePosixPath("."))


def same_content(one: int, other: int) -> bool:
    """Whether the files ``one`` and ``other`` (descriptors at offset 0) hold the same bytes."""
    if os.fstat(one).st_size != os.fstat(other).st_size:
        return False
    while True:
        a, b = _read(one), _read(other)
        if a != b:
            return False
        if not a:
            return True


def _read(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, _READ)
        except BlockingIOError:  # O_NONBLOCK on a regular file never blocks; kept safe
            continue
        except OSError as error:
            if error.errno != errno.EINTR:
                raise


def xxh64_of(fd: int) -> str:
    """The XXH64 of the file ``fd`` from its offset, in hex as ``borg list {xxh64}`` shows it."""
    digest = StreamingXXH64()
    while chunk := _read(fd):
        digest.update(chunk)
    return str(digest.hexdigest())


def by_bytes(
    tree_fd: int, roots: Sequence[PurePosixPath], files: Iterable[ArchivedFile]
) -> tuple[list[Verdict], list[ArchivedFile]]:
    """Compare with the share each of ``files`` the share still has unchanged.

    Returns the verdicts, and the files left for :func:`by_hash` (changed on
    the share, gone, unreadable, or changed while read). A file missing from
    the scratch tree is a mismatch ("not extracted"). Raises OSError only for
    the scratch tree's own failures.
    """
    verdicts: list[Verdict] = []
    left: list[ArchivedFile] = []
    for entry in files:
        mine = open_extracted(tree_fd, entry.path)
        if mine is None:
            verdicts.append(Verdict(entry.path, "bytes", False, "not extracted"))
            continue
        with opened(mine):
            verdict = _against_share(mine, roots, entry)
        if verdict is None:
            left.append(entry)
        else:
            verdicts.append(verdict)
    return verdicts, left


def _against_share(
    mine: int, roots: Sequence[PurePosixPath], entry: ArchivedFile
) -> Verdict | None:
    """The byte verdict of ``entry`` (extracted as ``mine``); None when the share cannot say."""
    theirs = open_in_share(roots, entry.path)
    if theirs is None:
        return None
    with opened(theirs):
        if not metadata_matches(os.fstat(theirs), entry):
            return None
        same = same_content(mine, theirs)
        if not metadata_matches(os.fstat(theirs), entry):
            return None  # written to while read: the hash judges
    return Verdict(entry.path, "bytes", same, None if same else "differs from the share")


def by_hash(
    tree_fd: int, files: Iterable[ArchivedFile], hashes: Mapping[str, str]
) -> list[Verdict]:
    """Compare each of ``files`` extracted with the hash borg gave for it in ``hashes``."""
    verdicts = []
    for entry in files:
        expected = hashes.get(entry.path)
        mine = open_extracted(tree_fd, entry.path)
        if mine is None:
            verdicts.append(Verdict(entry.path, "hash", False, "not extracted"))
            continue
        with opened(mine):
            got = xxh64_of(mine)
        if expected is None:
            verdicts.append(Verdict(entry.path, "hash", False, "borg gave no hash"))
        else:
            ok = got == expected
            verdicts.append(Verdict(entry.path, "hash", ok, None if ok else "differs from borg's"))
    return verdicts


def hashes_of(json_lines: str) -> dict[str, str]:
    """``{path: xxh64}`` of ``borg list --json-lines --format '{xxh64}'`` output (files only).

    Raises ValueError for a line that is not a JSON object.
    """
    found = {}
    for number, line in enumerate(json_lines.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"borg list line {number} is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"borg list line {number} is not a JSON object")
        path, digest = obj.get("path"), obj.get(HASH_KEY)
        if isinstance(path, str) and isinstance(digest, str) and digest:
            found[path] = digest
    return found
