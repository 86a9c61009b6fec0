"""The box's secret name that tags coffre's own restore staging folders.

A restore extracts into a staging folder inside the destination (moving
into place is then a rename), often inside the share. Those folders must be
left out of backups and removed when a killed restore left them, and a
workstation user's folder must never be taken for one: a name pattern
(``.coffre-restauration-*``) can be copied by anyone, and borg's
``--exclude-if-present NAME`` with a known NAME would let any user hide a
folder, or the whole share, from the backup by creating a file.

So the tag is a file with a name no user can guess: ``.coffre-`` and 32 hex
characters drawn once per box and kept in the state folder (0700, root's).
It sits in the staging folder (0700, root's), beside the tree borg extracts,
where no share user can list it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The file in the state folder that holds the box's tag name.
MARK_FILE: Final = "staging.mark"
_NAME = re.compile(r"\.coffre-[0-9a-f]{32}")


@dataclass(frozen=True)
class StagingMark:
    """The name of the tag file of this box's staging folders (``.coffre-<32 hex>``)."""

    name: str

    @classmethod
    def of_box(cls, state_dir: Path) -> StagingMark:
        """This box's tag, read from ``state_dir``, drawn and written there the first time.

        A file that holds something else than a tag (damaged) is replaced by
        a new tag: staging folders tagged with the old one are then left
        alone at start, and backed up, which loses nothing. Raises OSError
        when the state folder cannot be read or written.
        """
        mark = cls.if_drawn(state_dir)
        if mark is not None:
            return mark
        path = state_dir / MARK_FILE
        # A damaged file is replaced; a missing one is made, unless another process wins.
        return cls._drawn(path, replace=os.path.lexists(path))

    @classmethod
    def if_drawn(cls, state_dir: Path) -> StagingMark | None:
        """This box's tag if one was drawn, else None (then no staging folder is tagged yet).

        For the backup, which must not make state of its own. A damaged file
        is None too: nothing can be tagged with it. Raises OSError when the
        state folder cannot be read.
        """
        try:
            fd = os.open(state_dir / MARK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as file:
            text = file.read(200).decode("ascii", "replace").strip()
        return cls(text) if _NAME.fullmatch(text) else None

    @classmethod
    def _drawn(cls, path: Path, *, replace: bool = False) -> StagingMark:
        name = f".coffre-{secrets.token_hex(16)}"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole beside, then linked in: a process reading it at the
        # same moment finds no file or the whole tag, never an empty one.
        draft = path.with_name(f".{MARK_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(name.encode("ascii") + b"\n")
                file.flush()
                os.fsync(file.fileno())
            try:
                if replace:
                    draft.replace(path)
                    return cls(name)
                os.link(draft, path)
            except FileExistsError:  # another process drew it first: theirs holds
                return cls.of_box(path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                draft.unlink()
        return cls(name)
