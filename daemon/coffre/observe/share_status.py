"""Status's share part: snapshots or why not, Previous Versions kept, room, each read.

Built from a fresh :class:`coffre.consistency.survey.Survey` and, for each
target, how its last backup read the share (kept in state's meta by
``jobs.backup.record_consistency``). Times are the box's; no file name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo

from coffre.consistency.survey import Survey
from coffre.core.clock import local_iso
from coffre.core.reports import ReadView, ShareView
from coffre.jobs.backup import consistency_key
from coffre.storage.state import State


def share_view(survey: Survey, state: State, targets: Sequence[str], tz: tzinfo) -> ShareView:
    """The share part of status for ``survey`` and the reads of ``targets`` (a name given
    twice shown once; one never backed up since snapshots came, left out)."""
    reads: dict[str, ReadView] = {}
    for name in dict.fromkeys(targets):
        read = _read(state.get_meta(consistency_key(name)), tz)
        if read is not None:
            reads[name] = read
    return {
        "snapshots": not survey.why_not,
        "why_not": survey.why_not,
        "versions": [
            {"name": v.name, "at": local_iso(v.taken_at, tz), "kind": v.kind}
            for v in survey.versions
        ],
        "free_bytes": survey.free,
        "total_bytes": survey.total,
        "reads": reads,
    }


def _read(raw: str | None, tz: tzinfo) -> ReadView | None:
    """A kept read (``Consistency.to_json``), None when absent or unreadable."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
        writers = value["writers"]
        return {
            "method": str(value["method"]),
            "quiet": bool(value["quiet"]),
            "waited": float(value["waited"]),
            "writers": None if writers is None else int(writers),
            "at": local_iso(datetime.fromisoformat(value["taken_at"]), tz),
            "why_live": str(value["why_live"]),
        }
    except (ValueError, KeyError, TypeError):
        return None
