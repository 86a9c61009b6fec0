"""coffre-hds-compact: check, guard, then compact the boxes' repositories on the HDS host.

Run by the host's OWN account (cron, systemd timer) with each repository's local path,
never through a box's key. For each repository:

1. measure the deletions pending since the last guarded compaction (hds_repository) and
   refuse, exit 3, if they exceed what the box's retention could ask for (hds_guard);
2. ``borg check --repository-only`` (the segments are sound; nothing is compacted on top
   of damage);
3. measure again (a box may have written during the check) and judge again;
4. ``borg compact``; then note in the ``transactions`` log the segment it compacted
   through, so the next run judges only newer deletions.

Neither step needs the encryption key. Exit status: 0 all compacted; 1 usage; 2 a
repository could not be read, checked or compacted; 3 the guard refused at least one
(takes precedence over 2). Environment: BORG (default ``borg``), COFFRE_HDS_LOCK_WAIT
(seconds to wait for a box's upload to release the lock; default 600).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

from hds_guard import DEFAULT_MAX_PERCENT, EXIT_REFUSED, judge, refusal_hint
from hds_log import compaction_note
from hds_repository import NotARepository, State, append_note, local_repository, read_log
from hds_repository import read_state as _read_state
from hds_segments import SegmentDamaged

EXIT_FAILED = 2
_HINTS = re.compile(r"hints\.(\d+)")


def _say(repository: Path | str, text: str, error: bool = False) -> None:
    print(f"coffre-hds-compact: {repository}: {text}", file=sys.stderr if error else sys.stdout)


def read_state(repository: Path) -> State | None:
    """The repository's State, or None (said on stderr) if its segments cannot be read."""
    try:
        return _read_state(repository)
    except (OSError, SegmentDamaged) as error:
        _say(repository, f"cannot measure it ({error}); NOT compacted: run borg check", True)
        return None


def guard(repository: Path, state: State, max_percent: float, accept: bool) -> bool:
    """Judge ``state``; True if compaction may go on. Says the figures, and on a refusal why
    and what to do; ``accept`` (--accept-deletions) turns a refusal into a notice."""
    verdict = judge(state.measure, max_percent)
    if not verdict.refuse:
        _say(repository, f"pending deletions: {verdict.why}")
        return True
    if accept:
        _say(repository, f"pending deletions: {verdict.why}; accepted (--accept-deletions)")
        return True
    _say(repository, f"REFUSED, NOT compacted: {verdict.why}", True)
    print(refusal_hint(str(repository)), file=sys.stderr)
    return False


def _borg(borg: str, lock_wait: str, *args: str) -> bool:
    return subprocess.run([borg, "--lock-wait", lock_wait, *args]).returncode == 0


def compacted_through(repository: Path) -> int | None:
    """The transaction the compaction just committed (the newest hints.N), or None if a box
    committed since (its own transaction is logged): then no note is written, and the next run
    judges from the previous note, which can only make it stricter."""
    numbers = [int(m[1]) for e in repository.iterdir() if (m := _HINTS.fullmatch(e.name))]
    if not numbers or max(numbers) in read_log(repository).transactions:
        return None
    return max(numbers)


def compact_one(repository: Path, args: argparse.Namespace) -> int:
    """Guard, check, guard again, compact one repository; its exit status."""
    state = read_state(repository)
    if state is None:
        return EXIT_FAILED
    if not guard(repository, state, args.max_pending_percent, args.accept_deletions):
        return EXIT_REFUSED
    if state.append_only_config:
        _say(repository, "its config says append_only = 1: borg compact frees nothing", True)
    _say(repository, "checking")
    if not _borg(args.borg, args.lock_wait, "check", "--repository-only", str(repository)):
        _say(repository, "check failed, NOT compacted; see borg check's report", True)
        return EXIT_FAILED
    again = read_state(repository)
    if again is None:
        return EXIT_FAILED
    if again.measure.last_transaction != state.measure.last_transaction and not guard(
        repository, again, args.max_pending_percent, args.accept_deletions
    ):
        return EXIT_REFUSED
    _say(repository, "compacting")
    if not _borg(args.borg, args.lock_wait, "compact", str(repository)):
        _say(repository, "compaction failed", True)
        return EXIT_FAILED
    through = compacted_through(repository)
    if through is not None:
        append_note(repository, compaction_note(through, datetime.datetime.now(datetime.UTC)))
    _say(repository, f"compacted ({state.disk_bytes} bytes of segments before)")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line: repositories, --accept-deletions, --max-pending-percent."""
    parse = argparse.ArgumentParser(
        prog="coffre-hds-compact",
        description="Check then compact boxes' repositories, refusing suspicious deletions.",
        epilog="Exit status: 0 done; 1 usage; 2 a check or compaction failed; 3 refused.",
    )
    parse.add_argument("repositories", nargs="+", metavar="REPOSITORY", help="local path")
    parse.add_argument(
        "--accept-deletions",
        action="store_true",
        help="compact even above the limit (only after checking with the practice)",
    )
    parse.add_argument(
        "--max-pending-percent",
        type=float,
        default=DEFAULT_MAX_PERCENT,
        metavar="PERCENT",
        help=f"refuse above this share of the live bytes (default {DEFAULT_MAX_PERCENT:g})",
    )
    parse.set_defaults(
        borg=os.environ.get("BORG", "borg"),
        lock_wait=os.environ.get("COFFRE_HDS_LOCK_WAIT", "600"),
    )
    return parse


def main(argv: list[str] | None = None) -> int:
    """Run over every repository named; the exit status above (usage errors exit 1)."""
    parse = parser()
    try:
        args = parse.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 1
    status = 0
    for name in args.repositories:
        try:
            repository = local_repository(name)
        except NotARepository as error:
            print(f"coffre-hds-compact: {error}", file=sys.stderr)
            status = max(status, EXIT_FAILED)
            continue
        status = max(status, compact_one(repository, args))
    return status
