"""The audit log's witness off the box: its length and the end of its hash chain, as series.

``coffre audit verify`` finds a line edited, removed or garbled by someone who
did not rewrite the head file too; root can rewrite both consistently, or
delete both. These series leave the box with the others (the Prometheus agent
remote-writes them), and the central store remembers what it saw:

- ``coffre_audit_entries_total``: the entries the log holds (the seq of its
  last valid entry; 0 for a missing or emptied log). It never goes down on a
  sound box: lower than before, entries were removed
  (``CoffreAuditWentBackwards``).
- ``coffre_audit_chain_info{seq, hash}`` = 1: for each of the last
  :data:`~coffre.storage.audit_tail.TAIL_ENTRIES` entries and for the head
  file, the seq and the first :data:`HASH_CHARS` hex digits of the chain
  hash. Each hash commits to every line before it, so rewriting any line at
  or before them gives a seq already seen a new hash (``CoffreAuditRewritten``).

Figures only: a seq and a hash prefix say nothing of who read which file.
A scrape costs two ``lstat`` while the log is unchanged; after a change, the
tail is read again (never the whole log), without waiting for a record in
progress (the last figures are shown meanwhile).
"""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from coffre.storage.audit_tail import (
    TAIL_ENTRIES,
    ChainTail,
    Fingerprint,
    fingerprint,
    read_tail,
)

__all__ = ["HASH_CHARS", "AuditWitness", "audit_families"]

#: Hex digits of a chain hash shown in a label: 64 bits, which no one rewriting
#: a line can match by trying (2**64 tries), and short enough to read.
HASH_CHARS = 16


def audit_families(tail: ChainTail) -> list[Metric]:
    """The two audit families for ``tail``: entries, and the chain's end. Raises nothing."""
    entries = CounterMetricFamily(
        "coffre_audit_entries",
        "Entries in the audit log (the seq of its last one; 0: missing or empty). "
        "Lower than before: entries were removed.",
    )
    entries.add_metric([], tail.entries)
    chain = GaugeMetricFamily(
        "coffre_audit_chain_info",
        "1 for each of the audit log's last entries and its head file: the entry's seq and "
        f"the first {HASH_CHARS} hex digits of its chain hash (SHA-256 of its line).",
        labels=["seq", "hash"],
    )
    links = {(link.seq, link.hash[:HASH_CHARS]) for link in tail.links}
    if tail.head is not None and tail.head.seq > 0:
        links.add((tail.head.seq, tail.head.hash[:HASH_CHARS]))
    for seq, digest in sorted(links):
        chain.add_metric([str(seq), digest], 1)
    return [entries, chain]


class AuditWitness:
    """The audit families of the log at ``log``, read again only when it changed.

    ``count`` is how many last lines are read. Errors go to ``logger`` once
    (until a read succeeds again).
    """

    def __init__(self, log: Path, logger: logging.Logger, *, count: int = TAIL_ENTRIES) -> None:
        self._log = log
        self._logger = logger
        self._count = count
        self._read: tuple[Fingerprint, ChainTail] | None = None
        self._failing = False

    def series(self) -> list[Metric]:
        """The families now; none when the log cannot be read (unknown is no zero). Raises
        nothing: the witness must not cost the other series."""
        try:
            seen = fingerprint(self._log)
            if self._read is None or self._read[0] != seen:
                self._read = (seen, read_tail(self._log, self._count, wait=False))
        except BlockingIOError:
            # A record in progress holds the lock for an fsync: show the last
            # figures (the next scrape sees the new ones), or none yet.
            if self._read is None:
                return []
        except OSError as error:
            if not self._failing:
                self._logger.error("metrics: cannot read the audit log's tail: %s", error)
            self._failing = True
            self._read = None
            return []
        self._failing = False
        return audit_families(self._read[1])
