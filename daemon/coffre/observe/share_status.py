"""Status's share part: snapshots or why not, Previous Versions kept, room, each read.

Built from a fresh :class:`coffre.consistency.survey.Survey` and, for each
target, how its last backup read the share (kept in state's meta by
``jobs.backup.record_consistency``). Times are the box's; no file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from coffre.consistency.quiet import Consistency
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
        read = Consistency.from_json(state.get_meta(consistency_key(name)))
        if read is not None:
            reads[name] = _read(read, tz)
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


def _read(read: Consistency, tz: tzinfo) -> ReadView:
    """A target's last read as status shows it (times in the box's timezone)."""
    return {
        "method": read.method,
        "quiet": read.quiet,
        "waited": read.waited,
        "writers": read.writers,
        "at": local_iso(read.taken_at, tz),
        "why_live": read.why_live,
    }
