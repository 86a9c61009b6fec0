"""Domain values shared by the pure modules and the adapters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Archive:
    """One archive of a repository.

    ``time`` is the archive's start time, timezone-aware (UTC as borg stores it).
    """

    time: datetime
    name: str
    id: str = ""

    @property
    def is_checkpoint(self) -> bool:
        """True for the partial archives borg leaves when a create is interrupted."""
        base, _, suffix = self.name.rpartition(".checkpoint")
        return bool(base) and (suffix == "" or (suffix.startswith(".") and suffix[1:].isdigit()))
