"""Bind mounts by descriptor: a snapshot shown at a fixed path, and taken away again.

A backup reads the run's snapshot through a bind mount at a path that never
changes (``consistency.layout``): the mount shows the snapshot's own inodes,
so what the quiet look's walk brought into memory is what borg then reads.
:func:`bind` mounts one open folder on another through ``/proc/self/fd``
(mount(2) by ctypes: no path is looked up again); :func:`unmount` takes a mount
point away by its path, never through a link; :func:`mounts_under` lists the
mount points below a folder, from ``/proc/self/mountinfo``.

Under the shipped unit (``PrivateMounts=yes``) the mounts live in the daemon's
own namespace and go with it; a daemon run by hand leaves them in the host's,
which the next start takes away.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Final

from coffre.core.errors import SnapshotError

__all__ = ["bind", "mounts_under", "unmount"]

MS_BIND: Final = 4096
MNT_DETACH: Final = 2
UMOUNT_NOFOLLOW: Final = 8

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def bind(source_fd: int, target_fd: int, *, shown: Path) -> None:
    """Mount the folder ``source_fd`` on the folder ``target_fd`` (``shown``: its path, for
    errors). Raises SnapshotError with the kernel's reason."""
    source = f"/proc/self/fd/{source_fd}".encode()
    target = f"/proc/self/fd/{target_fd}".encode()
    if _libc.mount(source, target, None, MS_BIND, None) != 0:
        code = ctypes.get_errno()
        raise SnapshotError(
            f"cannot show the snapshot at {shown}: {os.strerror(code)}",
            hint="the daemon needs CAP_SYS_ADMIN and the mount system calls (the shipped unit "
            "has both); the backup reads the live share meanwhile",
        )


def unmount(point: Path) -> None:
    """Take the mount at ``point`` away (a link there is refused); if something still uses
    it, detach it (it goes once unused). Gone already: nothing. Raises SnapshotError."""
    raw = os.fsencode(point)
    if _libc.umount2(raw, UMOUNT_NOFOLLOW) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EINVAL:  # not a mount point (any more)
        return
    if code == errno.EBUSY and _libc.umount2(raw, UMOUNT_NOFOLLOW | MNT_DETACH) == 0:
        return
    raise SnapshotError(
        f"cannot take the snapshot's view at {point} away: {os.strerror(code)}",
        hint="`umount` it by hand; the next start tries again",
    )


def mounts_under(folder: Path, *, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[Path]:
    """The mount points strictly below ``folder``, deepest first. Raises OSError."""
    prefix = os.fsencode(folder).rstrip(b"/") + b"/"
    found = []
    for line in mountinfo.read_bytes().splitlines():
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        point = _unescaped(fields[4])
        if point.startswith(prefix):
            found.append(Path(os.fsdecode(point)))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescaped(field: bytes) -> bytes:
    r"""mountinfo's octal escapes (``\040`` a space, ``\011``, ``\012``, ``\134``) undone."""
    out, i = bytearray(), 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)
