"""Pure logic of finding and restoring: paths, destinations, conflicts, target choice.

Paths: support staff name files as the practice sees them, relative to the
share (``Patients/Dupont.pdf``) or absolute (``/srv/coffre/partage/Patients/...``).
borg stores them without the leading ``/`` (``srv/coffre/partage/Patients/...``).
A restore writes them under ``<share>/_restaurations/<archive>/`` (or ``--to``)
with the share's own folders stripped, so the practice finds
``_restaurations/<archive>/Patients/Dupont.pdf`` over SMB.

Nothing here does I/O: existence on disk is asked through a callable.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from coffre.core.errors import UsageError
from coffre.core.model import Archive, Item
from coffre.core.printable import controls_escaped

#: The share's folder that receives restores (visible to the practice over SMB).
RESTORE_FOLDER = "_restaurations"

#: Name prefix of a restore's staging folder (hidden: SMB clients do not show dot
#: files). The name alone never makes a folder coffre's: see coffre.support.staging.
STAGING_PREFIX = ".coffre-restauration-"

#: How many conflicting or missing paths an error message names (the rest are counted).
NAMED_IN_ERRORS = 10


@dataclass(frozen=True)
class Wanted:
    """One path asked for: the share root it lies in and its path as borg stores it."""

    root: PurePosixPath
    stored: str

    @property
    def strip(self) -> int:
        """How many leading folders ``--strip-components`` drops: the share's own."""
        return len(self.root.parts) - 1


def resolve(asked: str, roots: Sequence[PurePosixPath]) -> Wanted:
    """The stored path of ``asked`` (relative to the first share root, or absolute).

    Raises UsageError for an empty path, one with ``..``, or an absolute
    path outside every backed-up root.

    ``\\`` separates folders as ``/`` does: support copies paths from the
    practice's Windows workstations, and SMB names never hold a ``\\``.
    """
    asked = asked.replace("\\", "/")
    if not asked or not asked.strip("/"):
        raise UsageError("an empty path was asked", hint="name a file or folder of the share")
    path = PurePosixPath(asked)
    if ".." in path.parts:
        raise UsageError(f"path {asked!r} contains '..'", hint="give the path inside the share")
    if not path.is_absolute():
        path = roots[0] / path
    for root in roots:
        if path == root or root in path.parents:
            return Wanted(root=root, stored=str(path)[1:])
    shown = ", ".join(str(r) for r in roots)
    raise UsageError(
        f"{asked} is not in what coffre backs up ({shown})",
        hint="give a path relative to the share, e.g. Patients/Dupont.pdf",
    )


#: Characters Windows refuses in a name: over SMB they would show as a mangled
#: "CABIN~1" folder (archive names hold ':' in their time).
_NOT_ON_WINDOWS = str.maketrans({c: "-" for c in '<>:"\\|?*'})


def folder_name(archive: str) -> str:
    """``archive`` as a folder name the practice's Windows workstations show as is.

    ``cabinet-2026-11-29T01:30:00`` -> ``cabinet-2026-11-29T01-30-00``.
    """
    return archive.translate(_NOT_ON_WINDOWS).rstrip(". ")


def destination(root: PurePosixPath, archive: str, to: PurePosixPath | None) -> PurePosixPath:
    """The folder a restore writes into: ``to``, else ``<root>/_restaurations/<folder_name>``."""
    return to if to is not None else root / RESTORE_FOLDER / folder_name(archive)


def describe_paths(paths: Sequence[object]) -> str:
    """The first few of ``paths``, escaped, then how many more, for an error message.

    Escaped here (:func:`controls_escaped`), where the message is made: it goes
    to the support engineer's terminal and to the journal alike. Raises nothing.
    """
    shown = ", ".join(controls_escaped(str(p)) for p in paths[:NAMED_IN_ERRORS])
    rest = len(paths) - NAMED_IN_ERRORS
    return shown + (f" and {rest} more" if rest > 0 else "")


# --- find -----------------------------------------------------------------------

_GLOB = frozenset("*?[")


