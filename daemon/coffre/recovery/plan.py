"""What the recovery restores, and where: pure decisions from the archive list and listing.

A new box does not know the old box's configuration: the archive to take is
any coffre archive (:func:`choose_archive`, whatever its prefix), the old
box's source paths are the archive's roots (:func:`archive_roots`), and where
each goes comes from ``--to`` or the new box's configuration (:func:`plan`).
:func:`in_the_way` finds, from the listing alone, the files a recovery would
replace, before borg downloads anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from coffre.core import restore_plan
from coffre.core.errors import UsageError
from coffre.core.model import Archive, Item
from coffre.core.restore_plan import Wanted

__all__ = ["Plan", "archive_roots", "choose_archive", "in_the_way", "plan"]

# A coffre archive name: "<prefix>-<local date and time>", "-N" when made twice in a second.
_COFFRE_NAME = re.compile(r"(?P<prefix>.+)-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:-\d+)?")


def choose_archive(
    archives: Sequence[Archive], *, name: str | None, day: date | None, tz: ZoneInfo
) -> Archive:
    """The archive asked: by ``name``, else the latest complete one (of ``day`` when given).

    The old box's archive prefix is not known on a new box (it defaults to
    the hostname): every coffre archive (``<prefix>-<date>T<time>``) counts,
    whatever its prefix. Raises UsageError saying what the repository holds
    when there is no such archive.
    """
    prefixes = sorted({m["prefix"] for a in archives if (m := _COFFRE_NAME.fullmatch(a.name))})
    if name is not None:
        prefixes = prefixes or [""]
    picks = [
        pick
        for prefix in prefixes
        if (pick := restore_plan.pick_archive(archives, prefix, name=name, day=day, tz=tz))
    ]
    if picks:
        return max(picks)
    what = (
        f"no archive named {name}"
        if name is not None
        else f"no complete archive of {day.isoformat()}"
        if day is not None
        else "no complete archive"
    )
    return _none(what, archives, tz)


def _none(what: str, archives: Sequence[Archive], tz: ZoneInfo) -> Archive:
    latest = sorted(archives)[-3:]
    shown = ", ".join(f"{a.name} ({a.time.astimezone(tz):%Y-%m-%d %H:%M})" for a in latest)
    raise UsageError(
        f"the repository holds {what}"
        + (f" (the latest: {shown})" if shown else " (it holds no archive at all)"),
        hint="see them all with --list",
    )


def archive_roots(items: Sequence[Item]) -> list[PurePosixPath]:
    """The paths the old box backed up: the archive's items no other item contains.

    ``borg create /srv/coffre/partage`` stores ``srv/coffre/partage`` and what
    is under it, not ``srv`` nor ``srv/coffre``: the items without an
    archived parent are the old box's ``[source] paths``, in borg's order
    (the order of the configuration). Returned absolute.
    """
    present = {item.path for item in items}
    roots: list[PurePosixPath] = []
    for item in items:
        path = PurePosixPath(item.path)
        if not any(str(parent) in present for parent in path.parents):
            root = PurePosixPath("/") / path
            if root not in roots:
                roots.append(root)
    return roots


@dataclass(frozen=True)
class Plan:
    """What to restore (``wanted``) and where: into ``to``, or each root into itself."""

    wanted: tuple[Wanted, ...]
    to: Path | None
    into_root: bool


def plan(
    roots: Sequence[PurePosixPath],
    asked: Sequence[str],
    *,
    to: Path | None,
    share_paths: Sequence[Path],
) -> Plan:
    """Where the recovery writes, from the archive's ``roots`` and the new box's configuration.

    ``asked``: the paths given (relative to the first root, or absolute;
    none: everything). ``to``: ``--to``. ``share_paths``: the ``[source]
    paths`` of the new box's configuration (empty when there is none).

    - With ``to``: the paths land in it with the share's folders stripped
      (``/srv/coffre/partage/Patients/x`` -> ``TO/Patients/x``); with
      several roots each keeps its whole path instead (``TO/srv/a/...``),
      so that two roots never mix.
    - Without: a root the configuration backs up goes back into itself;
      the one root of an archive whose path the new configuration does not
      back up goes into the configuration's share (the share moved).

    Raises UsageError for a path outside the roots, and when nothing says
    where to write (no ``to`` and no configuration, or several roots the
    configuration does not know).
    """
    if not roots:
        raise UsageError("the archive is empty: there is nothing to recover")
    wanted = (
        [restore_plan.resolve(path, roots) for path in asked]
        if asked
        else [Wanted(root=root, stored=str(root)[1:]) for root in roots]
    )
    if to is not None:
        if len(roots) > 1:
            whole = PurePosixPath("/")  # strip nothing: Wanted.strip is then 0
            wanted = [Wanted(root=whole, stored=w.stored) for w in wanted]
        return Plan(tuple(wanted), to=to, into_root=False)
    shown = ", ".join(str(r) for r in roots)
    if not share_paths:
        raise UsageError(
            "no configuration says where the share is: give --to",
            hint=f"the archive holds {shown}; e.g. --to /srv/coffre/partage (the share of a new "
            "box) or --to /root/recovered to look first",
        )
    shares = {PurePosixPath(p) for p in share_paths}
    used = {w.root for w in wanted}
    if used <= shares:
        if len(used) == 1:
            return Plan(tuple(wanted), to=Path(next(iter(used))), into_root=False)
        return Plan(tuple(wanted), to=None, into_root=True)
    if len(roots) == 1:
        return Plan(tuple(wanted), to=share_paths[0], into_root=False)
    raise UsageError(
        f"the archive holds {shown}, which the configuration does not all back up "
        f"({', '.join(str(p) for p in share_paths)})",
        hint="give --to DIR: each path is then restored under DIR with its whole path",
    )


def in_the_way(
    items: Sequence[Item],
    chosen: Plan,
    exists: Callable[[PurePosixPath], str | None],
) -> list[PurePosixPath]:
    """The places the recovery would write that something already holds (folders merge).

    ``exists(path)`` says what is there: None, ``"d"`` (a folder) or ``"-"``
    (anything else). Pure, from the listing: the recovery refuses before
    borg downloads anything, where ``restore_archive`` would find the same
    clashes only after extracting the whole archive into its staging folder.
    """
    found = []
    for item in items:
        owner = next((w for w in chosen.wanted if _under(item.path, w.stored)), None)
        if owner is None:
            continue
        parts = PurePosixPath(item.path).parts[owner.strip :]
        if not parts:
            continue  # the root itself: never written, its place is the destination
        base = owner.root if chosen.into_root else PurePosixPath(chosen.to or owner.root)
        place = base.joinpath(*parts)
        there = exists(place)
        if there is None or (there == "d" and item.kind == "d"):
            continue
        found.append(place)
    return found


def _under(item_path: str, stored: str) -> bool:
    return item_path == stored or item_path.startswith(stored.rstrip("/") + "/")
