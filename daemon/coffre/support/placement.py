"""Moving a restore's staged tree into its destination: folders merge, nothing replaced unasked.

Both sides are walked by directory descriptors (:mod:`coffre.storage.dirfd`)
from the destination's descriptor, opened once: the destination is often in
the share, where a user may swap a folder for a symbolic link at any moment,
and what was checked by path may no longer be what a path names when moving.

Each entry moves with ``renameat2``: ``RENAME_NOREPLACE`` (a name taken since
the check is never replaced) or, with ``--overwrite`` over a file,
``RENAME_EXCHANGE`` (the replaced file goes into the staging folder, removed
afterwards). A folder met on both sides is merged into, by descriptor: a link
found there instead is refused and named. When anything fails halfway,
every move done is undone, newest first, so the destination is as it was.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from coffre.core.errors import WouldOverwrite
from coffre.core.restore_plan import describe_paths
from coffre.storage.dirfd import (
    EXCHANGE,
    NOREPLACE,
    LinkInTheWay,
    open_dir,
    opened,
    rename,
    walk_open,
)

__all__ = ["Destination", "adopt", "adopt_below", "clashes", "place"]


@dataclass(frozen=True)
class Destination:
    """A folder to place into: its descriptor (not owned) and its path as a person knows it."""

    fd: int
    shown: PurePosixPath


@dataclass(frozen=True)
class _Move:
    """One entry moved: the folder it went into (parts below the destination) and its name."""

    parts: tuple[str, ...]
    name: str
    exchanged: bool


def clashes(tree_fd: int, into: Destination, overwrite: bool) -> list[PurePosixPath]:
    """What moving the tree ``tree_fd``'s content into ``into`` would replace (folders merge).

    With ``overwrite``, a file may replace a file; a folder and a file in
    each other's place are still listed: replacing would drop a whole tree.
    Raises LinkInTheWay when a folder there turns out to be a link.
    """
    found: list[PurePosixPath] = []
    for entry in list(os.scandir(tree_fd)):
        try:
            mode = os.stat(entry.name, dir_fd=into.fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue
        ours_is_dir = entry.is_dir(follow_symlinks=False)
        there = into.shown / entry.name
        _no_link_for(ours_is_dir, mode, there)
        if ours_is_dir and stat.S_ISDIR(mode):
            with (
                opened(open_dir(tree_fd, entry.name, shown=there)) as ours,
                opened(open_dir(into.fd, entry.name, shown=there)) as theirs,
            ):
                found += clashes(ours, Destination(theirs, there), overwrite)
        elif not overwrite or ours_is_dir or stat.S_ISDIR(mode):
            found.append(there)
    return found


def place(tree_fd: int, into: Destination, overwrite: bool) -> None:
    """Move every entry of the tree ``tree_fd`` into ``into``; all of them, or none.

    What ``overwrite`` replaces ends up in the tree (the caller removes it).
    Raises WouldOverwrite for a name taken since :func:`clashes` looked,
    LinkInTheWay for a folder swapped for a link, OSError as the kernel
    does; in each case every move done is undone first (what could not be
    is added to the exception's notes).
    """
    journal: list[_Move] = []
    try:
        _place_into(tree_fd, into, (), overwrite, journal)
    except BaseException as error:
        for left in _take_back(tree_fd, into, journal):
            error.add_note(f"could not be taken back: {left}")
        raise


def adopt(parent_fd: int, name: str, like: os.stat_result, *, shown: PurePosixPath) -> None:
    """Give the folder ``name`` of ``parent_fd`` the owner, group and mode of ``like``.

    Through the folder's own descriptor, never a link. Raises what
    :func:`~coffre.storage.dirfd.open_dir` raises, and OSError.
    """
    with opened(open_dir(parent_fd, name, shown=shown)) as fd:
        os.fchown(fd, like.st_uid, like.st_gid)
        os.fchmod(fd, stat.S_IMODE(like.st_mode))


def adopt_below(tree_fd: int, parts: Sequence[str], like: os.stat_result) -> None:
    """:func:`adopt` each folder on the way to ``parts`` in the tree ``tree_fd`` (not the last).

    They are the folders borg made only to hold a path asked (``Patients``
    for ``Patients/Dupont.pdf``): they were not archived items, so they came
    out root's and 0700, which the practice could not open over SMB.
    """
    current = os.dup(tree_fd)
    try:
        shown = PurePosixPath(".")
        for part in parts[:-1]:
            shown /= part
            adopt(current, part, like, shown=shown)
            child = open_dir(current, part, shown=shown)
            os.close(current)
            current = child
    finally:
        os.close(current)


def _place_into(
    src_fd: int, into: Destination, parts: tuple[str, ...], overwrite: bool, journal: list[_Move]
) -> None:
    for entry in list(os.scandir(src_fd)):
        name, there = entry.name, into.shown / entry.name
        try:
            rename(src_fd, name, into.fd, name, NOREPLACE)
        except FileExistsError:
            pass
        else:
            journal.append(_Move(parts, name, exchanged=False))
            continue
        mode = os.stat(name, dir_fd=into.fd, follow_symlinks=False).st_mode
        ours_is_dir = entry.is_dir(follow_symlinks=False)
        _no_link_for(ours_is_dir, mode, there)
        if ours_is_dir and stat.S_ISDIR(mode):
            with (
                opened(open_dir(src_fd, name, shown=there)) as ours,
                opened(open_dir(into.fd, name, shown=there)) as theirs,
            ):
                _place_into(ours, Destination(theirs, there), (*parts, name), overwrite, journal)
        elif overwrite and not ours_is_dir and not stat.S_ISDIR(mode):
            rename(src_fd, name, into.fd, name, EXCHANGE)
            journal.append(_Move(parts, name, exchanged=True))
        else:
            raise WouldOverwrite(
                f"{describe_paths([there])} appeared while the restore was placed",
                hint="nothing was written; see who writes there, and restore again",
            )


def _no_link_for(ours_is_dir: bool, mode: int, there: PurePosixPath) -> None:
    """Raise LinkInTheWay when a folder is to be merged into ``there`` and it is a link."""
    if ours_is_dir and stat.S_ISLNK(mode):
        raise LinkInTheWay(errno.ELOOP, "a symbolic link", str(there))


def _take_back(tree_fd: int, into: Destination, journal: list[_Move]) -> list[PurePosixPath]:
    """Undo ``journal``'s moves, newest first; return the paths that could not be."""
    left = []
    for move in reversed(journal):
        shown = into.shown.joinpath(*move.parts, move.name)
        try:
            with (
                opened(walk_open(tree_fd, move.parts, shown=into.shown)[0]) as ours,
                opened(walk_open(into.fd, move.parts, shown=into.shown)[0]) as theirs,
            ):
                rename(
                    theirs, move.name, ours, move.name, EXCHANGE if move.exchanged else NOREPLACE
                )
        except OSError:
            left.append(shown)
    return left