def matcher(pattern: str) -> Callable[[str], bool]:
    """A test of stored paths for ``coffre find PATTERN``, blind to case and accents.

    A pattern with ``*``, ``?`` or ``[`` is a shell glob matched, folder by
    folder (``*`` never crosses a ``/``), against the end of the path:
    ``*.pdf`` tests the file's name, ``Patients/*/*.odt`` its last three
    parts. Any other pattern matches when it occurs anywhere in the path
    (``dupont`` finds ``Patients/DUPONT Jean/ordonnance.pdf``). ``lea``
    finds ``Léa`` whichever way the name's accents were encoded (a Mac client
    writes them decomposed, Windows composed).
    Raises UsageError for an empty pattern.
    """
    if not pattern.strip():
        raise UsageError("the pattern is empty", hint="e.g. coffre find dupont")
    folded = _fold(pattern)
    if not (_GLOB & set(pattern)):
        return lambda path: folded in _fold(path)
    segments = PurePosixPath(folded.strip("/")).parts

    def matches(path: str) -> bool:
        parts = PurePosixPath(_fold(path)).parts
        if len(parts) < len(segments):
            return False
        tail = parts[len(parts) - len(segments) :]
        return all(
            fnmatch.fnmatchcase(part, glob) for part, glob in zip(tail, segments, strict=True)
        )

    return matches


def _fold(text: str) -> str:
    """``text`` without case or accents: ``Léa`` (either encoding) -> ``lea``."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# --- choosing an archive and a target -----------------------------------------


def pick_archive(
    archives: Sequence[Archive],
    prefix: str,
    *,
    name: str | None,
    day: date | None,
    tz: ZoneInfo,
) -> Archive | None:
    """The archive asked: by ``name``, else the last complete one of ``day``, else the latest.

    Only complete archives (no checkpoint) count unless named; a name is
    taken as given (even another prefix's). None when there is none.
    """
    if name is not None:
        return next((a for a in archives if a.name == name), None)
    ours = [a for a in archives if a.name.startswith(prefix + "-") and not a.is_checkpoint]
    if day is not None:
        ours = [a for a in ours if a.time.astimezone(tz).date() == day]
    return max(ours, key=recency, default=None)


@dataclass(frozen=True)
class Candidate:
    """A target that could serve a read: its name, kind and known archives (None: not listed)."""

    name: str
    kind: str
    available: bool
    archives: Sequence[Archive] | None


#: Fastest first: the box's own disk, then a USB disk, then the network.
KIND_ORDER: Mapping[str, int] = {"local": 0, "usb": 1, "offsite": 2}


def choose_target(
    candidates: Sequence[Candidate],
    prefix: str,
    *,
    name: str | None,
    day: date | None,
    tz: ZoneInfo,
) -> tuple[str, Archive]:
    """The fastest available target that holds the archive asked, and that archive.

    Raises UsageError saying what was looked at when no target holds it.
    """
    ordered = sorted(candidates, key=lambda c: KIND_ORDER.get(c.kind, 9))
    for candidate in ordered:
        if not candidate.available or candidate.archives is None:
            continue
        found = pick_archive(candidate.archives, prefix, name=name, day=day, tz=tz)
        if found is not None:
            return candidate.name, found
    what = (
        f"archive {name}"
        if name is not None
        else f"an archive of {day.isoformat()}"
        if day is not None
        else "an archive"
    )
    looked = ", ".join(f"{c.name} ({_why_not(c)})" for c in ordered)
    raise UsageError(
        f"no available target holds {what} (looked at: {looked or 'no target'})",
        hint="see `coffre archives`; name a target with --target (a USB disk is waited for)",
    )


def _why_not(candidate: Candidate) -> str:
    if not candidate.available:
        return "not available"
    return "not listed yet" if candidate.archives is None else "not there"


def recency(archive: Archive) -> tuple[datetime, str, int, str]:
    """Sort key of archives, oldest to newest; two archives never tie unless they are one.

    In: an archive. Out: its time, then its name with the counter that
    ``backup.archive_name`` appends in the same second (``…-2`` after the
    bare name, ``…-10`` after ``…-9``), then its ID. Raises nothing.

    borg keeps archive times to the second: two backups in one second have
    the same time, and the time alone would leave "newest first" to chance.
    """
    base, dash, counter = archive.name.rpartition("-")
    if dash and counter.isdigit():
        return archive.time, base, int(counter), archive.id
    return archive.time, archive.name, 1, archive.id


def newest_first(hits: Iterable[tuple[Archive, Item]]) -> list[tuple[Archive, Item]]:
    """Find's results: newest archive first (``recency``), then by path within an archive."""
    by_path = sorted(hits, key=lambda hit: hit[1].path)
    # sorted() is stable, also reversed: paths stay in order within an archive.
    return sorted(by_path, key=lambda hit: recency(hit[0]), reverse=True)


def since_filter(archives: Iterable[Archive], since: datetime | None) -> list[Archive]:
    """The archives made at or after ``since`` (all when None), newest first (``recency``)."""
    kept = [a for a in archives if since is None or a.time >= since]
    return sorted(kept, key=recency, reverse=True)
