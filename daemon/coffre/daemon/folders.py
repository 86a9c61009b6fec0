"""The daemon's private folders (state, cache), made private again at each start.

``mkdir(exist_ok=True)`` leaves a folder that exists as it is: a state
folder someone opened to 0755 (by hand, a restore of /var/lib from
elsewhere, a careless installer) would stay readable by every local user,
with borg's security folders, the pinned host keys and the run history.
So each start forces 0700, through a descriptor opened without following a
link (``O_NOFOLLOW | O_DIRECTORY``, then ``fchmod``): a link put in the
folder's place is never followed, as root, to chmod what it points at.

A folder that is a link, not a directory, or owned by another user is
refused (:class:`StateError`, the daemon stops and systemd tries again):
its owner could change its content under the daemon whatever its mode (swap
the pinned host keys, rewrite the state), and taking it over silently would
hide that someone made it. Only the last component is checked: the folders'
parents (``/var/lib``, ``/var/cache``) are the system's.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from coffre.core.errors import StateError

#: The mode of the daemon's private folders.
PRIVATE = 0o700


def make_private(path: Path, what: str, *, uid: int) -> int | None:
    """Make ``path`` (and its missing parents) a folder of ``uid`` with mode 0700.

    ``what`` names it in errors ("state folder"). Returns the mode it had when
    that was not 0700 (it is 0700 now), None when it already was (or was
    just made). Raises :class:`StateError` when it cannot be made or opened,
    is a symbolic link or not a directory, or is owned by another uid than
    ``uid``.
    """
    hint = f"make {path} a directory of uid {uid} with mode 0700, or check paths in the config"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise StateError(f"the {what} {path} {_why(path, error)}", hint=hint) from error
    try:
        status = os.fstat(fd)
        if status.st_uid != uid:
            raise StateError(
                f"the {what} {path} belongs to uid {status.st_uid}, not to the daemon's "
                f"({uid}): coffre refuses a folder another user can change",
                hint=hint,
            )
        mode = stat.S_IMODE(status.st_mode)
        if mode == PRIVATE:
            return None
        os.fchmod(fd, PRIVATE)
        return mode
    finally:
        os.close(fd)


def _why(path: Path, error: OSError) -> str:
    """What is wrong with ``path``, which ``error`` kept from being made or opened."""
    if path.is_symlink():
        return "is a symbolic link: coffre refuses to follow it"
    if error.errno in (errno.ENOTDIR, errno.EEXIST, errno.ELOOP):
        return "is not a directory"
    return f"cannot be made or opened: {error.strerror or error}"
