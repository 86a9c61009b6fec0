"""What status and the metrics show of the share's snapshots, kept in state's meta.

The desk writes a survey after it tends the versions and after each backup
took its read point; ``coffre status`` asks for a fresh one, the exporter
reads the last one written (a scrape never lists folders). Names of versions
are times (``@GMT-...``), never a file's name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from coffre.consistency.version_plan import Version

__all__ = ["SURVEY_KEY", "Survey", "survey_from_json"]

SURVEY_KEY = "snapshots.survey"


@dataclass(frozen=True)
class Survey:
    """The share at ``at``: whether backups can snapshot it (``why_not`` empty) and the
    Previous Versions kept; ``free`` and ``total`` bytes of its filesystem (None: unknown)."""

    at: datetime
    why_not: str
    versions: Sequence[Version]
    free: int | None
    total: int | None

    def to_json(self) -> str:
        """The survey as state keeps it."""
        return json.dumps(
            {
                "at": self.at.isoformat(),
                "why_not": self.why_not,
                "versions": [[v.name, v.taken_at.isoformat(), v.kind] for v in self.versions],
                "free": self.free,
                "total": self.total,
            },
            sort_keys=True,
        )


def survey_from_json(raw: str | None) -> Survey | None:
    """The survey state kept (None: none, or unreadable)."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
        versions = [
            Version(
                str(name), datetime.fromisoformat(at), "backup" if kind == "backup" else "office"
            )
            for name, at, kind in value["versions"]
        ]
        return Survey(
            datetime.fromisoformat(value["at"]),
            str(value["why_not"]),
            tuple(versions),
            None if value["free"] is None else int(value["free"]),
            None if value["total"] is None else int(value["total"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
