"""``coffre share setup``: the share made a btrfs subvolume, its Previous Versions folder beside.

Run as root on the box; it needs no daemon (coffre.consistency.share_setup
does the work). Off btrfs it changes nothing, says on stderr what the box
loses, and exits 0: a box without btrfs still backs up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import PurePosixPath

from coffre.cli.support import EXIT_OK
from coffre.consistency import share_setup
from coffre.consistency.share_layout import OLD_SUFFIX
from coffre.core.config_types import Config
from coffre.core.printable import controls_escaped


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``share`` and its action ``setup`` to the subcommands ``sub``."""
    share = sub.add_parser("share", help="the share on btrfs: snapshots and Previous Versions")
    action = share.add_subparsers(dest="share_command", required=True, metavar="ACTION")
    setup = action.add_parser(
        "setup",
        help="make each source path a btrfs subvolume, with its Previous Versions folder",
    )
    setup.add_argument(
        "--convert",
        action="store_true",
        help="convert a folder holding files (reflink copy; stop smbd first; old folder kept)",
    )
    setup.add_argument("--dry-run", action="store_true", help="only say what would be done")


def cmd_share(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre share setup`` on every ``source.paths`` of ``cfg``; EXIT_OK when done.

    Prints each step (or, with ``--dry-run``, what it would do) on stdout,
    the off-btrfs warning on stderr. Raises SnapshotError (nothing touched
    when a path is refused; a failed step named; see share_setup).
    """
    paths = [PurePosixPath(path) for path in cfg.source.paths]
    plans = share_setup.plan_all(paths, convert=args.convert)
    for plan in plans:
        if plan.warning is not None:
            print(f"warning: {plan.warning}", file=sys.stderr)
            continue
        if args.dry_run:
            for step in plan.steps:
                print(f"would {step}")
            continue
        if plan.converts:
            print("converting: smbd must not serve the share meanwhile (systemctl stop smbd)")
        for line in share_setup.apply_plan(plan):
            print(line)
        if plan.converts:
            old = controls_escaped(f"{plan.path}{OLD_SUFFIX}")
            print(
                f"done: check the share from a workstation, then remove {old} "
                "(`rm -r` it; it holds the files as they were before)"
            )
    return EXIT_OK
