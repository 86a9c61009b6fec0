"""``coffre check [--target T] [--kind repository|archives|data]``: a borg check now.

The daemon queues it in the maintenance lane: it runs even near the nightly
(a person asked), one check at a time, and lets its target go at once when a
backup, a disk or a restore needs it; then it says so and runs again once
the box is idle. ``borg check --repair`` is never run (docs/ says when a
person should).
"""

from __future__ import annotations

import argparse

from coffre.cli.support import ask, follow, job_exit, print_queued, when
from coffre.core.config_types import Config
from coffre.core.job_events import outcomes_from_json
from coffre.core.messages import CHECK_KINDS, CheckRequest
from coffre.core.reports import MaintenanceView


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check`` to the subcommands ``sub``."""
    check = sub.add_parser("check", help="check repositories now (borg check)")
    check.add_argument("--target", action="append", metavar="NAME", help="only this target")
    check.add_argument(
        "--kind",
        action="append",
        choices=CHECK_KINDS,
        help="repository (segments' CRCs), archives (metadata) or data (decrypt every chunk); "
        "default: repository and archives (offsite: archives)",
    )
    check.add_argument(
        "--no-wait", dest="wait", action="store_false", help="queue it and return at once"
    )


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    """Ask the daemon for a check, follow it (unless ``--no-wait``); the job's exit code.

    Exit 0 when every target's checks passed or were interrupted (they run
    again later), 1 when one failed or found damage.
    """
    request = CheckRequest(
        targets=tuple(args.target or ()), kinds=tuple(args.kind or ()), wait=args.wait
    )
    events = ask(cfg, request)
    if not args.wait:
        return print_queued(events, "check")
    final = follow(events, quiet_progress=True)
    for name, outcome in outcomes_from_json(final).items():
        checked = ", ".join(outcome.get("checked", [])) or "nothing"
        if outcome.get("outcome") == "interrupted":
            print(
                f"target {name}: interrupted by a {outcome.get('interrupted_by')} "
                f"(checked: {checked}); it runs again once the box is idle"
            )
        elif outcome["ok"]:
            print(f"target {name}: checked {checked}")
    return job_exit(final)


def print_maintenance(view: MaintenanceView) -> None:
    """The maintenance lines of ``coffre status``: what runs or waits, and what is next."""
    for job, state in ((view["running"], "running"), *((j, "queued") for j in view["queued"])):
        if job is not None:
            print(f"maintenance {state}: {job['kind']} of {', '.join(job['targets'])}")
    if view["next_at"] is not None:
        what = "drill" if view["next_kind"] == "drill" else f"{view['next_kind']} check"
        print(f"next maintenance: {what} of {view['next_target']}, {when(view['next_at'])}")
