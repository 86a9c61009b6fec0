"""The one door to btrfs: snapshots and subvolumes, by directory descriptors.

Every call takes open descriptors and, where something is made or removed, a
single name in a folder: the kernel's ioctls (linux/btrfs.h) through
``fcntl.ioctl``, never the ``btrfs`` command, so no path under the share,
where workstation users write, is ever looked up again by root after the
caller opened it (with ``O_NOFOLLOW``, as :mod:`coffre.storage.dirfd` does).

Errors: a name that cannot be a single entry raises ValueError before any
call; ``FileExistsError`` (EEXIST) and ``FileNotFoundError`` (ENOENT) pass
through as the kernel raises them, so a caller can tell "already there" and
"already gone" apart; every other OSError of an ioctl becomes
:class:`~coffre.core.errors.SnapshotError`, and ENOSPC or EDQUOT
:class:`~coffre.core.errors.SnapshotNoSpace`, each naming what failed and
what to do. The struct packing is apart from the calls (``pack_*``,
``parse_*``): pure, unit-tested.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import time
from typing import Final

from coffre.core.errors import SnapshotError, SnapshotNoSpace

__all__ = [
    "BTRFS_SUPER_MAGIC",
    "check_name",
    "create_subvolume",
    "delete_subvolume",
    "deleting_subvolumes",
    "filesystem_id",
    "free_space",
    "is_btrfs",
    "is_subvolume",
    "snapshot",
    "sync",
    "wait_deleted",
]

#: statfs f_type of a btrfs filesystem (linux/magic.h).
BTRFS_SUPER_MAGIC: Final = 0x9123683E
#: The inode number of every subvolume's root folder (BTRFS_FIRST_FREE_OBJECTID).
SUBVOLUME_INODE: Final = 256

_MAGIC: Final = 0x94  # BTRFS_IOCTL_MAGIC
_ARGS_SIZE: Final = 4096  # every btrfs_ioctl_*_args used here is one page
_PATH_NAME_MAX: Final = 4087  # btrfs_ioctl_vol_args.name
_SUBVOL_NAME_MAX: Final = 4039  # btrfs_ioctl_vol_args_v2.name
_NAME_MAX: Final = 255  # one directory entry (what btrfs itself accepts)
SUBVOL_RDONLY: Final = 1 << 1  # BTRFS_SUBVOL_RDONLY

_ROOT_TREE: Final = 1  # BTRFS_ROOT_TREE_OBJECTID
_ORPHAN_OBJECTID: Final = (1 << 64) - 5  # BTRFS_ORPHAN_OBJECTID (-5ULL)
_ORPHAN_ITEM_KEY: Final = 48
_U64_MAX: Final = (1 << 64) - 1
_U32_MAX: Final = (1 << 32) - 1

#: btrfs_ioctl_vol_args_v2: fd, transid, flags, 4 unused u64, name[4040].
_VOL_ARGS_V2: Final = struct.Struct(f"=qQQ32x{_SUBVOL_NAME_MAX + 1}s")
#: btrfs_ioctl_vol_args: fd, name[4088].
_VOL_ARGS: Final = struct.Struct(f"=q{_PATH_NAME_MAX + 1}s")
#: btrfs_ioctl_ino_lookup_args: treeid, objectid, name[4080].
#: btrfs_ioctl_search_key: tree_id, min/max objectid, offset, transid; min/max type, nr_items.
_SEARCH_KEY: Final = struct.Struct("=QQQQQQQIIII32x")
#: btrfs_ioctl_fs_info_args: max_id, num_devices, fsid[16], then fields unused here.
_FS_INFO: Final = struct.Struct("=QQ16s992x")
#: btrfs_ioctl_search_header: transid, objectid, offset, type, len.
_SEARCH_HEADER: Final = struct.Struct("=QQQII")


def _ioc(direction: int, nr: int, size: int) -> int:
    """An ioctl request number, as asm-generic/ioctl.h's _IOC builds it."""
    return (direction << 30) | (size << 16) | (_MAGIC << 8) | nr


