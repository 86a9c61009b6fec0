"""The drills' records in state: one per target, the last drill (meta key ``drill.<target>``).

Kept as JSON in state's ``meta`` table so that no schema change is needed:
``{"at": iso8601, "archive": str, "files": int, "bytes": int,
"extract_seconds": float, "outcome": "ok"|"mismatch"|"failed",
"mismatches": int, "error": str|null}``. Counts and figures only: the names
of mismatching files go to the journal and to ``coffre drill``'s answer,
never here (status and metrics read this record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, cast

__all__ = ["DrillLedger", "DrillOutcome", "DrillRecord", "Meta"]

DrillOutcome = Literal["ok", "mismatch", "failed"]
_OUTCOMES: tuple[DrillOutcome, ...] = ("ok", "mismatch", "failed")


class Meta(Protocol):
    """What the ledger needs of :class:`coffre.storage.state.State`."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class DrillRecord:
    """One drill: when it ended (aware), the archive, what was read back and how it went.

    ``files``/``bytes``: the sample extracted; ``extract_seconds``: the extract
    alone (no listing, no comparison); ``mismatches``: files that differ or did
    not come out whole; ``error``: why a failed drill failed (no file name).
    """

    at: datetime
    archive: str
    files: int
    bytes: int
    extract_seconds: float
    outcome: DrillOutcome
    mismatches: int
    error: str | None

    @property
    def throughput(self) -> float | None:
        """Bytes per second of the extract; None when nothing was timed (no bytes or no time)."""
        if self.bytes <= 0 or self.extract_seconds <= 0:
            return None
        return self.bytes / self.extract_seconds

    def to_json(self) -> str:
        """The record as state keeps it."""
        return json.dumps(
            {
                "at": self.at.isoformat(),
                "archive": self.archive,
                "files": self.files,
                "bytes": self.bytes,
                "extract_seconds": self.extract_seconds,
                "outcome": self.outcome,
                "mismatches": self.mismatches,
                "error": self.error,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DrillRecord:
        """The record state kept; raises ValueError when it is not one (a field missing, bad)."""
        try:
            raw = json.loads(text)
            outcome = raw["outcome"]
            if outcome not in _OUTCOMES:
                raise ValueError(f"unknown drill outcome {outcome!r}")
            at = datetime.fromisoformat(raw["at"])
            if at.tzinfo is None:
                raise ValueError("drill time without a timezone")
            return cls(
                at=at,
                archive=str(raw["archive"]),
                files=_count(raw, "files"),
                bytes=_count(raw, "bytes"),
                extract_seconds=float(raw["extract_seconds"]),
                outcome=cast(DrillOutcome, outcome),
                mismatches=_count(raw, "mismatches"),
                error=None if raw["error"] is None else str(raw["error"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a drill record: {error}") from None


def _count(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"drill record: {key} is not a count: {value!r}")
    return value


class DrillLedger:
    """The last drill of each target, over state's meta table."""

    def __init__(self, state: Meta) -> None:
        self._state = state

    @staticmethod
    def key(target: str) -> str:
        """The meta key of ``target``'s last drill."""
        return f"drill.{target}"

    def last(self, target: str) -> DrillRecord | None:
        """``target``'s last drill; None when it never had one, or its record is unreadable
        (an unreadable record counts as no drill: the next one is due, nothing breaks)."""
        text = self._state.get_meta(self.key(target))
        if text is None:
            return None
        try:
            return DrillRecord.from_json(text)
        except ValueError:
            return None

    def record(self, target: str, drill: DrillRecord) -> None:
        """Keep ``drill`` as ``target``'s last; raises StateError as state does."""
        self._state.set_meta(self.key(target), drill.to_json())
