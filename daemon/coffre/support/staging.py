"""A restore's staging folder: made, tagged, locked, removed; and those a killed restore left.

borg extracts into ``<destination>/.coffre-restauration-<12 hex>/arbre/``;
only when everything came out whole is that tree moved into the
destination. The staging folder is root's, mode 0700 (no share user can
look in or change anything below it), holds the box's secret tag
(:class:`~coffre.storage.staging_mark.StagingMark`) beside ``arbre``, and
is locked (``flock``) by the process restoring for as long as it runs: the
kernel drops the lock when that process dies, which is how a folder
becomes stale.

A folder is taken for a staging folder, left out of backups or removed at
start, only with all of: the name, root as owner, mode 0700 and the tag.
A workstation user's folder of the same name has none of the last three.
Everything is done through directory descriptors (:mod:`coffre.storage.dirfd`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from coffre.core.restore_plan import RESTORE_FOLDER, STAGING_PREFIX
from coffre.storage.dirfd import empty_tree, open_dir, opened, remove_dir
from coffre.storage.staging_mark import StagingMark

#: The folder in a staging folder that borg extracts into, and whose content is placed.
TREE: Final = "arbre"


@dataclass(frozen=True)
class Staging:
    """A staging folder: its parent's descriptor (not owned), its name, its own and its tree's."""

    parent_fd: int
    name: str
    fd: int
    tree_fd: int
    shown: PurePosixPath


def claim(
    parent_fd: int, parent_shown: PurePosixPath, mark: StagingMark, held: contextlib.ExitStack
) -> Staging:
    """A new staging folder in the folder ``parent_fd``, tagged and locked.

    Its descriptors are closed, and the lock dropped, when ``held`` closes.
    Raises OSError when it cannot be made (nothing is left then), and
    PermissionError when what was made was swapped for someone else's folder
    before it could be opened (the share's users may rename in the parent).
    """
    name = f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    shown = parent_shown / name
    os.mkdir(name, mode=0o700, dir_fd=parent_fd)
    try:
        fd = open_dir(parent_fd, name, shown=shown)
    except OSError:
        remove_dir(parent_fd, name)
        raise
    held.callback(os.close, fd)
    if os.fstat(fd).st_uid != os.geteuid():
        raise PermissionError(errno.EPERM, "replaced by another folder while made", str(shown))
    os.fchmod(fd, 0o700)  # a setgid share would have it inherit the setgid bit
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(
        os.open(mark.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
    )
    os.mkdir(TREE, mode=0o700, dir_fd=fd)
    tree_fd = open_dir(fd, TREE, shown=shown / TREE)
    held.callback(os.close, tree_fd)
    return Staging(parent_fd, name, fd, tree_fd, shown)


def discard(staging: Staging) -> None:
    """Remove ``staging`` and everything in it (borg's extract, files ``--overwrite`` replaced).

    The folder is removed from its parent only if the name there is still
    this folder (a share user may have moved it, and put something else in
    its place). Raises OSError when something in it cannot be removed.
    """
    empty_tree(staging.fd)
    with contextlib.suppress(OSError):
        there = os.stat(staging.name, dir_fd=staging.parent_fd, follow_symlinks=False)
        mine = os.fstat(staging.fd)
        if (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
            os.rmdir(staging.name, dir_fd=staging.parent_fd)


def remove_stale_staging(roots: Iterable[Path], mark: StagingMark) -> list[PurePosixPath]:
    """Remove the staging folders restores cut short left in ``roots``; return those removed.

    Looked for where restores stage in the share: each root itself (``coffre
    recover``) and its ``_restaurations/*/`` (the daemon's restores). A
    folder of that name that is not root's, is open to others or lacks the box's
    tag is someone's folder: left alone. One a live process holds is left
    too; one that cannot be removed stays, for the next start. An archive's
    folder in ``_restaurations`` left empty is removed (the restore made
    it). Those of restores ``--to`` elsewhere are not looked for.
    """
    removed: list[PurePosixPath] = []
    for root in roots:
        try:
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue  # a root not there (yet): the backup says so, not this clean-up
        with opened(root_fd), _restaurations(root_fd, PurePosixPath(root)) as parent:
            removed += _remove_stale_in(root_fd, PurePosixPath(root), mark)
            if parent is not None:
                removed += _remove_stale_below(parent, PurePosixPath(root) / RESTORE_FOLDER, mark)
    return removed


def _remove_stale_below(
    restaurations_fd: int, shown: PurePosixPath, mark: StagingMark
) -> list[PurePosixPath]:
    """Stale staging folders in each archive's folder of ``_restaurations``; emptied ones go."""
    removed = []
    for entry in list(os.scandir(restaurations_fd)):
        try:
            folder_fd = open_dir(restaurations_fd, entry.name, shown=shown / entry.name)
        except OSError:
            continue
        with opened(folder_fd):
            found = _remove_stale_in(folder_fd, shown / entry.name, mark)
        if found:
            removed += found
            remove_dir(restaurations_fd, entry.name)  # only if the restore made it alone
    return removed


def _remove_stale_in(
    parent_fd: int, shown: PurePosixPath, mark: StagingMark
) -> list[PurePosixPath]:
    removed = []
    for entry in list(os.scandir(parent_fd)):
        if not entry.name.startswith(STAGING_PREFIX):
            continue
        try:
            fd = open_dir(parent_fd, entry.name, shown=shown / entry.name)
        except OSError:
            continue  # a file or a link of that name: not ours
        with opened(fd):
            if not _ours(os.fstat(fd)) or not _tagged(fd, mark):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a restore running beside us holds it
            try:
                discard(Staging(parent_fd, entry.name, fd, -1, shown / entry.name))
            except OSError:
                continue
        removed.append(shown / entry.name)
    return removed


@contextlib.contextmanager
def _restaurations(root_fd: int, root: PurePosixPath) -> Iterator[int | None]:
    try:
        fd = open_dir(root_fd, RESTORE_FOLDER, shown=root / RESTORE_FOLDER)
    except OSError:
        yield None
        return
    with opened(fd):
        yield fd


def _ours(st: os.stat_result) -> bool:
    """Root's (the daemon's user's) and closed to everyone else, as :func:`claim` makes them."""
    return st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077 == 0


def _tagged(fd: int, mark: StagingMark) -> bool:
    try:
        st = os.stat(mark.name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
