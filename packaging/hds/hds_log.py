"""The repository's ``transactions`` file: borg's log of append-only transactions, and
the notes the coffre-hds tools add to it.

borg 1.4 appends ``transaction N, UTC time YYYY-MM-DDTHH:MM:SS.ffffff`` for every
transaction committed in append-only mode (every write of a box, through its forced
``borg serve --append-only``); N is the segment holding its COMMIT. A compaction by the
host's own account is not append-only, so borg does not log it: coffre-hds-compact adds
``# coffre-hds-compact: compacted through segment N at TIME``, and coffre-hds-rollback
``# rolled back to transaction N at TIME; ...``. The box cannot write either: its key
only runs ``borg serve``, which writes nothing but borg's own lines. Borg never reads
this file.

Pure parsing and formatting, stdlib only (copied onto the HDS host).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

_TRANSACTION = re.compile(r"transaction (\d+), UTC time (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)")
_COMPACTED = re.compile(r"# coffre-hds-compact: compacted through segment (\d+) at (\S+)")
_ROLLED_BACK = re.compile(r"# rolled back to transaction (\d+) at ")


@dataclass
class Log:
    """What the log says: the transactions still in the repository (id -> UTC time, oldest
    first; those undone by a rollback are dropped), the last guarded compaction's last
    segment and its time (None if there was none)."""

    transactions: dict[int, datetime.datetime] = field(default_factory=dict)
    compacted_through: int | None = None
    compacted_at: str | None = None


def _utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def parse(text: str) -> Log:
    """The Log of the file's ``text``. Lines it does not know are skipped (borg never
    writes others; a damaged line must not stop the guard)."""
    log = Log()
    for line in text.splitlines():
        if found := _TRANSACTION.fullmatch(line.strip()):
            log.transactions[int(found[1])] = _utc(found[2])
        elif found := _COMPACTED.fullmatch(line.strip()):
            log.compacted_through, log.compacted_at = int(found[1]), found[2]
        elif found := _ROLLED_BACK.match(line):
            good = int(found[1])
            log.transactions = {n: t for n, t in log.transactions.items() if n <= good}
            if log.compacted_through is not None and log.compacted_through > good:
                log.compacted_through = None
    return log


def compaction_note(segment: int, when: datetime.datetime) -> str:
    """The line coffre-hds-compact appends after compacting through ``segment``."""
    stamp = when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# coffre-hds-compact: compacted through segment {segment} at {stamp}\n"
