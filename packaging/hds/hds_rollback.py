"""coffre-hds-rollback: bring an append-only repository back to an earlier transaction.

Borg's documented recovery for append-only repositories: a box's key can only append,
so a deletion made through it (by ransomware on the box, say) is a new transaction on
top of the old ones, which are all still on disk until a compaction. Removing the
segments written after the last good transaction, with the hints.N, index.N and
integrity.N files of the newer ones, brings the repository back to that transaction;
borg rebuilds its index from the segments left at its next use.

Run on the HDS host, by the host's own account, with the repository's local path::

    coffre-hds-rollback REPOSITORY                  # the transactions: time, PUT/DELETE
    coffre-hds-rollback REPOSITORY --to ID          # what would go
    coffre-hds-rollback REPOSITORY --to ID --yes    # roll back to transaction ID

The listing needs only the standard library; rolling back takes borg's own lock (so no
box writes meanwhile), hence the Python borg is installed for. Nothing is deleted: the
files removed are moved to REPOSITORY.rolled-back-<time>/ beside it, then
``borg check --repository-only`` checks the result. A transaction at or before the last
compaction cannot be rolled back to: the compaction rewrote the segments after it.

Exit status: 0 done (or listed); 1 usage or refusal; 2 the check failed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hds_ledger import Measure, Transaction
from hds_log import Log
from hds_repository import NotARepository, local_repository, read_state
from hds_segments import SegmentDamaged, segment_files

_AUX = ("hints.", "index.", "integrity.")


def describe(done: Transaction) -> str:
    """One transaction's figures: what it put, what it deleted and how much of what was live."""
    share = 100.0 * done.deleted_bytes / done.live_bytes_before if done.live_bytes_before else 0
    text = f"PUT {done.puts:>6} ({done.put_bytes} B)  "
    text += f"DELETE {done.deletes:>6} ({done.deleted_bytes} B"
    text += f", {share:.0f} % of the live bytes)" if done.deletes else ")"
    if done.overwrites:
        text += f"  OVERWRITE {done.overwrites} ({done.overwritten_bytes} B)"
    return text


def listing(log: Log, measure: Measure) -> list[str]:
    """The lines of the listing: every logged transaction, oldest first, with its UTC time
    and figures; those at or before the last compaction are marked as out of reach."""
    figures = {done.id: done for done in measure.transactions}
    lines = ["      ID  UTC time                    what it did"]
    for number, when in log.transactions.items():
        done = figures.get(number)
        what = describe(done) if done else "(segments compacted: cannot roll back to it)"
        if log.compacted_through is not None and number <= log.compacted_through:
            what = "(before the last compaction: cannot roll back to it)"
        lines.append(f"{number:>8}  {when:%Y-%m-%d %H:%M:%S}         {what}")
    if log.compacted_through is not None:
        through, at = log.compacted_through, log.compacted_at
        lines.append(f"last compaction: through segment {through}, {at}")
    return lines


def refusal(log: Log, measure: Measure, good: int) -> str | None:
    """Why rolling back to ``good`` is impossible, or None if it can be done."""
    if good not in log.transactions:
        return f"{good} is not a logged transaction"
    if good == measure.last_transaction or good == max(log.transactions):
        return f"{good} is the newest transaction: nothing to roll back"
    if log.compacted_through is not None and good <= log.compacted_through:
        return f"{good} is before the last compaction (segment {log.compacted_through})"
    if good not in {done.id for done in measure.transactions}:
        return f"the segments of transaction {good} were compacted away"
    return None


def newer_files(repository: Path, good: int) -> list[Path]:
    """What goes: segments after ``good``, and hints/index/integrity files newer than it."""
    going = [path for number, path in segment_files(repository) if number > good]
    for entry in sorted(repository.iterdir()):
        suffix = entry.name.rsplit(".", 1)[-1]
        if entry.name.startswith(_AUX) and suffix.isdigit() and int(suffix) > good:
            going.append(entry)
    return going


def borg_lock(repository: Path, wait: int) -> AbstractContextManager[Any]:
    """borg's exclusive lock of the repository (borg's own code, so boxes wait or time out)."""
    try:
        from borg.locking import Lock  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise SystemExit(
            "borg's Python package is not importable by this Python: run this script with "
            "the Python borg is installed for (e.g. /usr/bin/python3 for Debian's borgbackup)"
        ) from None
    lock: AbstractContextManager[Any] = Lock(str(repository / "lock"), exclusive=True, timeout=wait)
    return lock


def move_aside(repository: Path, going: list[Path], good: int) -> Path:
    """Move ``going`` to REPOSITORY.rolled-back-<time>/ (same layout), note it in the log."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = repository.with_name(f"{repository.name}.rolled-back-{stamp}")
    for path in going:
        target = aside / path.relative_to(repository)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
    with (repository / "transactions").open("a", encoding="ascii") as log:
        print(f"# rolled back to transaction {good} at {stamp}; files in {aside}", file=log)
    return aside


def parser() -> argparse.ArgumentParser:
    """The command line (unchanged since the shell-era tool, plus nothing new to learn)."""
    parse = argparse.ArgumentParser(
        prog="coffre-hds-rollback",
        description="Roll an append-only borg repository back to an earlier transaction.",
    )
    parse.add_argument("repository", help="local path of the repository")
    parse.add_argument("--to", type=int, metavar="ID", help="the last good transaction")
    parse.add_argument("--yes", action="store_true", help="do it (without: only show)")
    parse.add_argument("--borg", default=os.environ.get("BORG", "borg"), help="borg to check with")
    parse.add_argument("--lock-wait", type=int, default=600, metavar="SECONDS")
    parse.add_argument("--no-check", action="store_true", help="skip borg check afterwards")
    return parse


def roll_back(repository: Path, args: argparse.Namespace) -> int:
    """Under borg's lock: show what goes and, with --yes, move it aside; then check."""
    with borg_lock(repository, args.lock_wait):
        going = newer_files(repository, args.to)
        print(f"rolling {repository} back to transaction {args.to}: {len(going)} file(s) go")
        for path in going:
            print(f"  {path.relative_to(repository)}")
        if not args.yes:
            print("nothing done: add --yes to do it")
            return 0
        print(f"moved aside to {move_aside(repository, going, args.to)}")
    if args.no_check:
        return 0
    print(f"checking {repository} (borg rebuilds its index from the segments left)")
    checked = subprocess.run([args.borg, "check", "--repository-only", str(repository)])
    if checked.returncode != 0:
        print("borg check failed: move the files back from the folder above", file=sys.stderr)
        return 2
    print(
        "done. On the box, the next backup to this host is refused as a replay if the box's "
        "own borg made the deletion: see README.md, 'After a rollback'"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """List the transactions, or roll back to --to; the exit status in the module's doc."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 1
    try:
        repository = local_repository(args.repository)
        state = read_state(repository)
    except (NotARepository, OSError, SegmentDamaged) as error:
        print(f"coffre-hds-rollback: {error}", file=sys.stderr)
        return 1
    if not state.log.transactions:
        print(f"{repository}: no logged transaction: nothing to roll back", file=sys.stderr)
        return 1
    if args.to is None:
        print(f"transactions of {repository} (UTC), newest last:")
        print("\n".join(listing(state.log, state.measure)))
        print("roll back with: coffre-hds-rollback REPOSITORY --to ID --yes")
        return 0
    refused = refusal(state.log, state.measure, args.to)
    if refused is not None:
        print(f"coffre-hds-rollback: {repository}: {refused}", file=sys.stderr)
        return 1
    return roll_back(repository, args)
