"""Pure: which archives a data check, archive by archive, verifies next.

A data check within a time budget (a USB disk at its plug) cannot use
``borg check --verify-data``: borg 1.4 reads every chunk of the repository in
one run and cannot resume. It verifies archive by archive instead
(``borg extract --dry-run``: every chunk of the archive read and
authenticated), the newest first (the restore a practice asks for first),
and the ledger remembers those verified since the pass began; the pass is
complete once every complete archive present is verified.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from coffre.core.model import Archive


def to_verify(archives: Sequence[Archive], verified: Collection[str]) -> list[str]:
    """The names of the complete archives of ``archives`` not in ``verified``, newest first.

    Checkpoint archives (an interrupted create's leftovers) are left out:
    retention deletes them and no restore starts from one. Archives of the
    same second (borg lists times to the second) go by name, the later name
    first: coffre's names end with their date and time. Raises nothing.
    """
    left = [a for a in archives if not a.is_checkpoint and a.name not in verified]
    return [a.name for a in sorted(left, key=lambda a: (a.time, a.name), reverse=True)]
