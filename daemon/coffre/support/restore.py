"""Restoring paths of an archive into the share (or a folder), never over a file unasked.

One function for the daemon's restore job and for ``coffre recover`` on a
new box. borg extracts into a hidden staging folder beside the destination
(same filesystem: moving is a rename); only when every path asked came out
and nothing is in the way (or ``--overwrite``) is the staged tree moved into
place. So a missing path or a conflict writes nothing, and a restore costs
one borg run: no listing first (a listing reads every item of the archive,
as long as the extract itself).

Folders coffre creates (the destination, the parents of a file restored
alone) get the share's owner, group and mode: borg runs under the daemon's
umask 077 and SMB users could not open them otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coffre.borg import argv, parse
from coffre.borg.protocol import Borg
from coffre.borg.records import LogRecord, Progress
from coffre.core.errors import (
    BorgIntegrityError,
    BorgNoSpace,
    CoffreError,
    DestinationError,
    NotInArchive,
    WouldOverwrite,
)
from coffre.core.model import Item
from coffre.core.restore_plan import (
    RESTORE_FOLDER,
    STAGING_PREFIX,
    Wanted,
    describe_paths,
    destination,
)

# borg 1.4: "Include pattern 'srv/x' never matched." (msgid IncludePatternNeverMatchedWarning)
_NEVER_MATCHED = re.compile(r"Include pattern '(?:pp:)?(.*)' never matched")


@dataclass(frozen=True)
class RestoreReport:
    """What a restore wrote: where, the paths asked as written, how many files and bytes.

    ``warnings`` are borg's about the files written whole but whose extended
    attributes it could not set (a filesystem without them, say).
    """

    archive: str
    destinations: tuple[str, ...]
    written: tuple[str, ...]
    nfiles: int
    nbytes: int
    warnings: tuple[str, ...] = ()


async def list_items(borg: Borg, location: str, archive: str, stored: Sequence[str]) -> list[Item]:
    """The items of ``archive`` at or under the ``stored`` paths (all when empty)."""
    result = await borg.run(argv.list_contents(location, archive, stored))
    return parse.contents(result.stdout)


def unmatched(warnings: Sequence[LogRecord]) -> list[str]:
    """The stored paths borg says matched nothing in the archive (from its warnings)."""
    found = []
    for record in warnings:
        match = _NEVER_MATCHED.search(record.message)
        if match:
            found.append(match.group(1))
    return found


def not_extracted(warnings: Sequence[LogRecord]) -> list[LogRecord]:
    """borg's warnings about items it could not extract, or not whole.

    borg 1.4 goes on after such an item (its BackupError family: msgid
    ``BackupOSError`` for a failed write, ``BackupError`` for damaged chunks, and
    the refusals of unsafe paths) and leaves what it wrote of it, an empty or
    truncated file. Its other warnings (extended attributes not set) leave the
    content whole.
    """
    return [r for r in warnings if r.msgid.startswith("Backup")]


def incomplete(failed: Sequence[LogRecord], base: Path, archive: str, *, rc: int) -> CoffreError:
    """The error of a restore whose ``failed`` items did not come out whole into ``base``.

    A full destination is a DestinationError; another write failure there, a
    DestinationError too, naming the files; anything else (damaged chunks, unsafe
    paths in the archive) a BorgIntegrityError: another archive or target may hold it.
    """
    if any(_ENOSPC.search(r.message) for r in failed):
        return no_room(base)
    what = describe_paths([r.message for r in failed])
    if all(r.msgid == "BackupOSError" for r in failed):
        return DestinationError(
            f"cannot write the restore to {base}: {what}",
            hint="nothing was written; restore elsewhere with --to DIR",
        )
    return BorgIntegrityError(
        f"archive {archive} gave {len(failed)} damaged item(s): {what}",
        rc=rc,
        hint="nothing was written; try another --archive, --date or --target, "
        "and check this repository",
    )


def no_room(base: Path) -> DestinationError:
    """The error of a restore that filled the filesystem of ``base``."""
    return DestinationError(
        f"no space left where the restore goes ({base})",
        hint="nothing was written (what borg had written is removed); free space there, "
        "restore fewer paths, or restore elsewhere with --to DIR",
    )


def is_full(path: Path) -> bool:
    """True when the filesystem of ``path`` has (next to) no free block left, even for root."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bfree * st.f_frsize < FULL_BELOW


#: Free bytes under which a filesystem counts as full (borg writes a file in chunks
#: of up to 8 MiB: ENOSPC leaves at most that much free).
FULL_BELOW = 64 << 20

_ENOSPC = re.compile(r"\[Errno 28\]|No space left on device|\[Errno 122\]|Disk quota exceeded")


