"""Pure: what a check run found, and what a person must read about it.

From a borg run that reached its end (its exit code and log records) or from
the error that stopped it, :func:`from_run` and :func:`from_error` give a
:class:`Finding`: whether the repository was found sound, whether the pass
ended, whether damage was found, the sentence a person reads (which target,
which archive when borg named one, what to do) and the archive.

The facts of borg 1.4.5 relied on (see ``coffre.borg.argv``'s check builders):
damage found by ``borg check`` is logged at ERROR and ends with rc 1 (a
warning code: the run reached its end); a rolling repository check that
reached the last segment logs "finished segment check at segment N", one
that ran out of time "finished partial segment check, ..."; the archives
check logs "Analyzing archive NAME (i/n)" before each archive it reads; an
``extract --dry-run`` (a data check by archive) meeting a chunk that does not
authenticate stops with borg's IntegrityError (BorgIntegrityError here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from coffre.borg.records import LogRecord
from coffre.core.errors import BorgIntegrityError, CoffreError
from coffre.core.printable import controls_escaped

#: The log line of a rolling repository check that read the last segment.
PASS_END = "finished segment check at segment"
#: The log line before each archive the archives check reads.
_ANALYZING = re.compile(r"^Analyzing archive (?P<name>.+) \(\d+/\d+\)$")
#: Characters of borg's own words kept in a sentence (its first error says enough).
DETAIL_MAX = 300

#: What each kind of check is called in a sentence.
CHECK_NAMES = {
    "repository": "repository check (segments read, CRC)",
    "archives": "archives check",
    "data": "data check (every chunk decrypted)",
}

#: What to do about damage found, by the target's kind.
WHAT_TO_DO = {
    "usb": "replace this disk with a new one of the rotation (enroll it: `coffre disk enroll`) "
    "and keep the damaged one apart, unused; never run `borg check --repair` on it without "
    "support (docs/repair.md)",
    "local": "call support: make a backup to another target now (a USB disk, `coffre backup "
    "--wait`), then follow docs/repair.md; never run `borg check --repair` without a person "
    "and a copy first",
    "offsite": "tell the host's operator (their storage may be failing) and support; "
    "see docs/repair.md",
}


@dataclass(frozen=True)
class Finding:
    """What one check run found. ``error`` is None when ``ok``."""

    ok: bool
    complete: bool
    damage: bool
    error: str | None
    archive: str | None


def check_name(kind: str) -> str:
    """The words for a check of ``kind`` ("repository check (segments read, CRC)"...)."""
    return CHECK_NAMES.get(kind, f"{kind} check")


def damage_sentence(
    target: str, target_kind: str, kind: str, detail: str, archive: str | None
) -> str:
    """The sentence of damage found: which check of which target, where, borg's words, what
    to do. ``detail`` (borg's message, which may name a file) is escaped and shortened."""
    where = f" in archive {controls_escaped(archive)}" if archive else ""
    words = controls_escaped(detail)
    if len(words) > DETAIL_MAX:
        words = words[: DETAIL_MAX - 1] + "…"
    todo = WHAT_TO_DO.get(target_kind, "see docs/repair.md")
    return f"the {check_name(kind)} of {target} found damage{where}: {words}. What to do: {todo}"


def from_run(
    target: str,
    target_kind: str,
    kind: str,
    rc: int,
    logs: Sequence[LogRecord],
    *,
    partial: bool = False,
    archive: str | None = None,
) -> Finding:
    """The finding of a ``borg check`` of ``kind`` that reached its end with exit code ``rc``.

    ``partial``: a rolling repository check (``--max-duration``), complete
    only when its log says it read the last segment. rc 0 is sound; any other
    code that reached the end (1: borg found errors) is damage, told with the
    first ERROR record (or the last warning) and the archive being analysed
    when it came (else ``archive``, the one the run read). Raises nothing.
    """
    complete = any(r.message.startswith(PASS_END) for r in logs) if partial else True
    if rc == 0:
        return Finding(True, complete, False, None, None)
    named, first = _first_error(logs)
    archive = named or archive
    detail = first or f"borg ended with code {rc}"
    sentence = damage_sentence(target, target_kind, kind, detail, archive)
    return Finding(False, complete, True, sentence, archive)


def _first_error(logs: Sequence[LogRecord]) -> tuple[str | None, str | None]:
    """The archive being analysed at the first ERROR record, and that record's words."""
    archive: str | None = None
    for record in logs:
        match = _ANALYZING.match(record.message)
        if match:
            archive = match.group("name")
        elif record.is_error:
            return archive, record.message
    warned = [r.message for r in logs if r.level == "WARNING"]
    return archive, warned[-1] if warned else None


def from_error(
    target: str, target_kind: str, kind: str, error: CoffreError, *, archive: str | None = None
) -> Finding:
    """The finding of a check of ``kind`` stopped by ``error`` (``archive``: the one it read).

    borg's IntegrityError family is damage; any other error (a lock, a host
    that does not answer, a disk pulled out) means the check could not run:
    not ok, no damage, the error's own words and hint. Raises nothing.
    """
    if isinstance(error, BorgIntegrityError):
        # Its message, not its generic hint: the sentence says what to do for this target.
        sentence = damage_sentence(target, target_kind, kind, error.message, archive)
        return Finding(False, False, True, sentence, archive)
    sentence = f"the {check_name(kind)} of {target} could not run: {error}"
    return Finding(False, False, False, controls_escaped(sentence), archive)
