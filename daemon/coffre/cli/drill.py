"""``coffre drill [--target NAME] [--json]``: a restore drill now; its figures, or what differs.

The drill reads patient data back: the daemon records it in the audit log
with who asked (the CLI's claims and the kernel's uid). Names of files that
differ come in the error's message, escaped by the daemon
(:func:`coffre.core.printable.controls_escaped`) and printed escaped again
here (idempotent).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from coffre.cli.client import person_from_env
from coffre.cli.support import EXIT_FAILED, ask, follow, job_exit, print_json, raise_if_error
from coffre.core.config_types import Config
from coffre.core.job_events import outcomes_from_json
from coffre.core.messages import DrillRequest, Event
from coffre.core.printable import controls_escaped
from coffre.core.request_check import check_request


def add_parser(sub: Any) -> None:
    """Add ``drill [--target NAME] [--json]`` to the main parser's subparsers."""
    drill = sub.add_parser(
        "drill",
        help="read a sample of the latest archive back and compare it (audited)",
        description="Extract a sample of the latest archive's files (the largest, the most "
        "recently changed, the rest at random; [drills] in the configuration) into a private "
        "folder and compare each with the share, or with borg's hash when it was edited since. "
        "Exit 1 when a file differs or cannot be read back.",
    )
    drill.add_argument(
        "--target", metavar="NAME", help="drill this target (default: each one readable now)"
    )
    drill.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_drill(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre drill``: per target, the figures or why it failed; the exit code."""
    message = DrillRequest(target=args.target, person=person_from_env(os.environ, os.getuid()))
    check_request(message.to_json())
    final = follow(_said(ask(cfg, message)), quiet_progress=True)
    raise_if_error(final)  # refused (an unknown target...): the error, not an empty answer
    if args.json:
        print_json({"targets": outcomes_from_json(final)})
        return job_exit(final) if final.get("event") == "result" else EXIT_FAILED
    for target, outcome in outcomes_from_json(final).items():
        if outcome["ok"]:
            print(_figures(target, outcome))
    return job_exit(final)


def _said(events: Iterable[Event]) -> Iterator[Event]:
    """``events``, saying on stderr what the drill waits for (a disk to plug in, a backup)."""
    for event in events:
        if event.get("event") == "waiting":
            print(controls_escaped(str(event.get("message"))), file=sys.stderr, flush=True)
        elif event.get("event") == "disk_released" and event.get("safe_to_remove"):
            print(f"disk {event.get('target')}: safe to remove", file=sys.stderr)
        yield event


def _figures(target: str, outcome: Any) -> str:
    """``local: 50 file(s), 180.2 MB read back at 95.3 MB/s (archive ...); all identical``."""
    rate = outcome.get("throughput")
    speed = f" at {rate / 1e6:.1f} MB/s" if isinstance(rate, int | float) else ""
    return (
        f"{target}: {outcome.get('nfiles')} file(s), {outcome.get('nbytes', 0) / 1e6:.1f} MB "
        f"read back{speed} from archive {controls_escaped(str(outcome.get('archive')))}; "
        "all identical "
        f"({outcome.get('by_bytes')} compared with the share, "
        f"{outcome.get('by_hash')} with borg's hash)"
    )