async def restore_archive(
    borg: Borg,
    location: str,
    archive: str,
    wanted: Sequence[Wanted],
    *,
    to: Path | None,
    overwrite: bool,
    on_progress: Callable[[Progress], None] | None = None,
    into_root: bool = False,
) -> RestoreReport:
    """Restore ``wanted`` of ``location::archive`` into ``to`` or each share's ``_restaurations``.

    ``into_root`` (``coffre recover`` on a new box, with ``to=None``) writes
    each path back into its own root (the share itself) instead.

    Returns what was written. ``on_progress`` is called for each item borg
    writes (``extract --list``; its ``message`` is the path). Raises NotInArchive
    (exit code 5) naming the paths the archive does not hold, WouldOverwrite
    (exit code 6) naming the files in the way unless ``overwrite``, and
    BorgError subclasses as borg fails; in each case the destination is left
    as it was. Raises OSError when the destination cannot be written, and
    ValueError for ``into_root`` with a ``to``.

    Long (115 lines) on purpose, for now: one try block holds every staging
    folder and every folder made, so that any failure, cancellation
    included, removes them all; issue 16 rewrites this function on
    directory fds, and a split now would move the cleanup's edges twice.
    """
    if into_root and to is not None:
        raise ValueError("restore_archive: into_root writes into each root, not into `to`")
    groups: dict[PurePosixPath, list[Wanted]] = {}
    for one in wanted:
        groups.setdefault(one.root, []).append(one)
    staged: list[_Staged] = []
    created: list[Path] = []
    notes: list[str] = []
    held = contextlib.ExitStack()
    try:
        for root, group in groups.items():
            if into_root:
                base = Path(root)
            else:
                base = Path(destination(root, archive, None if to is None else PurePosixPath(to)))
            like = Path(root) if to is None and not into_root else _existing_parent(base)
            if to is None:
                _refuse_links(Path(root), base)
            created += _make_dirs(base, like)
            staging = base / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
            _claim(staging, held)
            staged.append((staging, base, group, like))
            try:
                result = await borg.run(
                    argv.extract(
                        location,
                        archive,
                        [w.stored for w in group],
                        list_items=on_progress is not None,
                        strip_components=group[0].strip,
                    ),
                    cwd=staging,
                    on_progress=on_progress,
                )
            except BorgNoSpace as exc:
                # borg 1.4 aborts on ENOSPC in some of its writes (a file's last
                # truncate); it is the destination when the destination is full.
                if not is_full(base):
                    raise
                raise no_room(base) from exc
            absent = unmatched(result.warnings)
            if absent:
                raise NotInArchive(
                    f"not in archive {archive}: {describe_paths(['/' + p for p in absent])}",
                    hint="check the spelling with `coffre find NAME`, "
                    "or try another --date or --archive",
                )
            failed = not_extracted(result.warnings)
            if failed:
                raise incomplete(failed, base, archive, rc=result.rc)
            # What is left (nothing absent, nothing failed) left the files whole.
            notes += [r.message for r in result.warnings]
        # Walking and moving tens of thousands of files would stall the
        # daemon's loop (status, metrics, the watchdog): a thread does it.
        in_the_way = await asyncio.to_thread(_all_clashes, staged, overwrite)
        if in_the_way:
            raise WouldOverwrite(
                f"{len(in_the_way)} file(s) exist already: {describe_paths(in_the_way)}",
                hint="nothing was written; restore elsewhere with --to DIR, "
                "or replace them with --overwrite",
            )
        placing = asyncio.ensure_future(asyncio.to_thread(_place, staged))
        try:
            nfiles, nbytes, written = await asyncio.shield(placing)
        except asyncio.CancelledError:
            await placing  # a stop waits for the moves: half a restore helps nobody
            raise
    except BaseException:
        for staging, *_ in staged:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty: never what was there
        raise
    finally:
        held.close()
    for staging, *_ in staged:
        staging.rmdir()
    return RestoreReport(
        archive=archive,
        destinations=tuple(str(base) for _, base, _, _ in staged),
        written=tuple(written),
        nfiles=nfiles,
        nbytes=nbytes,
        warnings=tuple(notes),
    )


_Staged = tuple[Path, Path, list[Wanted], Path]


def _claim(staging: Path, held: contextlib.ExitStack) -> None:
    """Create ``staging`` and hold a lock on it until ``held`` closes.

    The lock tells :func:`remove_stale_staging` (the daemon's start) that the
    folder is in use (a ``coffre recover`` running beside it); the kernel drops
    it when the process dies, which is how a folder becomes stale.
    """
    staging.mkdir(mode=0o700)
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    held.callback(os.close, fd)
    fcntl.flock(fd, fcntl.LOCK_EX)