_WRITE, _READ = 1, 2
IOC_SYNC: Final = _ioc(0, 8, 0)  # _IO(0x94, 8)
IOC_SUBVOL_CREATE: Final = _ioc(_WRITE, 14, _VOL_ARGS.size)
IOC_SNAP_DESTROY: Final = _ioc(_WRITE, 15, _VOL_ARGS.size)
IOC_TREE_SEARCH: Final = _ioc(_READ | _WRITE, 17, _ARGS_SIZE)
IOC_FS_INFO: Final = _ioc(_READ, 31, _FS_INFO.size)
IOC_SNAP_CREATE_V2: Final = _ioc(_WRITE, 23, _VOL_ARGS_V2.size)
IOC_SNAP_DESTROY_V2: Final = _ioc(_WRITE, 63, _VOL_ARGS_V2.size)

_libc = ctypes.CDLL(None, use_errno=True)
_fstatfs = _libc.fstatfs
_fstatfs.argtypes = (ctypes.c_int, ctypes.c_void_p)
_fstatfs.restype = ctypes.c_int


# --- pure: names and structs ---------------------------------------------------


def check_name(name: str) -> bytes:
    """``name`` as the bytes of one directory entry btrfs accepts.

    In: a would-be entry name. Out: its UTF-8 bytes (surrogate escapes kept,
    as os.fsencode does). Raises ValueError for an empty name, ``.``, ``..``,
    one holding ``/`` or NUL, or one longer than 255 bytes.
    """
    raw = os.fsencode(name)
    if raw in (b"", b".", b"..") or b"/" in raw or b"\0" in raw:
        raise ValueError(f"not a single folder entry: {name!r}")
    if len(raw) > _NAME_MAX:
        raise ValueError(f"name longer than {_NAME_MAX} bytes: {name[:40]!r}...")
    return raw


def pack_vol_args_v2(fd: int, name: str, flags: int = 0) -> bytearray:
    """A btrfs_ioctl_vol_args_v2 of the source ``fd``, entry ``name`` and ``flags``.

    Out: 4096 writable bytes, the name NUL-padded. Raises ValueError for a bad name.
    """
    return bytearray(_VOL_ARGS_V2.pack(fd, 0, flags, check_name(name)))


def pack_vol_args(name: str, fd: int = 0) -> bytearray:
    """A btrfs_ioctl_vol_args naming entry ``name`` (``fd`` unused by the calls here).

    Out: 4096 writable bytes. Raises ValueError for a bad name.
    """
    return bytearray(_VOL_ARGS.pack(fd, check_name(name)))


def pack_search(tree_id: int, objectid: int, item_type: int, nr_items: int) -> bytearray:
    """A btrfs_ioctl_search_args for every item of ``objectid`` and ``item_type`` in a tree.

    In: the tree's id, the key's objectid and type, how many items at most.
    Out: 4096 writable bytes (the key, then an empty result buffer). Raises
    struct.error for values out of range.
    """
    key = _SEARCH_KEY.pack(
        tree_id, objectid, objectid, 0, _U64_MAX, 0, _U64_MAX, item_type, item_type, nr_items, 0
    )
    return bytearray(key.ljust(_ARGS_SIZE, b"\0"))


def parse_search(args: bytes | bytearray) -> list[tuple[int, int, int]]:
    """The (objectid, type, offset) of each item a TREE_SEARCH wrote back into ``args``.

    In: the 4096 bytes after the call (nr_items now says how many were
    found). Out: the items' keys, in tree order. Raises struct.error on a
    truncated buffer.
    """
    found = _SEARCH_KEY.unpack_from(args)[9]
    items, at = [], _SEARCH_KEY.size
    for _ in range(found):
        _transid, objectid, offset, item_type, length = _SEARCH_HEADER.unpack_from(args, at)
        items.append((objectid, item_type, offset))
        at += _SEARCH_HEADER.size + length
    return items


# --- the calls -------------------------------------------------------------------


