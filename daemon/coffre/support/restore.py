"""Restoring paths of an archive into the share (or a folder), never over a file unasked.

One function for the daemon's restore job and for ``coffre recover`` on a
new box. borg extracts into a hidden staging folder inside the destination
(same filesystem: moving is a rename; see :mod:`coffre.support.staging`);
only when every path asked came out and nothing is in the way (or
``--overwrite``) is the staged tree moved into place
(:mod:`coffre.support.placement`). So a missing path or a conflict writes
nothing, and a restore costs one borg run: no listing first (a listing reads
every item of the archive, as long as the extract itself).

The destination is reached from one descriptor, opened once: the share root
(the configuration's path) when the destination lies in it, ``/`` otherwise,
then folder by folder with ``O_NOFOLLOW``. A symbolic link met anywhere on
the way, or later while placing, is refused and named: the share's users
can make links, and root must never write where one points. borg itself
works in the staging folder through ``/proc/<pid>/fd/<n>``, which names that
folder wherever the share's users move its parents.

Folders coffre creates (the destination, the parents of a file restored
alone) get the owner, group and mode of the share (or of the folder they are
made in): borg runs under the daemon's umask 077 and SMB users could not
open them otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Sequence
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
from coffre.core.printable import controls_escaped
from coffre.core.restore_plan import Wanted, describe_paths, destination
from coffre.storage.dirfd import LinkInTheWay, NotAFolder, count_tree, proc_path, walk_open
from coffre.storage.staging_mark import StagingMark
from coffre.support.placement import Destination, adopt, adopt_below, clashes, place
from coffre.support.staging import Staging, claim, discard

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
            f"cannot write the restore to {controls_escaped(str(base))}: {what}",
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
        f"no space left where the restore goes ({controls_escaped(str(base))})",
        hint="nothing was written (what borg had written is removed); free space there, "
        "restore fewer paths, or restore elsewhere with --to DIR",
    )


def is_full(where: Path | int) -> bool:
    """True when the filesystem of ``where`` (a path or a descriptor) has next to no free block."""
    try:
        st = os.statvfs(where)
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
    mark: StagingMark,
    on_progress: Callable[[Progress], None] | None = None,
    into_root: bool = False,
) -> RestoreReport:
    """Restore ``wanted`` of ``location::archive`` into ``to`` or each share's ``_restaurations``.

    ``into_root`` (``coffre recover`` on a new box, with ``to=None``) writes
    each path back into its own root (the share itself) instead. ``mark``
    tags the staging folders (see :mod:`coffre.support.staging`).

    Returns what was written. ``on_progress`` is called for each item borg
    writes (``extract --list``; its ``message`` is the path). Raises NotInArchive
    (exit code 5) naming the paths the archive does not hold, WouldOverwrite
    (exit code 6) naming the files in the way unless ``overwrite``,
    DestinationError naming a symbolic link (or a file) met where a folder
    was to be walked through, and BorgError subclasses as borg fails; in
    each case the destination is left as it was. Raises OSError when the
    destination cannot be written, and ValueError for ``into_root`` with a ``to``.
    """
    if into_root and to is not None:
        raise ValueError("restore_archive: into_root writes into each root, not into `to`")
    groups: dict[PurePosixPath, list[Wanted]] = {}
    for one in wanted:
        groups.setdefault(one.root, []).append(one)
    try:
        return await _restore_groups(
            borg, location, archive, groups, to, overwrite, mark, on_progress, into_root
        )
    except LinkInTheWay as exc:
        raise DestinationError(
            f"{controls_escaped(str(exc.filename))} is {exc.strerror}: "
            "a restore never writes through one"
            + "".join(f"; {note}" for note in getattr(exc, "__notes__", ())),
            hint="nothing was written; see who made it and remove it, "
            "or restore elsewhere with --to DIR (a real folder, no link on its way)",
        ) from exc
    except NotAFolder as exc:
        raise DestinationError(
            f"{controls_escaped(str(exc.filename))} is a file, not a folder: "
            "the restore cannot go through it",
            hint="nothing was written; restore elsewhere with --to DIR",
        ) from exc


@dataclass(frozen=True)
class _Prepared:
    """A group's destination, its staging folder, what it asked and whose look folders take."""

    into: Destination
    staging: Staging
    group: list[Wanted]
    like: os.stat_result


async def _restore_groups(
    borg: Borg,
    location: str,
    archive: str,
    groups: dict[PurePosixPath, list[Wanted]],
    to: Path | None,
    overwrite: bool,
    mark: StagingMark,
    on_progress: Callable[[Progress], None] | None,
    into_root: bool,
) -> RestoreReport:
    """:func:`restore_archive` once its arguments are checked; raises as it does, links included.

    One ExitStack holds every descriptor, and one except clause removes every
    staging folder and every folder made, so that any failure, cancellation
    included, leaves the destinations as they were.
    """
    prepared: list[_Prepared] = []
    made: list[tuple[int, str]] = []
    notes: list[str] = []
    with contextlib.ExitStack() as held:
        try:
            for root, group in groups.items():
                base = root if into_root else destination(root, archive, _absolute(to))
                into, like = _open_destination(
                    root, base, fresh=to is None and not into_root, held=held, made=made
                )
                one = _Prepared(into, claim(into.fd, into.shown, mark, held), group, like)
                prepared.append(one)
                notes += await _extract(borg, location, archive, one, on_progress)
            done = await _placed(prepared, overwrite)
        except BaseException:
            for one in prepared:
                with contextlib.suppress(OSError):
                    discard(one.staging)
            for parent_fd, name in reversed(made):
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=parent_fd)  # only if still empty: never what was there
            raise
        for one in prepared:
            with contextlib.suppress(OSError):  # tagged: the next start removes it
                discard(one.staging)
    nfiles, nbytes, written = done
    return RestoreReport(
        archive=archive,
        destinations=tuple(str(one.into.shown) for one in prepared),
        written=tuple(written),
        nfiles=nfiles,
        nbytes=nbytes,
        warnings=tuple(notes),
    )


