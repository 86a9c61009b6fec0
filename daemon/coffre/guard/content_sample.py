"""Does a changed file still look like its type? Magic bytes, entropy, and a safe sample.

:func:`classify` is pure: the head of a file against what its extension
promises. Encrypted data has no magic bytes and an entropy near 8 bits per
byte; a valid PDF starts ``%PDF-``, a JPEG ``FF D8 FF``, an Office file is a
zip (``PK``) or an OLE compound file. A file is *suspect* only when its head
matches no known format at all and its entropy is high: a ``.doc`` that is
really RTF (Word saves those) or an ``.xls`` that is an HTML export (medical
software does) is odd but not encrypted, and compressed formats (a JPEG, a
zip) carry their magic.

:func:`sample_changed` reads the heads of a random sample of the night's
changed files, as root, in a share workstation users write to: every path is
walked from the source root component by component, each directory opened
``O_NOFOLLOW|O_DIRECTORY`` relative to the previous one, the file itself only
if ``lstat`` says regular file, opened ``O_NOFOLLOW|O_NONBLOCK`` (and
``O_NOATIME``: the practice's file dates stay as they are) and checked again
with ``fstat``. Nothing is written; a symlink, a FIFO, a device, a vanished
or unreadable file is counted as unreadable, never judged or followed.
"""

from __future__ import annotations

import errno
import math
import os
import random
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from coffre.core.errors import SourceUnavailable


