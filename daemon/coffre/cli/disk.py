"""``coffre disk ...``: enroll, list and forget the rotating USB disks."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from coffre.cli.support import (
    EXIT_OK,
    answer,
    ask,
    follow,
    job_exit,
    print_json,
    size,
    when,
)
from coffre.core.config_types import Config
from coffre.core.errors import UsageError
from coffre.core.job_events import outcomes_from_json
from coffre.core.messages import DiskEnrollRequest, DiskForgetRequest, DisksRequest
from coffre.core.reports import DiskFailure, DiskView, disks_from_json


def add_parser(sub: Any) -> None:
    """Add the ``disk`` command and its actions to the main parser's subparsers."""
    disk = sub.add_parser("disk", help="the rotating USB disks")
    actions = disk.add_subparsers(dest="disk_command", required=True, metavar="ACTION")
    enroll = actions.add_parser("enroll", help="prepare a plugged disk for coffre")
    enroll.add_argument("device", help="its block device, e.g. /dev/sdb1 (see lsblk)")
    enroll.add_argument("--name", required=True, help="a short name, e.g. disque-a")
    enroll.add_argument(
        "--format", action="store_true", help="create an ext4 filesystem first (ERASES the disk)"
    )
    enroll.add_argument("--yes", action="store_true", help="confirm --format")
    enroll.add_argument(
        "--adopt", action="store_true", help="use the coffre repository already on the disk"
    )
    listing = actions.add_parser("list", help="the enrolled disks and where they stand")
    listing.add_argument("--json", action="store_true")
    forget = actions.add_parser("forget", help="forget a disk (nothing on it is touched)")
    forget.add_argument("name")


def cmd_disk(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre disk ACTION``."""
    if args.disk_command == "enroll":
        return _enroll(args, cfg)
    if args.disk_command == "forget":
        answer(cfg, DiskForgetRequest(name=args.name))
        print(f"disk {args.name} forgotten; nothing on it was touched")
        return EXIT_OK
    disks = disks_from_json(answer(cfg, DisksRequest()))
    if args.json:
        print_json(disks)
        return EXIT_OK
    print_disks(disks)
    return EXIT_OK


def print_disks(disks: Sequence[DiskView]) -> None:
    """Print one line per disk for people, and a second one for a failure not since settled.

    In: the disks as the daemon's report gives them (``DiskWatch.report``).
    Out: lines on stdout.
    """
    if not disks:
        print("no disk enrolled: plug one in and run `coffre disk enroll DEVICE --name NAME`")
    for disk in disks:
        where = (
            "plugged in, working"
            if disk["busy"]
            else "safe to remove"
            if disk["safe_to_remove"]
            else "plugged in"
            if disk["present"]
            else "away"
        )
        swap = disk["days_since_swap"]
        notes = []
        if disk["swap_due"]:
            notes.append("SWAP IT: plug in the other disk")
        if disk["missing"]:
            notes.append("MISSING: not seen for too long")
        print(
            f"{disk['name']:<12} {where:<20} last backup {when(disk['last_backup'])}, "
            f"last seen {when(disk['last_seen'])}"
            + (f", {swap:.0f} day(s) since swap" if swap is not None else "")
            + (f", {size(disk['free_bytes'])} free" if disk["free_bytes"] is not None else "")
            + (f"  [{'; '.join(notes)}]" if notes else "")
        )
        failure = disk["last_failure"]
        if failure:
            # "Safe to remove, last backup never" alone hides why: a full disk,
            # a pulled cable. The report keeps only a failure no backup settled.
            print(f"{'':<12} last failure {when(failure['at'])}: {_one_line(failure)}")


def _one_line(failure: DiskFailure) -> str:
    """``[kind] message`` of a failure, cut to the message's first line (borg's can be long)."""
    lines = (failure["message"] or "").strip().splitlines()
    first = lines[0] if lines else "no message"
    return f"[{failure['kind'] or 'unknown'}] {first}{' ...' if len(lines) > 1 else ''}"


def _enroll(args: argparse.Namespace, cfg: Config) -> int:
    if args.format and not args.yes:
        raise UsageError(
            "--format erases everything on the disk: add --yes to confirm",
            hint=f"coffre disk enroll {args.device} --name {args.name} --format --yes",
        )
    message = DiskEnrollRequest(
        name=args.name, device=args.device, format=args.format, yes=args.yes, adopt=args.adopt
    )
    final = follow(ask(cfg, message), quiet_progress=True)
    code = job_exit(final)
    outcome = outcomes_from_json(final).get(args.name)
    if outcome is not None and outcome["ok"]:
        print(
            f"disk {args.name} {outcome['done']}: filesystem {outcome['fs_uuid']}, "
            f"repository {outcome['repository_id']}; its first backup starts now"
        )
    return code
