"""Replaying a repository's log of entries: what is live, and what is pending deletion.

Pure: entries in (from hds_segments), figures out. Borg's log is a sequence of
transactions, each ending with a COMMIT tag; what follows the last COMMIT was never
committed and is ignored, as borg does. Replaying it the way borg rebuilds its index:

- a PUT makes its object id live (its entry's bytes are live bytes);
- a DELETE of a live id makes that PUT obsolete: a *pending deletion*, its bytes freed by
  the next compaction, recoverable until then (coffre-hds-rollback);
- a PUT of an id already live makes the older PUT obsolete too. borg does this for the
  manifest (id: 32 zero bytes), rewritten by every transaction, which is harmless; for any
  other id it is an *overwrite*, as destructive as a deletion once compacted, and counted
  with the pending deletions. A DELETE of the manifest is not counted either: borg 1.4's
  clients delete and put it again within a transaction (and a lost manifest is rebuilt
  from the archives by ``borg check --repair``).

Only transactions after ``since`` (the last segment of the last guarded compaction,
hds_log) count as pending: obsolete entries older than that were already judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hds_segments import TAG_COMMIT, TAG_DELETE, TAG_PUT, Entry

MANIFEST_ID = bytes(32)


@dataclass
class Transaction:
    """What one committed transaction did. ``id`` is the segment of its COMMIT (the number
    borg logs in ``transactions``); bytes count whole entries, headers included."""

    id: int
    puts: int = 0
    put_bytes: int = 0
    deletes: int = 0
    deleted_bytes: int = 0
    overwrites: int = 0
    overwritten_bytes: int = 0
    live_bytes_before: int = 0


@dataclass
class Measure:
    """A repository's figures after its last committed transaction.

    live_bytes/live_objects: what its index holds; pending_bytes: obsolete entries made by
    transactions after ``since`` (deletions and overwrites, not the manifest's rewrites);
    pending_deletes/pending_overwrites: how many; last_transaction: the newest commit's id
    (None for an empty repository); transactions: every committed one, oldest first.
    """

    since: int | None = None
    live_bytes: int = 0
    live_objects: int = 0
    pending_bytes: int = 0
    pending_deletes: int = 0
    pending_overwrites: int = 0
    last_transaction: int | None = None
    transactions: list[Transaction] = field(default_factory=list)


def _apply(live: dict[bytes, int], entries: list[Entry], done: Transaction) -> int:
    """Apply one transaction's PUT/DELETE entries to ``live`` (id -> entry size), noting
    in ``done`` what they did; returns how much the live bytes changed."""
    change = 0
    for entry in entries:
        old = live.get(entry.key)
        if entry.tag == TAG_PUT:
            done.puts += 1
            done.put_bytes += entry.size
            if old is not None and entry.key != MANIFEST_ID:
                done.overwrites += 1
                done.overwritten_bytes += old
            live[entry.key] = entry.size
            change += entry.size - (old or 0)
        elif entry.tag == TAG_DELETE and old is not None:
            del live[entry.key]
            change -= old
            if entry.key == MANIFEST_ID:
                continue  # borg deletes then puts the manifest again in some transactions
            done.deletes += 1
            done.deleted_bytes += old
    return change


def replay(entries: Iterable[Entry], since: int | None = None) -> Measure:
    """The Measure of a repository whose log is ``entries`` (in borg's order).

    ``since``: the segment up to which deletions were already judged (None: count all).
    """
    live: dict[bytes, int] = {}
    measure = Measure(since=since)
    uncommitted: list[Entry] = []
    live_bytes = 0
    for entry in entries:
        if entry.tag != TAG_COMMIT:
            uncommitted.append(entry)
            continue
        done = Transaction(entry.segment, live_bytes_before=live_bytes)
        live_bytes += _apply(live, uncommitted, done)
        uncommitted = []
        measure.transactions.append(done)
        if since is None or done.id > since:
            measure.pending_bytes += done.deleted_bytes + done.overwritten_bytes
            measure.pending_deletes += done.deletes
            measure.pending_overwrites += done.overwrites
    measure.live_objects = len(live)
    measure.live_bytes = live_bytes
    measure.last_transaction = measure.transactions[-1].id if measure.transactions else None
    return measure
