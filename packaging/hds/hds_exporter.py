"""coffre-hds-exporter: the boxes' repositories on an HDS host, for node_exporter's textfile
collector.

For each repository (named by the operator, or every subdirectory of ``--parent`` that is
a borg repository), it writes, labelled ``repository`` = the directory's base name (a box
name the operator chose, e.g. cabinet-dupont; never an archive or file name, which the
host cannot read anyway):

- coffre_hds_measure_ok: 1 if its files could be read, 0 otherwise (then no other series);
- coffre_hds_last_transaction_timestamp_seconds: the last committed transaction of the box
  (the transactions log; the newest segment's mtime for a repository without a log);
- coffre_hds_repository_bytes: its segment files' size on disk;
- coffre_hds_live_bytes: what its index holds;
- coffre_hds_pending_deletion_bytes, coffre_hds_pending_deletions: the deletions since the
  last guarded compaction, as coffre-hds-compact measures them;
- coffre_hds_compaction_refused: 1 if coffre-hds-compact would refuse to compact it now;

and coffre_hds_exporter_last_run_timestamp_seconds (no label). The file is written to a
temporary file beside it, then renamed: the collector never reads half a file.
Exit status: 0 written (even if a repository could not be read: its measure_ok says so);
1 usage or the file could not be written. Stdlib only (copied onto the HDS host).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hds_guard import DEFAULT_MAX_PERCENT, judge
from hds_repository import NotARepository, State, local_repository, read_state
from hds_segments import SegmentDamaged, segment_files

DEFAULT_OUTPUT = Path("/var/lib/prometheus/node-exporter/coffre-hds.prom")

_HELP = {
    "measure_ok": "1 if the repository's files could be read and measured",
    "last_transaction_timestamp_seconds": "time of the box's last committed transaction",
    "repository_bytes": "size of the repository's segment files",
    "live_bytes": "bytes of the objects the repository's index holds",
    "pending_deletion_bytes": "bytes deleted or overwritten since the last guarded compaction",
    "pending_deletions": "objects deleted since the last guarded compaction",
    "compaction_refused": "1 if coffre-hds-compact would refuse to compact now",
}


@dataclass(frozen=True)
class Row:
    """One repository's values by metric suffix (empty when it could not be measured)."""

    repository: str
    values: dict[str, float]


def label(value: str) -> str:
    """``value`` escaped for a label in the text format (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    """``value`` in full precision (an integer without a fraction: byte counts, flags)."""
    return str(int(value)) if value.is_integer() else repr(value)


def render(rows: list[Row], now: float) -> str:
    """The textfile for ``rows``, written at ``now`` (Unix seconds)."""
    lines: list[str] = []
    for suffix, text in _HELP.items():
        lines += [f"# HELP coffre_hds_{suffix} {text}", f"# TYPE coffre_hds_{suffix} gauge"]
        for row in rows:
            value = 1.0 if suffix == "measure_ok" and row.values else row.values.get(suffix)
            if value is None and suffix == "measure_ok":
                value = 0.0
            if value is not None:
                name = label(row.repository)
                lines.append(f'coffre_hds_{suffix}{{repository="{name}"}} {number(value)}')
    lines += [
        "# HELP coffre_hds_exporter_last_run_timestamp_seconds when this file was written",
        "# TYPE coffre_hds_exporter_last_run_timestamp_seconds gauge",
        f"coffre_hds_exporter_last_run_timestamp_seconds {now:.3f}",
    ]
    return "\n".join(lines) + "\n"


def values(repository: Path, state: State, max_percent: float) -> dict[str, float]:
    """The metric values of one measured repository."""
    if state.log.transactions:
        last = max(state.log.transactions.values()).timestamp()
    else:
        files = segment_files(repository)
        last = files[-1][1].stat().st_mtime if files else 0.0
    return {
        "last_transaction_timestamp_seconds": last,
        "repository_bytes": float(state.disk_bytes),
        "live_bytes": float(state.measure.live_bytes),
        "pending_deletion_bytes": float(state.measure.pending_bytes),
        "pending_deletions": float(state.measure.pending_deletes),
        "compaction_refused": float(judge(state.measure, max_percent).refuse),
    }


def measure(repository: Path, max_percent: float) -> Row:
    """The Row of one repository; an empty one (measure_ok 0) if it cannot be read."""
    try:
        return Row(repository.name, values(repository, read_state(repository), max_percent))
    except (OSError, SegmentDamaged) as error:
        print(f"coffre-hds-exporter: {repository}: cannot measure it ({error})", file=sys.stderr)
        return Row(repository.name, {})


def repositories(named: list[str], parents: list[Path]) -> list[Path]:
    """The repositories to measure: those named, and each subdirectory of ``parents`` with a
    borg config. Raises NotARepository for a named path that is not one."""
    found = [local_repository(name) for name in named]
    for parent in parents:
        for entry in sorted(parent.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and (entry / "config").is_file():
                found.append(entry.absolute())
    return found


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed over it (0644)."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Measure the repositories and write the textfile; the exit status in the module's doc."""
    parse = argparse.ArgumentParser(prog="coffre-hds-exporter", description=__doc__.split("\n")[0])
    parse.add_argument("repositories", nargs="*", metavar="REPOSITORY", help="local path")
    parse.add_argument("--parent", type=Path, action="append", default=[], metavar="DIR")
    parse.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="FILE")
    parse.add_argument("--max-pending-percent", type=float, default=DEFAULT_MAX_PERCENT)
    try:
        args = parse.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 1
    try:
        found = repositories(args.repositories, args.parent)
    except (NotARepository, OSError) as error:
        print(f"coffre-hds-exporter: {error}", file=sys.stderr)
        return 1
    rows = [measure(repository, args.max_pending_percent) for repository in found]
    try:
        write_atomically(args.output, render(rows, time.time()))
    except OSError as error:
        print(f"coffre-hds-exporter: cannot write {args.output}: {error}", file=sys.stderr)
        return 1
    return 0
