"""Disaster recovery: a new box gets the practice's data back from an offsite host.

After a fire or a theft, all that is left is the offsite repository (Borg over
SSH, ``borg serve --append-only`` on the HDS host), the passphrase and the
paper key. ``coffre recover`` (:mod:`coffre.cli.recover`) runs these steps in
the CLI process, without the daemon and without trusting anything of a
previous box, one module each:

1. :mod:`~coffre.recovery.inputs`: the flags, the passphrase file and the
   paper key are read and checked line by line before any network;
2. :mod:`~coffre.recovery.host`: the host key the HDS host shows must have
   the fingerprint its operator gave (nothing of ours is sent before; never
   trust on first use), then borg's ssh is pinned to it;
3. :mod:`~coffre.recovery.repository`: the repository's key is read, the
   paper key must be its key, the paper key is imported when the
   repository's key is missing or unreadable, the archives are listed;
4. :mod:`~coffre.recovery.plan`: the archive asked (default the latest
   complete one), and where each of its paths goes;
5. here, :func:`recover`: the archive restored with
   :func:`coffre.support.restore.restore_archive`, as the plan says.

Everything borg keeps (security dir, cache, and the key of a ``keyfile``
repository) lives in a private temporary directory given by the caller, so
nothing of a previous box is used and nothing is left behind.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coffre.borg.protocol import Borg
from coffre.borg.records import Progress
from coffre.core import restore_plan
from coffre.core.errors import WouldOverwrite
from coffre.core.model import Archive
from coffre.recovery.plan import Plan, archive_roots, in_the_way, plan
from coffre.storage.staging_mark import StagingMark
from coffre.support.restore import RestoreReport, list_items, restore_archive

__all__ = ["Recovered", "recover"]


@dataclass(frozen=True)
class Recovered:
    """A recovery done: from which archive, and what :func:`restore_archive` wrote."""

    archive: Archive
    roots: tuple[PurePosixPath, ...]
    plan: Plan
    report: RestoreReport


async def recover(
    borg: Borg,
    location: str,
    archive: Archive,
    asked: Sequence[str],
    *,
    to: Path | None,
    share_paths: Sequence[Path],
    overwrite: bool,
    mark: StagingMark,
    on_progress: Callable[[Progress], None] | None = None,
) -> Recovered:
    """Restore ``asked`` (everything when empty) of ``archive`` where :func:`plan` says.

    The archive is listed once to find its roots (the old box's source
    paths, unknown on a new box), and to refuse at once, without
    ``overwrite``, what would replace files. ``mark`` tags the staging
    folders (see :mod:`coffre.support.staging`). Raises UsageError as
    :func:`plan` does, WouldOverwrite (nothing written), and what
    :func:`coffre.support.restore.restore_archive` raises: NotInArchive,
    WouldOverwrite, BorgError, OSError.
    """
    items = await list_items(borg, location, archive.name, ())
    roots = archive_roots(items)
    chosen = plan(roots, asked, to=to, share_paths=share_paths)
    clashes = [] if overwrite else in_the_way(items, chosen, _exists)
    if clashes:
        raise WouldOverwrite(
            f"{len(clashes)} file(s) exist already: {restore_plan.describe_paths(clashes)}",
            hint="nothing was written; recover elsewhere with --to DIR, "
            "or replace them with --overwrite",
        )
    report = await restore_archive(
        borg,
        location,
        archive.name,
        chosen.wanted,
        to=None if chosen.into_root else chosen.to,
        overwrite=overwrite,
        mark=mark,
        on_progress=on_progress,
        into_root=chosen.into_root,
    )
    return Recovered(archive=archive, roots=tuple(roots), plan=chosen, report=report)


def _exists(path: PurePosixPath) -> str | None:
    """What is at ``path``: None, ``"d"`` (a folder) or ``"-"`` (anything else, links too)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return "d" if stat.S_ISDIR(mode) else "-"
