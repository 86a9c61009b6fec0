"""``coffre audit [verify]``: who found, restored, browsed or exported what, and when.

The log is read straight from the state dir, not through the daemon: it can be
read, and checked, while the daemon is down (after a ``coffre recover``, say).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from coffre.cli.support import EXIT_FAILED, EXIT_OK, iso_day, print_json
from coffre.core.config_types import Config
from coffre.core.errors import PermissionRefused, UsageError
from coffre.core.printable import controls_escaped

if TYPE_CHECKING:
    from coffre.storage.audit import AuditEntry

# Listing thousands of restored paths on one line helps nobody; --json has them all.
_PATHS_SHOWN = 3


def add_parser(sub: Any) -> None:
    """Add the ``audit`` command to the main parser's subparsers.

    ``coffre audit [--since YYYY-MM-DD] [--json]`` lists; ``coffre audit verify`` checks.
    """
    audit = sub.add_parser("audit", help="who found, restored, browsed or exported what, and when")
    audit.add_argument(
        "audit_action",
        nargs="?",
        choices=("verify",),
        metavar="verify",
        help="check that no entry was edited or removed (default: list the entries)",
    )
    audit.add_argument(
        "--since",
        type=iso_day,
        metavar="YYYY-MM-DD",
        help="only the entries from that day on (the box's timezone)",
    )
    audit.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_audit(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre audit [verify]``; return the exit code.

    Listing exits 0. ``verify`` exits 0 when the log is intact, 1 otherwise,
    printing each problem. Raises UsageError for ``--since`` with ``verify``,
    PermissionRefused when the log cannot be read (it is root's, 0600).
    """
    from coffre.storage import audit  # here: `coffre` commands start without it

    path = audit.audit_path(cfg)
    try:
        if args.audit_action == "verify":
            if args.since is not None:
                raise UsageError("--since applies to the listing: verify checks the whole log")
            return _verify(cfg, as_json=args.json)
        since = (
            None
            if args.since is None
            else datetime.combine(args.since, time(0), tzinfo=cfg.schedule.timezone)
        )
        entries = audit.read_entries(path, since)
    except PermissionError as error:
        raise PermissionRefused(
            f"{error.filename or path}: only root may read the audit log",
            hint="run it with sudo",
        ) from None
    if args.json:
        # ASCII JSON, as borg's: the exact names (lone surrogates of non-UTF-8 ones
        # too) read back from escapes; no raw C1 control or bidi override reaches
        # a terminal, and no name that is not UTF-8 fails the output.
        print_json([entry.as_json() for entry in entries])
        return EXIT_OK
    if not entries:
        print(
            "no audit entry"
            + (f" since {args.since.isoformat()}" if args.since else "")
            + f" in {path}"
        )
    for entry in entries:
        print(_line(entry, cfg))
    return EXIT_OK


def _verify(cfg: Config, *, as_json: bool) -> int:
    from coffre.storage import audit

    report = audit.verify(audit.audit_path(cfg))
    if as_json:
        json.dump(
            {"ok": report.ok, "count": report.count, "problems": list(report.problems)},
            sys.stdout,
            indent=2,
        )
        print()
    elif report.ok:
        print(f"audit log intact: {report.count} entries")
    else:
        for problem in report.problems:
            print(controls_escaped(problem))  # may quote a damage note read from the log
        print(
            f"audit log NOT intact: {len(report.problems)} problem(s), "
            f"{report.count} valid entries in {audit.audit_path(cfg)}"
        )
    return EXIT_OK if report.ok else EXIT_FAILED


def _line(entry: AuditEntry, cfg: Config) -> str:
    """One entry for people: local time, op, who, target, archive, paths, outcome.

    Escaped (core.printable), the whole line: the paths are names from the
    share, and the log's other fields are only as safe as whoever wrote them.
    """
    from coffre.storage import audit  # here: `coffre` commands start without it

    local = entry.time.astimezone(cfg.schedule.timezone).strftime("%Y-%m-%d %H:%M:%S")
    paths = ", ".join(entry.paths[:_PATHS_SHOWN]) or "-"
    if len(entry.paths) > _PATHS_SHOWN:
        paths += f" (+{len(entry.paths) - _PATHS_SHOWN} more)"
    damaged = "  [recorded after damage]" if entry.after_damage else ""
    return controls_escaped(
        f"{local}  {entry.op:<10} {audit.who(entry.person)}  {entry.target or '-'}  "
        f"{entry.archive or '-'}  {paths}  {entry.outcome}{damaged}"
    )
