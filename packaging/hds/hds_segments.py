"""Reading what borg 1.4 keeps in clear in a repository's segment files (data/N/M).

A segment starts with the magic ``BORG_SEG``, then entries: a header ``<IIB`` (CRC32,
size of the whole entry, tag), followed for PUT and DELETE by the 32-byte object id,
and for PUT by the object's ciphertext (borg/repository.py, LoggedIO). The host never
has the key, but it does not need it: which ids were put, deleted and committed, and
how big each entry is, is all in these headers. Only headers are read (a seek past each
entry's data), so measuring a repository costs little I/O.

Stdlib only: this file is copied onto the HDS host beside the coffre-hds-* scripts.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"BORG_SEG"
TAG_PUT = 0
TAG_DELETE = 1
TAG_COMMIT = 2
HEADER = struct.Struct("<IIB")
KEY_SIZE = 32
# borg 1.4's MAX_OBJECT_SIZE is 20 MiB + header; a bigger size field means damage.
MAX_ENTRY = 20 * 1024 * 1024 + 41


class SegmentDamaged(Exception):
    """A segment file is not what borg writes (bad magic, impossible header)."""


@dataclass(frozen=True)
class Entry:
    """One entry of a segment: where it is, its tag, its object id (none for COMMIT), its size
    in bytes (header included, as borg counts it)."""

    segment: int
    tag: int
    key: bytes
    size: int


def segment_files(repository: Path) -> list[tuple[int, Path]]:
    """(number, path) of every segment file under ``repository``/data, in borg's order.

    In: the repository's local path. Out: sorted by segment number. Raises OSError when
    data/ cannot be listed.
    """
    found: list[tuple[int, Path]] = []
    with os.scandir(repository / "data") as directories:
        for directory in directories:
            if not (directory.name.isdigit() and directory.is_dir(follow_symlinks=False)):
                continue
            with os.scandir(directory.path) as files:
                found += [
                    (int(f.name), Path(f.path))
                    for f in files
                    if f.name.isdigit() and f.is_file(follow_symlinks=False)
                ]
    return sorted(found)


def _entry(stream: BinaryIO, segment: int, offset: int, end: int) -> Entry | None:
    """The entry at ``offset``, or None for a partial tail (a write in progress)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    _crc, size, tag = HEADER.unpack(header)
    if tag not in (TAG_PUT, TAG_DELETE, TAG_COMMIT) or not HEADER.size <= size <= MAX_ENTRY:
        raise SegmentDamaged(f"segment {segment}: impossible entry at offset {offset}")
    if offset + size > end:
        return None
    key = b""
    if tag != TAG_COMMIT:
        if size < HEADER.size + KEY_SIZE:
            raise SegmentDamaged(f"segment {segment}: entry too short at offset {offset}")
        key = stream.read(KEY_SIZE)
    return Entry(segment, tag, key, size)


def read_segment(stream: BinaryIO, segment: int, end: int) -> Iterator[Entry]:
    """The entries of one segment, read from ``stream`` (positioned at 0) of ``end`` bytes.

    A partial entry at the end (borg still writing it) ends the iteration; an entry that
    borg could not have written raises SegmentDamaged.
    """
    if stream.read(len(MAGIC)) != MAGIC:
        raise SegmentDamaged(f"segment {segment}: not a borg segment (bad magic)")
    offset = len(MAGIC)
    while offset < end:
        entry = _entry(stream, segment, offset, end)
        if entry is None:
            return
        yield entry
        offset += entry.size
        stream.seek(offset)


def repository_entries(repository: Path) -> Iterator[Entry]:
    """Every entry of every segment of ``repository``, in borg's (log) order.

    Segment files are opened without following symlinks. Raises SegmentDamaged, OSError.
    """
    for number, path in segment_files(repository):
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as stream:
            yield from read_segment(stream, number, os.fstat(stream.fileno()).st_size)
