"""What ``coffre share setup`` does to one source path, decided from what is there (pure).

For a source path P on btrfs the agreed layout is: P a subvolume; beside it,
in P's parent (root's, on the same btrfs filesystem), ``.coffre-versions``
(root, 0755) holding P's Previous Versions folder ``.coffre-versions/<name
of P>`` (root, 0755: Samba's ``shadow:snapdir``) and the backup views folder
``.coffre-versions/.vues`` (root, 0700). :func:`plan_share` turns the facts
:mod:`coffre.consistency.share_setup` read into the steps that reach it, or
refuses (SnapshotError) before anything is touched.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from coffre.consistency.layout import versions_folder, versions_root, views_folder
from coffre.core.errors import SnapshotError
from coffre.core.printable import controls_escaped

OLD_SUFFIX: Final = ".avant-coffre"  # the folder a conversion leaves, for a person to check
NEW_SUFFIX: Final = ".coffre-nouveau"  # the subvolume a conversion fills before the swap
SHARE_MODE: Final = 0o2770  # as packaging/debian/postinst makes the share
VERSIONS_MODE: Final = 0o755  # smbd, as the workstation's user, reads the Previous Versions
VIEWS_MODE: Final = 0o700  # the backups' views: root's alone
SHARE_GROUP: Final = "coffre-partage"

NOT_BTRFS_WARNING: Final = (
    "{path} is not on btrfs: the box takes no snapshots of it. Backups wait for a quiet "
    "moment instead, and a file written while borg reads it may be backed up torn; the "
    "practice gets no Previous Versions in Windows. To have both, put the share on a "
    "btrfs data volume (mkfs.btrfs, mounted at its parent folder) and run "
    "`coffre share setup` again."
)


class Found(enum.Enum):
    """What a name holds: nothing, a subvolume, a folder (empty or not), a link, another file."""

    MISSING = "missing"
    SUBVOLUME = "subvolume"
    EMPTY_FOLDER = "empty folder"
    FOLDER = "folder"
    LINK = "symbolic link"
    OTHER = "not a folder"


class Action(enum.Enum):
    """One step of a set-up."""

    KEEP_SUBVOLUME = "keep the subvolume"
    CREATE_SUBVOLUME = "create the subvolume"
    REPLACE_EMPTY = "replace the empty folder by a subvolume (same owner, group, mode)"
    CONVERT = "convert the folder into a subvolume (reflink copy; the old folder kept)"
    MAKE_FOLDER = "create the folder"
    FIX_FOLDER = "keep the folder (owner root, mode set)"


@dataclass(frozen=True)
class ShareFacts:
    """What :mod:`coffre.consistency.share_setup` found at and around one source path.

    ``on_btrfs`` is the share's filesystem (its parent's when it is missing);
    ``same_filesystem`` whether the parent lies on that same btrfs filesystem.
    ``versions_root``, ``versions`` and ``views`` are the three layout names
    (MISSING when a folder above them is missing); ``leftovers`` the names
    a conversion would use that are already taken.
    """

    path: PurePosixPath
    parent_found: Found
    on_btrfs: bool
    same_filesystem: bool
    share: Found
    versions_root: Found
    versions: Found
    views: Found
    leftovers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """Do ``action`` at ``path``; ``mode`` for the folders made or set (None: keep it)."""

    action: Action
    path: PurePosixPath
    mode: int | None = None

    def __str__(self) -> str:
        mode = f" (mode {self.mode:04o})" if self.mode is not None else ""
        return f"{self.action.value}: {controls_escaped(str(self.path))}{mode}"


@dataclass(frozen=True)
class SharePlan:
    """The steps for one path, in order; or, off btrfs, no step and a ``warning``."""

    path: PurePosixPath
    steps: tuple[Step, ...]
    warning: str | None = None

    @property
    def converts(self) -> bool:
        """Whether a folder holding files is converted into a subvolume."""
        return any(step.action is Action.CONVERT for step in self.steps)


def plan_share(facts: ShareFacts, *, convert: bool) -> SharePlan:
    """The set-up of one source path, from ``facts``; ``convert``: may a full folder be converted.

    Out: a SharePlan (its steps run in order; off btrfs, none and a warning).
    Raises SnapshotError, saying where and what to do, when the path cannot
    be set up as it is: no parent, a link or a file in the way, a full
    folder without ``convert``, leftovers of a conversion, the parent on
    another filesystem.
    """
    shown = controls_escaped(str(facts.path))
    if facts.parent_found not in (Found.FOLDER, Found.SUBVOLUME, Found.EMPTY_FOLDER):
        raise SnapshotError(
            f"{controls_escaped(str(facts.path.parent))}: {facts.parent_found.value}",
            hint="the share's parent folder must exist (the package makes /srv/coffre)",
        )
    if facts.share in (Found.LINK, Found.OTHER):
        raise SnapshotError(
            f"{shown} is a {facts.share.value}, not a folder",
            hint="move it away and run `coffre share setup` again",
        )
    if not facts.on_btrfs:
        return SharePlan(facts.path, (), NOT_BTRFS_WARNING.format(path=shown))
    if not facts.same_filesystem:
        raise SnapshotError(
            f"{shown}: its parent folder is not on the share's btrfs filesystem, so its "
            "Previous Versions cannot be kept beside it",
            hint="mount the btrfs volume at the parent folder (e.g. /srv/coffre), not at the share",
        )
    return SharePlan(facts.path, (_share_step(facts, convert), *_layout_steps(facts)))


def _share_step(facts: ShareFacts, convert: bool) -> Step:
    """The step that makes the share itself a subvolume."""
    if facts.share is Found.SUBVOLUME:
        return Step(Action.KEEP_SUBVOLUME, facts.path)
    if facts.share is Found.MISSING:
        return Step(Action.CREATE_SUBVOLUME, facts.path, SHARE_MODE)
    if facts.share is Found.EMPTY_FOLDER:
        return Step(Action.REPLACE_EMPTY, facts.path)
    shown = controls_escaped(str(facts.path))
    if not convert:
        raise SnapshotError(
            f"{shown} is a folder with files, not a btrfs subvolume",
            hint="stop smbd, then run `coffre share setup --convert`: the files are copied "
            f"with reflinks (no extra space) into a subvolume, the old folder kept as "
            f"{facts.path.name}{OLD_SUFFIX}",
        )
    if facts.leftovers:
        taken = ", ".join(controls_escaped(name) for name in facts.leftovers)
        raise SnapshotError(
            f"{shown}: a conversion's names are taken beside it ({taken})",
            hint="check and remove them (a previous conversion's), then run it again",
        )
    return Step(Action.CONVERT, facts.path)


def _layout_steps(facts: ShareFacts) -> tuple[Step, ...]:
    """The steps that make (or set right) the three layout folders."""
    wanted = (
        (versions_root(facts.path), facts.versions_root, VERSIONS_MODE),
        (versions_folder(facts.path), facts.versions, VERSIONS_MODE),
        (views_folder(facts.path), facts.views, VIEWS_MODE),
    )
    steps = []
    for path, found, mode in wanted:
        if found in (Found.LINK, Found.OTHER):
            raise SnapshotError(
                f"{controls_escaped(str(path))} is a {found.value}, not a folder; nothing changed",
                hint="move it away (whoever made it), then run `coffre share setup` again",
            )
        action = Action.MAKE_FOLDER if found is Found.MISSING else Action.FIX_FOLDER
        steps.append(Step(action, path, mode))
    return tuple(steps)


def smb_connections(smbstatus_json: str) -> int:
    """How many SMB tree connects ``smbstatus --json`` lists (workstations on a share).

    Out: the count of its ``tcons``. Raises ValueError when the text is not
    that JSON object.
    """
    try:
        tcons = json.loads(smbstatus_json).get("tcons", {})
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError("not the output of `smbstatus --json`") from error
    if not isinstance(tcons, dict):
        raise ValueError("not the output of `smbstatus --json`")
    return len(tcons)


def refuse_conversion_while_served(plans: Sequence[SharePlan], connections: int | None) -> None:
    """Refuse a conversion while smbd serves workstations: they would write into the old folder.

    In: every plan, and the connections smbd has (None: unknown, e.g. no
    smbstatus; the CLI says to stop smbd all the same). Out: None. Raises
    SnapshotError when a plan converts and ``connections`` is above zero.
    """
    if any(plan.converts for plan in plans) and connections:
        raise SnapshotError(
            f"smbd serves {connections} connection(s): a file written during the "
            "conversion would stay in the old folder; nothing changed",
            hint="stop smbd (systemctl stop smbd), run `coffre share setup --convert`, "
            "then start it again",
        )