def remove_stale_staging(roots: Iterable[Path]) -> list[Path]:
    """Remove the staging folders restores cut short left in ``roots``.

    They are the ``.coffre-restauration-*`` folders in each root (``coffre
    recover``) and in its ``_restaurations/*/`` (the daemon's restores) that no
    live process holds (see :func:`_claim`): what borg had extracted when its
    daemon was killed. Returns those removed; one that cannot be removed stays,
    for the next start. Those of restores ``--to`` elsewhere are not looked for.
    """
    removed = []
    for root in roots:
        in_restaurations = [
            staging
            for staging in root.glob(f"{RESTORE_FOLDER}/*/{STAGING_PREFIX}*")
            # Never through a link someone made on the share (see _refuse_links).
            if not staging.parent.is_symlink() and not staging.parent.parent.is_symlink()
        ]
        for staging in [*root.glob(f"{STAGING_PREFIX}*"), *in_restaurations]:
            try:
                fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:
                continue  # not a folder, or a symbolic link: not ours
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(staging)
            except OSError:  # BlockingIOError: a restore holds it
                continue
            finally:
                os.close(fd)
            removed.append(staging)
            if staging.parent != root:
                with contextlib.suppress(OSError):
                    staging.parent.rmdir()  # the archive's folder, if the restore made it only
    return removed


def _all_clashes(staged: Sequence[_Staged], overwrite: bool) -> list[Path]:
    return [clash for staging, base, _, _ in staged for clash in _clashes(staging, base, overwrite)]


def _place(staged: Sequence[_Staged]) -> tuple[int, int, list[str]]:
    """Move each staged tree into place; (files, bytes, the paths asked as written)."""
    nfiles = nbytes = 0
    written: list[str] = []
    for staging, base, group, like in staged:
        files, size = _count(staging)
        nfiles, nbytes = nfiles + files, nbytes + size
        _adopt(list(_mere_parents(staging, group)), like)
        _move_into(staging, base)
        written += [str(base.joinpath(*_tail(w))) for w in group]
    return nfiles, nbytes, written


def _tail(wanted: Wanted) -> tuple[str, ...]:
    """The parts of ``wanted``'s path left after the share's folders are stripped."""
    return PurePosixPath(wanted.stored).parts[wanted.strip :]


def _refuse_links(root: Path, base: Path) -> None:
    """Raise DestinationError when a folder between ``root`` and ``base`` is a symbolic link.

    The share is written by the practice's workstations: a link named
    ``_restaurations`` (ransomware, a mistake) would have the daemon, as root,
    write where the link points. ``--to`` is support's own choice: not checked.
    """
    probe = root
    for part in base.relative_to(root).parts:
        probe = probe / part
        if probe.is_symlink():
            raise DestinationError(
                f"{probe} is a symbolic link: a restore never writes through one",
                hint="nothing was written; see who made it on the share and remove it, "
                "or restore elsewhere with --to DIR",
            )


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _make_dirs(base: Path, like: Path) -> list[Path]:
    """Create ``base`` and its missing parents like ``like``; return them, outermost first."""
    created = []
    probe = base
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    created.reverse()
    for folder in created:
        folder.mkdir(mode=0o700)
    _adopt(created, like)
    return created


def _mere_parents(staging: Path, group: Sequence[Wanted]) -> Iterator[Path]:
    """Folders borg made only to hold a path asked (not archived items): adopt them."""
    for one in group:
        parts = _tail(one)
        for depth in range(1, len(parts)):
            yield staging.joinpath(*parts[:depth])


def _adopt(folders: Sequence[Path], like: Path) -> None:
    """Give ``folders`` the owner, group and mode of ``like`` (the share: setgid, group rw)."""
    model = like.stat()
    for folder in folders:
        if folder.is_dir() and not folder.is_symlink():
            os.chown(folder, model.st_uid, model.st_gid)
            folder.chmod(stat.S_IMODE(model.st_mode))


def _clashes(staging: Path, base: Path, overwrite: bool) -> list[Path]:
    """What moving ``staging``'s tree into ``base`` would replace (folders merge).

    With ``overwrite``, a file may replace a file; a folder and a file in
    each other's place are still refused: replacing would drop a whole tree.
    """
    found: list[Path] = []
    for entry in os.scandir(staging):
        there = base / entry.name
        try:
            mode = there.lstat().st_mode
        except FileNotFoundError:
            continue
        ours_is_dir = entry.is_dir(follow_symlinks=False)
        if ours_is_dir and stat.S_ISDIR(mode):
            found += _clashes(Path(entry.path), there, overwrite)
        elif not overwrite or ours_is_dir or stat.S_ISDIR(mode):
            found.append(there)
    return found


def _move_into(staging: Path, base: Path) -> None:
    """Move every entry of ``staging`` into ``base``: rename, or merge into a folder there."""
    for entry in os.scandir(staging):
        there = base / entry.name
        if entry.is_dir(follow_symlinks=False) and there.is_dir() and not there.is_symlink():
            _move_into(Path(entry.path), there)
            Path(entry.path).rmdir()
        else:
            # A file in the way was allowed by --overwrite (checked by _clashes).
            Path(entry.path).replace(there)


def _count(tree: Path) -> tuple[int, int]:
    """(regular files, their bytes) under ``tree`` (os.scandir: its entries carry their type)."""
    files = size = 0
    folders = [str(tree)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    size += entry.stat(follow_symlinks=False).st_size
    return files, size