def _absolute(to: Path | None) -> PurePosixPath | None:
    """``to`` made absolute, ``..`` resolved by name (links are refused on the way anyway)."""
    if to is None:
        return None
    return PurePosixPath(os.path.normpath(to if to.is_absolute() else Path.cwd() / to))


def _open_destination(
    root: PurePosixPath,
    base: PurePosixPath,
    *,
    fresh: bool,
    held: contextlib.ExitStack,
    made: list[tuple[int, str]],
) -> tuple[Destination, os.stat_result]:
    """The folder ``base``, opened (and made) from ``root`` or ``/``; and whose look it takes.

    Folders made get, by descriptor, the look of ``root`` when ``fresh`` (the
    share's ``_restaurations``), else of the folder they are made in. Each
    made folder is added to ``made`` (its parent's descriptor and its name),
    every descriptor to ``held``. Raises LinkInTheWay, NotAFolder, OSError.
    """
    anchor = root if base == root or root in base.parents else PurePosixPath("/")
    with contextlib.ExitStack() as anchor_held:
        anchor_fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        anchor_held.callback(os.close, anchor_fd)
        fd, created = walk_open(
            anchor_fd, base.relative_to(anchor).parts, shown=anchor, create=True
        )
        look = os.fstat(anchor_fd) if fresh else None
    held.callback(os.close, fd)
    for parent_fd, _ in created:
        held.callback(os.close, parent_fd)
    made += created
    if look is None:
        look = os.fstat(created[0][0]) if created else os.fstat(fd)
    for depth, (parent_fd, name) in enumerate(created, start=len(base.parts) - len(created)):
        adopt(parent_fd, name, look, shown=PurePosixPath(*base.parts[: depth + 1]))
    return Destination(fd, base), look


async def _extract(
    borg: Borg,
    location: str,
    archive: str,
    one: _Prepared,
    on_progress: Callable[[Progress], None] | None,
) -> list[str]:
    """Extract ``one``'s paths into its staging tree; borg's notes about files written whole.

    Raises NotInArchive, the errors of :func:`incomplete` and :func:`no_room`,
    and BorgError subclasses.
    """
    group, base = one.group, Path(one.into.shown)
    try:
        result = await borg.run(
            argv.extract(
                location,
                archive,
                [w.stored for w in group],
                list_items=on_progress is not None,
                strip_components=group[0].strip,
            ),
            cwd=Path(proc_path(one.staging.tree_fd)),
            on_progress=on_progress,
        )
    except BorgNoSpace as exc:
        # borg 1.4 aborts on ENOSPC in some of its writes (a file's last
        # truncate); it is the destination when the destination is full.
        if not is_full(one.into.fd):
            raise
        raise no_room(base) from exc
    absent = unmatched(result.warnings)
    if absent:
        raise NotInArchive(
            f"not in archive {archive}: {describe_paths(['/' + p for p in absent])}",
            hint="check the spelling with `coffre find NAME`, or try another --date or --archive",
        )
    failed = not_extracted(result.warnings)
    if failed:
        raise incomplete(failed, base, archive, rc=result.rc)
    # What is left (nothing absent, nothing failed) left the files whole.
    return [r.message for r in result.warnings]


async def _placed(prepared: Sequence[_Prepared], overwrite: bool) -> tuple[int, int, list[str]]:
    """Check every destination, then move every staged tree into place; (files, bytes, paths).

    Walking and moving tens of thousands of files would stall the daemon's
    loop (status, metrics, the watchdog): a thread does it. A stop waits for
    the moves: half a restore helps nobody. Raises WouldOverwrite (nothing
    moved) and what :func:`~coffre.support.placement.place` raises.
    """
    in_the_way = await asyncio.to_thread(_all_clashes, prepared, overwrite)
    if in_the_way:
        raise WouldOverwrite(
            f"{len(in_the_way)} file(s) exist already: {describe_paths(in_the_way)}",
            hint="nothing was written; restore elsewhere with --to DIR, "
            "or replace them with --overwrite",
        )
    placing = asyncio.ensure_future(asyncio.to_thread(_place, prepared, overwrite))
    try:
        return await asyncio.shield(placing)
    except asyncio.CancelledError:
        await placing
        raise


def _all_clashes(prepared: Sequence[_Prepared], overwrite: bool) -> list[PurePosixPath]:
    return [c for one in prepared for c in clashes(one.staging.tree_fd, one.into, overwrite)]


def _place(prepared: Sequence[_Prepared], overwrite: bool) -> tuple[int, int, list[str]]:
    """Move each staged tree into place; (files, bytes, the paths asked as written)."""
    nfiles = nbytes = 0
    written: list[str] = []
    for one in prepared:
        files, size = count_tree(one.staging.tree_fd)
        nfiles, nbytes = nfiles + files, nbytes + size
        for asked in one.group:
            adopt_below(one.staging.tree_fd, _tail(asked), one.like)
        place(one.staging.tree_fd, one.into, overwrite)
        written += [str(one.into.shown.joinpath(*_tail(w))) for w in one.group]
    return nfiles, nbytes, written


def _tail(wanted: Wanted) -> tuple[str, ...]:
    """The parts of ``wanted``'s path left after the share's folders are stripped."""
    return PurePosixPath(wanted.stored).parts[wanted.strip :]
