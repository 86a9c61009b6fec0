"""Replace a small file whole or not at all, and make the replacement survive a power cut.

Every file coffre rewrites in place (the audit log's head, an offsite host's
pinned keys and known_hosts, the box's public SSH key) goes through
:func:`write_atomically`, so that a reader never sees half a file, a crash or
a full disk never leaves one, and a file said written is still there after
the box loses power. The steps, and why each:

1. a temporary file in the same directory (``mkstemp``: a unique name,
   ``O_EXCL``): the final ``rename`` is atomic only within one filesystem,
   and two writers never share a temporary file;
2. its mode set (``fchmod``) before any content: a secret is never readable
   by others, not even for a moment, whatever the umask;
3. the content written and the file fsynced: without it, ext4 may commit the
   rename before the data, and a power cut leaves an empty file;
4. ``rename`` over the old file: readers see the old content or the new;
5. the directory fsynced: the rename itself is on disk.

On any failure before the rename (an exception, KeyboardInterrupt and
cancellation included) the temporary file is removed and the old file is
left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Replace the file ``path`` with ``data``, with permissions ``mode`` (e.g. 0o600).

    The directory of ``path`` must exist. Returns once the new content and
    the rename are on disk. Raises OSError when the file cannot be written
    (disk full, read-only, no such directory...): ``path`` then holds its
    old content, or is still absent, and no temporary file is left; an
    OSError from the last step (fsync of the directory) comes after the
    rename: ``path`` holds the new content, which a power cut might undo.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    renamed = False
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
        renamed = True
    finally:
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    _fsync_directory(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write part of it); OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    """fsync ``directory``: a rename in it survives a power cut (OSError)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
