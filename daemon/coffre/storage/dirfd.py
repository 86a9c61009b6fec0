"""Walking and changing a tree others write to, by directory file descriptors only.

Restores run as root and write into the share, where any workstation user
may rename a folder or swap it for a symbolic link at any moment. A path
looked up twice may name two different things; a descriptor names one
folder for as long as it is open, wherever that folder is moved. So every
function here takes a folder's descriptor and a single name in it, opens
with ``O_NOFOLLOW`` (a link met is refused and named, never followed), and
renames with ``renameat2`` (``RENAME_NOREPLACE``: a name taken meanwhile is
never replaced; ``RENAME_EXCHANGE``: a replaced file is kept, so it can be
put back).

Errors: :class:`LinkInTheWay` and :class:`NotAFolder` (both OSError, with the
path shown to a person) for what the share put in the way; other OSError as
the kernel raises them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Final

__all__ = [
    "EXCHANGE",
    "NOREPLACE",
    "LinkInTheWay",
    "NotAFolder",
    "count_tree",
    "empty_tree",
    "open_dir",
    "opened",
    "proc_path",
    "remove_dir",
    "rename",
    "walk_open",
]

#: ``renameat2`` flags (linux/fs.h).
NOREPLACE: Final = 1
EXCHANGE: Final = 2

_OPEN_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = _libc.renameat2
_renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
_renameat2.restype = ctypes.c_int


class LinkInTheWay(OSError):
    """A symbolic link where a folder was to be walked through; ``filename`` is its path."""


class NotAFolder(OSError):
    """A file (not a folder) where a folder was to be walked through; ``filename`` its path."""


def open_dir(parent_fd: int, name: str, *, shown: PurePosixPath) -> int:
    """A new descriptor of folder ``name`` in ``parent_fd``, never through a link.

    ``shown`` is the folder's path as a person knows it, for the errors.
    Raises LinkInTheWay (a link there, or a name that keeps turning from a
    folder into a link while it is opened), NotAFolder, FileNotFoundError,
    or OSError.
    """
    for _ in range(_TRIES):
        try:
            return os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            try:
                mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
            except OSError:
                raise error from None
        if stat.S_ISLNK(mode):
            raise LinkInTheWay(errno.ELOOP, "a symbolic link", str(shown))
        if not stat.S_ISDIR(mode):
            raise NotAFolder(errno.ENOTDIR, "not a folder", str(shown))
        # A folder now, not when opened: someone swaps names there. Try again.
    raise LinkInTheWay(errno.ELOOP, "a symbolic link and a folder in turn", str(shown))


#: How many times :func:`open_dir` tries a name that turns into a folder once refused.
_TRIES: Final = 8


@contextmanager
def opened(fd: int) -> Iterator[int]:
    """``fd``, closed when the block ends."""
    try:
        yield fd
    finally:
        os.close(fd)


def walk_open(
    anchor_fd: int, parts: Sequence[str], *, shown: PurePosixPath, create: bool = False
) -> tuple[int, list[tuple[int, str]]]:
    """Open the folder ``parts`` below ``anchor_fd``, folder by folder, never through a link.

    ``shown`` is the anchor's path as a person knows it. With ``create``,
    missing folders are made (mode 0700: the caller gives them their owner
    and mode through their descriptors). Returns the folder's descriptor
    (the caller closes it) and, for each folder made, outermost first, a
    descriptor of its parent (which the caller closes) and its name.
    Raises what :func:`open_dir` raises; nothing made is left on error.
    """
    made: list[tuple[int, str]] = []
    current = os.dup(anchor_fd)
    try:
        for part in parts:
            shown = shown / part
            try:
                child = open_dir(current, part, shown=shown)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, mode=0o700, dir_fd=current)
                made.append((os.dup(current), part))
                child = open_dir(current, part, shown=shown)
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        for parent, name in reversed(made):
            remove_dir(parent, name)
            os.close(parent)
        raise
    return current, made


def remove_dir(parent_fd: int, name: str) -> bool:
    """Remove folder ``name`` of ``parent_fd`` if it is empty; whether it was removed."""
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except OSError:
        return False
    return True


def rename(src_fd: int, src: str, dst_fd: int, dst: str, flags: int) -> None:
    """``renameat2(src_fd, src, dst_fd, dst, flags)``; raises OSError (FileExistsError...)."""
    if _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), src, None, dst)


def empty_tree(dir_fd: int) -> None:
    """Remove everything in the folder ``dir_fd``, never following a link.

    Raises OSError when something cannot be removed (what could be is gone).
    """
    for entry in list(os.scandir(dir_fd)):
        if entry.is_dir(follow_symlinks=False):
            child = os.open(entry.name, _OPEN_DIR, dir_fd=dir_fd)
            with opened(child):
                empty_tree(child)
            os.rmdir(entry.name, dir_fd=dir_fd)
        else:
            os.unlink(entry.name, dir_fd=dir_fd)


def count_tree(dir_fd: int) -> tuple[int, int]:
    """(regular files, their bytes) in the folder ``dir_fd`` and below, links not followed."""
    files = size = 0
    for entry in os.scandir(dir_fd):
        if entry.is_dir(follow_symlinks=False):
            with opened(os.open(entry.name, _OPEN_DIR, dir_fd=dir_fd)) as child:
                more, more_bytes = count_tree(child)
            files, size = files + more, size + more_bytes
        elif entry.is_file(follow_symlinks=False):
            files += 1
            size += entry.stat(follow_symlinks=False).st_size
    return files, size


def proc_path(fd: int) -> str:
    """A path naming the folder ``fd`` itself, for a child process's working directory.

    ``/proc/<pid>/fd/<fd>`` resolves to the open folder wherever it has been
    moved since; a child process started from here can ``chdir`` to it
    (it runs as the same user) whatever the share did to the folder's path.
    """
    return f"/proc/{os.getpid()}/fd/{fd}"
