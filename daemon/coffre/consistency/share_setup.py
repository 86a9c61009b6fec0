"""``coffre share setup``: each source path made a btrfs subvolume, with its Previous Versions
folder and the backups' views folder beside it (coffre.consistency.share_layout).

Run by root on the box, without the daemon. Every path is read first
(:func:`read_facts`) and planned (share_layout.plan_share): one refusal and
nothing at all is touched. Then the steps run (:func:`apply_plan`), by
descriptors of the share's parent (root's folder) with ``O_NOFOLLOW``, so a
link put where a layout folder goes is refused, never followed. The share's
own content is only read by ``cp -a --reflink=always`` for a conversion,
root's copy into a new subvolume it then swaps into place.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import PurePosixPath

from coffre.consistency.layout import FOLDER, VIEWS
from coffre.consistency.share_layout import (
    NEW_SUFFIX,
    OLD_SUFFIX,
    SHARE_GROUP,
    Action,
    Found,
    ShareFacts,
    SharePlan,
    Step,
    plan_share,
    refuse_conversion_while_served,
    smb_connections,
)
from coffre.core.errors import SnapshotError
from coffre.core.printable import controls_escaped
from coffre.storage import btrfs, dirfd

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def plan_all(paths: Sequence[PurePosixPath], *, convert: bool) -> list[SharePlan]:
    """The plan of every source path, or the first refusal.

    In: absolute source paths. Out: their plans, in order. Raises
    SnapshotError (share_layout.plan_share's refusals; OSError while reading
    is turned into one; a conversion while ``smbstatus`` shows workstations
    connected), before anything is changed.
    """
    plans = []
    for path in paths:
        try:
            facts = read_facts(path)
        except OSError as error:
            raise SnapshotError(
                f"{controls_escaped(str(path))}: cannot be read ({error.strerror})",
                hint="run `coffre share setup` as root",
            ) from error
        plans.append(plan_share(facts, convert=convert))
    if any(plan.converts for plan in plans):
        refuse_conversion_while_served(plans, _smb_connections())
    return plans


def _smb_connections() -> int | None:
    """The tree connects smbd has now (``smbstatus --json``); None when it cannot tell."""
    if shutil.which("smbstatus") is None:
        return None
    try:
        said = subprocess.run(
            ["smbstatus", "--json"], capture_output=True, text=True, timeout=30, check=False
        )
        return smb_connections(said.stdout) if said.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def read_facts(path: PurePosixPath) -> ShareFacts:
    """What is at and around the source ``path`` (see share_layout.ShareFacts).

    Reads only: lstat, listing, fstatfs, the btrfs filesystem id. Raises
    OSError when the parent or the share cannot be opened or read.
    """
    parent_found = _found_path(path.parent)
    if parent_found in (Found.MISSING, Found.LINK, Found.OTHER):
        nothing = Found.MISSING
        return ShareFacts(path, parent_found, False, False, nothing, nothing, nothing, nothing)
    with dirfd.opened(os.open(path.parent, _OPEN_DIR)) as parent:
        share = _found(parent, path.name)
        on_btrfs, same = _filesystems(parent, path.name, share)
        root = _found(parent, FOLDER)
        inside = (Found.MISSING, Found.MISSING)
        if root in (Found.FOLDER, Found.EMPTY_FOLDER, Found.SUBVOLUME):
            with dirfd.opened(os.open(FOLDER, _OPEN_DIR, dir_fd=parent)) as versions:
                inside = (_found(versions, path.name), _found(versions, VIEWS))
        leftovers = tuple(
            path.name + suffix
            for suffix in (OLD_SUFFIX, NEW_SUFFIX)
            if _found(parent, path.name + suffix) is not Found.MISSING
        )
    return ShareFacts(path, parent_found, on_btrfs, same, share, root, *inside, leftovers)


def _found_path(path: PurePosixPath) -> Found:
    """What the absolute ``path`` is (its last component not followed)."""
    return _found(os.open(path.parent, _OPEN_DIR), path.name, close=True)


def _found(dir_fd: int, name: str, *, close: bool = False) -> Found:
    """What the entry ``name`` of ``dir_fd`` is; closes ``dir_fd`` after when ``close``."""
    try:
        mode = os.lstat(name, dir_fd=dir_fd).st_mode
        if stat.S_ISLNK(mode):
            return Found.LINK
        if not stat.S_ISDIR(mode):
            return Found.OTHER
        with dirfd.opened(os.open(name, _OPEN_DIR, dir_fd=dir_fd)) as fd:
            if btrfs.is_subvolume(fd):
                return Found.SUBVOLUME
            with os.scandir(fd) as entries:
                return Found.EMPTY_FOLDER if next(entries, None) is None else Found.FOLDER
    except FileNotFoundError:
        return Found.MISSING
    finally:
        if close:
            os.close(dir_fd)


def _filesystems(parent: int, name: str, share: Found) -> tuple[bool, bool]:
    """(is the share on btrfs, is its parent on that same btrfs filesystem)."""
    if share in (Found.MISSING, Found.LINK, Found.OTHER):
        on_btrfs = btrfs.is_btrfs(parent)
        return on_btrfs, on_btrfs
    with dirfd.opened(os.open(name, _OPEN_DIR, dir_fd=parent)) as fd:
        if not btrfs.is_btrfs(fd):
            return False, False
        same = btrfs.is_btrfs(parent) and (btrfs.filesystem_id(parent) == btrfs.filesystem_id(fd))
        return True, same


def apply_plan(plan: SharePlan) -> list[str]:
    """Run the steps of ``plan``, in order; out: one line said for each.

    Raises SnapshotError: from the btrfs calls, for a failed conversion copy
    (its half-filled subvolume removed), and for any OSError of a step (a
    folder made or set, a rename), naming the step; the steps done before
    stay done.
    """
    said = []
    with dirfd.opened(os.open(plan.path.parent, _OPEN_DIR)) as parent:
        for step in plan.steps:
            try:
                _run_step(parent, step.path.relative_to(plan.path.parent).parts, step)
            except OSError as error:
                raise SnapshotError(
                    f"{step}: {error.strerror or error}; the steps before it are done",
                    hint="fix what it says, then run `coffre share setup` again",
                ) from error
            said.append(str(step))
    return said


def _run_step(parent: int, names: tuple[str, ...], step: Step) -> None:
    """One step, by descriptors of the share's parent folder ``parent``.

    ``names``: the step's path from that folder.
    """
    name = step.path.name
    if step.action is Action.KEEP_SUBVOLUME:
        return
    if step.action is Action.CREATE_SUBVOLUME:
        btrfs.create_subvolume(parent, name)
        _set(parent, name, 0, _share_gid(), step.mode or 0)
    elif step.action is Action.REPLACE_EMPTY:
        before = os.lstat(name, dir_fd=parent)
        os.rmdir(name, dir_fd=parent)  # ENOTEMPTY if a file came meanwhile: nothing lost
        btrfs.create_subvolume(parent, name)
        _set(parent, name, before.st_uid, before.st_gid, stat.S_IMODE(before.st_mode))
    elif step.action is Action.CONVERT:
        _convert(parent, step.path)
    else:
        _layout_folder(parent, names, step)


def _layout_folder(parent: int, names: tuple[str, ...], step: Step) -> None:
    """Make (or set right) a layout folder: root's, ``step.mode``, never through a link.

    ``names``: its path from the share's parent folder ``parent``.
    """
    anchor = PurePosixPath(step.path.parents[len(names) - 1])
    holder, _ = dirfd.walk_open(parent, names[:-1], shown=anchor)
    with dirfd.opened(holder):
        if step.action is Action.MAKE_FOLDER:
            os.mkdir(names[-1], 0o700, dir_fd=holder)
        _set(holder, names[-1], 0, 0, step.mode or 0)


def _set(dir_fd: int, name: str, uid: int, gid: int, mode: int) -> None:
    """Owner and mode of the folder ``name`` of ``dir_fd``, through its descriptor."""
    with dirfd.opened(os.open(name, _OPEN_DIR, dir_fd=dir_fd)) as fd:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # after chown, which clears the set-group-ID bit


def _share_gid() -> int:
    """The share's group as the package makes it: coffre-partage, else root's."""
    try:
        return grp.getgrnam(SHARE_GROUP).gr_gid
    except KeyError:
        return 0


def _convert(parent: int, path: PurePosixPath) -> None:
    """Copy the folder ``path`` into a new subvolume with reflinks, then swap them.

    The old folder is left as ``<name>.avant-coffre``. Raises SnapshotError
    when the copy fails (the new subvolume removed), OSError on a rename.
    """
    name, new, old = path.name, path.name + NEW_SUFFIX, path.name + OLD_SUFFIX
    before = os.lstat(name, dir_fd=parent)
    btrfs.create_subvolume(parent, new)
    _set(parent, new, before.st_uid, before.st_gid, stat.S_IMODE(before.st_mode))
    source, target = f"{path}/.", str(path.parent / new)
    copy = subprocess.run(
        ["cp", "-a", "--reflink=always", "--", source, target],
        capture_output=True,
        text=True,
        check=False,
    )
    if copy.returncode != 0:
        btrfs.delete_subvolume(parent, new)
        raise SnapshotError(
            f"{controls_escaped(str(path))}: the reflink copy failed "
            f"({controls_escaped(copy.stderr.strip()[-300:])}); nothing changed",
            hint="check the filesystem (`btrfs filesystem usage`), then run it again",
        )
    dirfd.rename(parent, name, parent, old, dirfd.NOREPLACE)
    dirfd.rename(parent, new, parent, name, dirfd.NOREPLACE)