def _at(offset: int, magic: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[offset : offset + len(magic)] == magic


def _any(*tests: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    return lambda head: any(test(head) for test in tests)


#: Known formats and how their heads start (PDF may have up to 1 KiB of junk first).
MAGIC: Final[dict[str, Callable[[bytes], bool]]] = {
    "pdf": lambda head: b"%PDF-" in head[:1024],
    "jpeg": _at(0, b"\xff\xd8\xff"),
    "png": _at(0, b"\x89PNG\r\n\x1a\n"),
    "gif": _any(_at(0, b"GIF87a"), _at(0, b"GIF89a")),
    "tiff": _any(_at(0, b"II*\x00"), _at(0, b"MM\x00*")),
    "bmp": _at(0, b"BM"),
    "zip": _any(_at(0, b"PK\x03\x04"), _at(0, b"PK\x05\x06"), _at(0, b"PK\x07\x08")),
    "ole": _at(0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    "rtf": _at(0, b"{\\rtf"),
    "dicom": _at(128, b"DICM"),
    "mz": _at(0, b"MZ"),
    "cab": _at(0, b"MSCF"),
    "7z": _at(0, b"7z\xbc\xaf\x27\x1c"),
    "rar": _at(0, b"Rar!\x1a\x07"),
    "gzip": _at(0, b"\x1f\x8b"),
    "mp3": _any(_at(0, b"ID3"), *(_at(0, b"\xff" + bytes([b])) for b in b"\xfb\xf3\xf2\xfa")),
    "mp4": _at(4, b"ftyp"),
    "sqlite": _at(0, b"SQLite format 3\x00"),
}

#: What each extension promises (lowercase, no dot).
EXPECTED: Final[dict[str, frozenset[str]]] = {
    suffix: frozenset(formats)
    for suffixes, formats in (
        (("pdf",), ("pdf",)),
        (("jpg", "jpeg"), ("jpeg",)),
        (("png",), ("png",)),
        (("gif",), ("gif",)),
        (("tif", "tiff"), ("tiff",)),
        (("bmp",), ("bmp",)),
        (("zip", "docx", "xlsx", "pptx", "odt", "ods", "odp"), ("zip",)),
        (("doc", "xls", "ppt", "msg"), ("ole",)),
        (("rtf",), ("rtf",)),
        (("dcm",), ("dicom",)),
        (("exe", "dll", "sys"), ("mz",)),
        (("cab",), ("cab",)),
        (("7z",), ("7z",)),
        (("rar",), ("rar",)),
        (("gz", "tgz"), ("gzip",)),
        (("mp3",), ("mp3",)),
        (("mp4", "m4a", "mov"), ("mp4",)),
        (("sqlite",), ("sqlite",)),
    )
    for suffix in suffixes
}

#: Text types: no magic, but a low entropy.
TEXT: Final = frozenset(
    {"txt", "csv", "xml", "html", "htm", "log", "ini", "json", "sql", "md", "hl7", "hpr"}
)

#: Bits per byte from which a head counts as random (ciphertext is ~7.99 on 16 KiB;
#: text is 4 to 5, uncompressed images and databases rarely above 6.5).
HIGH_ENTROPY: Final = 7.5
# Shorter heads are not judged: too few bytes to tell random from not.
_MIN_HEAD = 64


@dataclass(frozen=True)
class Verdict:
    """What :func:`classify` found: ``suspect``, the format seen ("" for none), the entropy.

    ``reason``: "ok", "too_short", "unknown_type" (no promise, not random),
    "other_format" (not what the extension says, but a known format),
    "no_magic" (not what the extension says, but not random either), or for
    a suspect "no_magic_high_entropy".
    """

    suspect: bool
    reason: str
    seen: str
    entropy: float


def entropy(data: bytes) -> float:
    """The Shannon entropy of ``data`` in bits per byte (0.0 for empty data)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(n / total * math.log2(n / total) for n in Counter(data).values())


def _random_threshold(length: int) -> float:
    # n random bytes cannot reach log2(n) bits: short heads get a lower bar.
    return min(HIGH_ENTROPY, 0.85 * math.log2(length))


def classify(suffix: str, head: bytes) -> Verdict:
    """Judge the ``head`` (first bytes) of a file whose extension is ``suffix``.

    ``suffix`` is taken without its dot, in any case ("PDF", "docx", "" for
    none). Suspect only when the head matches no known format and its entropy
    is high (module doc). Pure; raises nothing.
    """
    seen = next((name for name, test in MAGIC.items() if test(head)), "")
    bits = entropy(head)
    expected = EXPECTED.get(suffix.lower().lstrip("."))
    if expected is not None and seen in expected:
        return Verdict(False, "ok", seen, bits)
    if len(head) < _MIN_HEAD:
        return Verdict(False, "too_short", seen, bits)
    if seen:
        return Verdict(False, "other_format" if expected else "ok", seen, bits)
    if bits >= _random_threshold(len(head)):
        return Verdict(True, "no_magic_high_entropy", "", bits)
    if expected is not None:
        return Verdict(False, "no_magic", "", bits)
    return Verdict(False, "ok" if suffix.lower() in TEXT else "unknown_type", "", bits)


@dataclass(frozen=True)
class Suspect:
    """A sampled file that looks encrypted: its source root, path below it, entropy."""

    root: Path
    relative: str
    entropy: float


@dataclass(frozen=True)
class SampleResult:
    """The sample: files judged, suspect among them, unreadable (not judged), suspects' paths."""

    sampled: int
    suspects: int
    unreadable: int
    found: tuple[Suspect, ...] = ()


def map_to_root(roots: Sequence[Path], path: str) -> tuple[int, tuple[bytes, ...]] | None:
    """Which root ``path`` (as borg listed it) lies under, and its components below it.

    None for a path outside every root, the root itself, a relative path, or
    one with an empty, ``.`` or ``..`` component. Pure.
    """
    raw = os.fsencode(path)
    if not raw.startswith(b"/"):
        return None
    parts = raw.split(b"/")[1:]
    for index, root in enumerate(roots):
        root_parts = os.fsencode(root).rstrip(b"/").split(b"/")[1:]
        if parts[: len(root_parts)] != root_parts:
            continue
        rest = tuple(parts[len(root_parts) :])
        if not rest or any(p in (b"", b".", b"..") for p in rest):
            return None
        return index, rest
    return None


def open_root(root: Path) -> int:
    """A directory fd of source root ``root`` (not followed if a symlink).

    Raises SourceUnavailable when it cannot be opened: the backup's own check
    should have stopped the night before this.
    """
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SourceUnavailable(
            f"cannot open the source folder {root}: {exc.strerror}",
            hint="check that it exists and is a folder, not a link",
        ) from exc


def read_head(root_fd: int, parts: Sequence[bytes], head_bytes: int) -> bytes | None:
    """The first ``head_bytes`` of regular file ``parts`` below ``root_fd``; None if not one.

    Never follows a symlink, never opens a FIFO or device, never writes
    (module doc). None too for a file gone or unreadable. Raises nothing.
    """
    fds: list[int] = []
    try:
        fd = root_fd
        for name in parts[:-1]:
            fd = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
            )
            fds.append(fd)
        before = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode):
            return None
        file_fd = _open_file(parts[-1], fd)
        fds.append(file_fd)
        after = os.fstat(file_fd)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            return None  # replaced between lstat and open
        return _read_up_to(file_fd, head_bytes)
    except OSError:
        return None
    finally:
        for opened in fds:
            os.close(opened)


def _open_file(name: bytes, dir_fd: int) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(name, flags | os.O_NOATIME, dir_fd=dir_fd)
    except PermissionError as exc:
        # O_NOATIME needs the file's owner or CAP_FOWNER (root has it; tests may not).
        if exc.errno != errno.EPERM:
            raise
        return os.open(name, flags, dir_fd=dir_fd)


def _read_up_to(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def sample_changed(
    roots: Sequence[Path],
    changed_paths: Sequence[str],
    *,
    limit: int,
    head_bytes: int,
    rng: random.Random,
) -> SampleResult:
    """Judge up to ``limit`` of ``changed_paths`` (borg's paths), drawn with ``rng``.

    Paths outside ``roots`` (or with ``..``) are dropped before drawing. Reads
    at most ``head_bytes`` of each (module doc). Raises SourceUnavailable for a
    root that cannot be opened; a file that cannot be read is counted, not raised.
    """
    mapped = sorted({m for p in changed_paths if (m := map_to_root(roots, p)) is not None})
    chosen = rng.sample(mapped, min(limit, len(mapped)))
    sampled = unreadable = 0
    found: list[Suspect] = []
    root_fds: dict[int, int] = {}
    try:
        for index, parts in chosen:
            if index not in root_fds:
                root_fds[index] = open_root(roots[index])
            head = read_head(root_fds[index], parts, head_bytes)
            if head is None:
                unreadable += 1
                continue
            sampled += 1
            suffix = parts[-1].rpartition(b".")[2] if b"." in parts[-1] else b""
            verdict = classify(os.fsdecode(suffix), head)
            if verdict.suspect:
                relative = os.fsdecode(b"/".join(parts))
                found.append(Suspect(roots[index], relative, round(verdict.entropy, 3)))
    finally:
        for fd in root_fds.values():
            os.close(fd)
    return SampleResult(sampled, len(found), unreadable, tuple(found))
