"""The compaction guard's rule: may this repository's pending deletions be made final?

Pure. From the host, archives are opaque; what can be measured is how much of the
repository the deletions since the last guarded compaction would free (hds_ledger). The
box's retention (J, J-1, J-2, M, M-1, nightly backups) frees, each night, the data only
the archive it drops still referenced: what changed on the share since. Over a month,
even a share that rewrites 1 % of its data every day gives up about 30 % of the live
bytes; a few % is the usual. A box whose key deletes every archive frees nearly all of
it (only the manifest stays live); ransomware that encrypted the share, was backed up,
then had the older archives deleted frees as much as the whole share, i.e. about as
much as stays live. Refusing above 50 % of the live bytes (``DEFAULT_MAX_PERCENT``) sits
between the two with a margin either way; an operator who compacts less often than
monthly, or after a verified legitimate mass deletion, passes ``--accept-deletions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hds_ledger import Measure

DEFAULT_MAX_PERCENT = 50.0
EXIT_REFUSED = 3


@dataclass(frozen=True)
class Verdict:
    """``refuse``: the guard would not compact; ``percent``: pending bytes as a percentage of
    the live bytes (inf when nothing is live but something is pending); ``why``: one line."""

    refuse: bool
    percent: float
    why: str


def pending_percent(measure: Measure) -> float:
    """Pending-deletion bytes as a percentage of live bytes (0 when nothing is pending)."""
    if measure.pending_bytes == 0:
        return 0.0
    if measure.live_bytes == 0:
        return float("inf")
    return 100.0 * measure.pending_bytes / measure.live_bytes


def judge(measure: Measure, max_percent: float = DEFAULT_MAX_PERCENT) -> Verdict:
    """The guard's verdict on ``measure`` with the threshold ``max_percent`` (of live bytes)."""
    percent = pending_percent(measure)
    figures = (
        f"{measure.pending_deletes} deleted and {measure.pending_overwrites} overwritten "
        f"object(s), {measure.pending_bytes} bytes pending deletion for "
        f"{measure.live_bytes} live bytes ({percent:.1f} %)"
    )
    if percent > max_percent:
        return Verdict(True, percent, f"{figures}: more than the {max_percent:g} % limit")
    return Verdict(False, percent, figures)


def refusal_hint(repository: str) -> str:
    """What the operator does after a refusal (printed under it)."""
    return (
        "Compacting would make these deletions final. Ask the practice's support whether the "
        "box was taken over or really deleted that much (coffre status, coffre archives). "
        f"If it was an attack: do not compact; list the transactions with "
        f"`coffre-hds-rollback {repository}` and roll back to the last one before it. "
        f"If it was legitimate: `coffre-hds-compact --accept-deletions {repository}`."
    )
