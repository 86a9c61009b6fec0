"""The newest change in a folder tree: the quiet test's second half, by descriptors.

Walks the tree under a folder descriptor, never following a link (each
sub-folder opened with ``O_NOFOLLOW`` relative to its parent, as
``storage.dirfd`` does), and reads each entry's change time (``st_ctime``,
which moves with every write, rename, chmod and with a folder's entries).
Nothing is read from files and no name leaves this module.
"""

from __future__ import annotations

import errno
import os

from coffre.storage.dirfd import opened

__all__ = ["MOVING", "newest_change_ns"]

#: What :func:`newest_change_ns` gives when the tree changed under the walk itself.
MOVING = -1

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def newest_change_ns(dir_fd: int) -> int:
    """The newest ``st_ctime_ns`` of the folder ``dir_fd`` and of everything below it.

    Returns :data:`MOVING` when an entry vanished or turned into something else
    while the walk read it: the tree is changing now. Raises OSError when the
    folder itself cannot be read (EACCES, EIO).
    """
    newest = os.fstat(dir_fd).st_ctime_ns
    for entry in os.scandir(dir_fd):
        try:
            seen = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                with opened(os.open(entry.name, _OPEN_DIR, dir_fd=dir_fd)) as child:
                    below = newest_change_ns(child)
                if below == MOVING:
                    return MOVING
                newest = max(newest, below)
        except (FileNotFoundError, NotADirectoryError):
            return MOVING
        except OSError as error:
            # O_NOFOLLOW on a folder just swapped for a link: the tree moves.
            if error.errno == errno.ELOOP:
                return MOVING
            raise
        newest = max(newest, seen.st_ctime_ns)
    return newest
