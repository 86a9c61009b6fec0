"""Pure: is the share quiet enough to be read, and how a backup says how it read it.

Quiet means nobody has a file of the share open for writing over SMB
(Samba's view, ``smb_activity``) and nothing in it changed for
``quiet_seconds`` (the newest change time of its entries). A snapshot makes
the reading instant; quiet makes that instant a moment between two saves
rather than in the middle of one. Past the bound, the backup reads anyway
and the record says what was still going on.

No I/O, no clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from coffre.core.printable import controls_escaped

__all__ = ["Consistency", "Observation", "is_quiet"]

Method = Literal["snapshot", "live"]


@dataclass(frozen=True)
class Observation:
    """One look at the share: ``writers`` files open for writing over SMB (None: Samba
    could not tell), its ``newest_change`` (None: empty), looked at ``at``."""

    writers: int | None
    newest_change: datetime | None
    at: datetime


def is_quiet(seen: Observation, quiet_seconds: int) -> bool:
    """Whether ``seen`` shows a quiet share: no SMB writer (unknown counts as none: the
    changes still tell), and no change within ``quiet_seconds`` before ``seen.at`` (a
    change dated after it, a clock oddity, is a change)."""
    if seen.writers:
        return False
    if seen.newest_change is None:
        return True
    return (seen.at - seen.newest_change).total_seconds() >= quiet_seconds


@dataclass(frozen=True)
class Consistency:
    """How a backup read the share.

    ``method``: ``snapshot`` (a read-only btrfs snapshot taken at ``taken_at``)
    or ``live`` (the share itself, walked while in use). ``quiet``: the share
    was quiet when the snapshot was taken (``live``: when the walk began);
    ``waited``: seconds spent waiting for it; ``writers``: SMB writers still
    there when the wait ended (None: unknown). ``why_live``: why no snapshot
    (empty for ``snapshot``).
    """

    method: Method
    quiet: bool
    waited: float
    writers: int | None
    taken_at: datetime
    why_live: str = ""

    def comment(self) -> str:
        """The archive's comment: how consistency was obtained, in one line (no file names)."""
        when = self.taken_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.method == "snapshot":
            how = f"read from a read-only btrfs snapshot taken {when}"
        else:
            how = f"read from the live share from {when} (no snapshot: {self.why_live})"
        # One printable line whatever an error's text held: borg refuses a control character.
        return controls_escaped(f"coffre: {how}; {self.quiet_words()}")

    def quiet_words(self) -> str:
        """``quiet after 12 s`` or ``not quiet after 900 s: 1 file open for writing``."""
        waited = f"{self.waited:.0f} s"
        if self.quiet:
            return f"share quiet after {waited}"
        writers = (
            "files open for writing unknown"
            if self.writers is None
            else f"{self.writers} file(s) open for writing over SMB"
        )
        return f"share NOT quiet after {waited} ({writers}, or changes still under way)"

    @classmethod
    def from_json(cls, raw: str | None) -> Consistency | None:
        """A read kept as :meth:`to_json` gave it (JSON text); None when absent or
        unreadable."""
        if not raw:
            return None
        try:
            value = json.loads(raw)
            method, writers = value["method"], value["writers"]
            if method not in ("snapshot", "live"):
                return None
            return cls(
                method,
                bool(value["quiet"]),
                float(value["waited"]),
                None if writers is None else int(writers),
                datetime.fromisoformat(value["taken_at"]),
                str(value["why_live"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> dict[str, object]:
        """The record kept in state for status (plain JSON values)."""
        return {
            "method": self.method,
            "quiet": self.quiet,
            "waited": round(self.waited, 1),
            "writers": self.writers,
            "taken_at": self.taken_at.isoformat(),
            "why_live": self.why_live,
        }