def _call(fd: int, request: int, args: bytearray | int, what: str) -> None:
    """Run one btrfs ioctl; map its OSError as the module's docstring says."""
    try:
        fcntl.ioctl(fd, request, args)
    except (FileExistsError, FileNotFoundError):
        raise
    except OSError as error:
        raise _snapshot_error(error, what) from error


def _snapshot_error(error: OSError, what: str) -> SnapshotError:
    """The typed error of a failed ``what`` (a sentence naming the entry)."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return SnapshotNoSpace(
            f"{what}: the btrfs filesystem is full ({reason})",
            hint="free space on the share's filesystem; the oldest Previous Versions go first",
        )
    if error.errno in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP):
        hint = "the folder is not on btrfs, or not a subvolume: run `coffre share setup`"
    elif error.errno == errno.EXDEV:
        hint = "the snapshot must be made on the same btrfs filesystem as its source"
    elif error.errno in (errno.EPERM, errno.EACCES):
        hint = "run as root"
    else:
        hint = "see the kernel's log (`journalctl -k`) for btrfs messages"
    return SnapshotError(f"{what}: {reason}", hint=hint)


def is_btrfs(path_or_fd: int | str | os.PathLike[str]) -> bool:
    """Whether a folder lies on a btrfs filesystem.

    In: an open descriptor, or a path (opened with ``O_PATH | O_NOFOLLOW``: a
    symbolic link is judged itself, never followed). Out: True when statfs's
    f_type is btrfs's magic. Raises OSError when the path cannot be opened
    or fstatfs fails.
    """
    if isinstance(path_or_fd, int):
        return _fs_type(path_or_fd) == BTRFS_SUPER_MAGIC
    fd = os.open(path_or_fd, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return _fs_type(fd) == BTRFS_SUPER_MAGIC
    finally:
        os.close(fd)


def _fs_type(fd: int) -> int:
    # struct statfs is 120 bytes on 64-bit Linux; f_type (a long) comes first.
    buffer = ctypes.create_string_buffer(256)
    if _fstatfs(fd, buffer) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    (f_type,) = struct.unpack_from("=l", buffer.raw)
    return int(f_type) & _U32_MAX


def is_subvolume(fd: int) -> bool:
    """Whether the open folder ``fd`` is the root of a btrfs subvolume (or snapshot).

    Out: True when it is on btrfs and its inode number is 256. Raises OSError
    when fstat or fstatfs fails.
    """
    return os.fstat(fd).st_ino == SUBVOLUME_INODE and is_btrfs(fd)


def snapshot(source_fd: int, dest_dir_fd: int, name: str, *, readonly: bool = True) -> None:
    """Snapshot the subvolume open at ``source_fd`` as entry ``name`` of ``dest_dir_fd``.

    In: the source subvolume's root folder (open for reading), the folder
    that receives the snapshot (same filesystem), the new entry's name; a
    read-only snapshot unless ``readonly`` is False. Out: None, the snapshot
    made (BTRFS_IOC_SNAP_CREATE_V2). Raises ValueError for a bad name,
    FileExistsError when the name is taken, SnapshotNoSpace when the
    filesystem is full, SnapshotError otherwise (not a subvolume, another
    filesystem, not root).
    """
    args = pack_vol_args_v2(source_fd, name, SUBVOL_RDONLY if readonly else 0)
    _call(dest_dir_fd, IOC_SNAP_CREATE_V2, args, f"snapshot {name!r}")


def create_subvolume(dir_fd: int, name: str) -> None:
    """Make an empty subvolume as entry ``name`` of the folder ``dir_fd``.

    Out: None; the subvolume's root is root's, mode 0755 less the umask
    (the caller sets owner and mode, through a descriptor). Raises ValueError
    for a bad name, FileExistsError when the name is taken, SnapshotNoSpace,
    SnapshotError (not btrfs, not root).
    """
    _call(dir_fd, IOC_SUBVOL_CREATE, pack_vol_args(name), f"subvolume {name!r}")


def delete_subvolume(dir_fd: int, name: str) -> None:
    """Delete the subvolume (or snapshot, read-only ones too) ``name`` in ``dir_fd``.

    Out: None once it is unlinked; btrfs's cleaner frees its space later
    (:func:`wait_deleted`). Uses BTRFS_IOC_SNAP_DESTROY_V2, falling back to
    SNAP_DESTROY on a kernel older than 5.7. Raises ValueError for a bad
    name, FileNotFoundError when nothing has that name, SnapshotError when
    it is not a subvolume (ENOTTY/EINVAL) or cannot be removed (EPERM).
    """
    what = f"deleting subvolume {name!r}"
    try:
        fcntl.ioctl(dir_fd, IOC_SNAP_DESTROY_V2, pack_vol_args_v2(0, name))
    except FileNotFoundError:
        raise
    except OSError as error:
        if error.errno not in (errno.ENOTTY, errno.EOPNOTSUPP):
            raise _snapshot_error(error, what) from error
        _call(dir_fd, IOC_SNAP_DESTROY, pack_vol_args(name), what)


def filesystem_id(fd: int) -> bytes:
    """The 16-byte UUID of the btrfs filesystem of ``fd`` (BTRFS_IOC_FS_INFO).

    Every subvolume has its own st_dev, so this, not st_dev, tells whether two
    folders lie on one btrfs filesystem (where snapshots of one may go in the
    other). Raises SnapshotError when ``fd`` is not on btrfs.
    """
    args = bytearray(_FS_INFO.size)
    _call(fd, IOC_FS_INFO, args, "reading the filesystem's id")
    return bytes(_FS_INFO.unpack_from(args)[2])


def free_space(fd: int) -> tuple[int, int]:
    """(bytes a write can still use, total bytes) of the filesystem of ``fd``.

    From fstatvfs: ``f_bavail`` (btrfs keeps no blocks for root alone, and its
    ``f_bfree`` counts space a data write cannot use) and ``f_blocks``, in
    units of ``f_frsize``. Raises OSError when fstatvfs fails.
    """
    figures = os.fstatvfs(fd)
    return figures.f_bavail * figures.f_frsize, figures.f_blocks * figures.f_frsize


def sync(fd: int) -> None:
    """Commit the current transaction of the btrfs filesystem of ``fd`` (BTRFS_IOC_SYNC).

    Raises SnapshotError when ``fd`` is not on btrfs.
    """
    _call(fd, IOC_SYNC, 0, "committing the filesystem's transaction")


def deleting_subvolumes(fd: int) -> list[int]:
    """The ids of the subvolumes deleted but not yet freed on the filesystem of ``fd``.

    Reads the root tree's orphan items (as ``btrfs subvolume sync`` does):
    one for each deleted subvolume btrfs's cleaner has not dropped yet.
    Out: at most the first few hundred such ids. Raises SnapshotError (not
    btrfs; EPERM when not root: a tree search needs CAP_SYS_ADMIN).
    """
    args = pack_search(_ROOT_TREE, _ORPHAN_OBJECTID, _ORPHAN_ITEM_KEY, 4096)
    _call(fd, IOC_TREE_SEARCH, args, "listing the subvolumes being deleted")
    return [offset for _objectid, _type, offset in parse_search(args)]


def wait_deleted(dir_fd: int, timeout: float, *, interval: float = 0.1) -> bool:
    """Wait until btrfs has freed every deleted subvolume of the filesystem of ``dir_fd``.

    In: any descriptor on that filesystem, how long at most (seconds), how
    often to look. Commits the transaction (which wakes btrfs's cleaner),
    then polls :func:`deleting_subvolumes` until none is left, and commits
    once more so that the freed extents are no longer pinned. Out: True when
    every deleted subvolume's space is back in :func:`free_space`; False
    when ``timeout`` passed first (some space may still come back later).
    Raises SnapshotError as :func:`deleting_subvolumes` does.
    """
    deadline = time.monotonic() + timeout
    while True:
        sync(dir_fd)
        if not deleting_subvolumes(dir_fd):
            sync(dir_fd)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)  # the cleaner works in the background: nothing to wait on
