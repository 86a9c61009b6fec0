"""``coffre offsite ...``: enrolling an HDS host, and the offsite lines of ``coffre status``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from coffre.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    answer,
    ask,
    follow,
    job_exit,
    print_error,
    print_json,
    size,
    when,
)
from coffre.core.config_types import Config, OffsiteTarget
from coffre.core.errors import UsageError
from coffre.core.job_events import outcomes_from_json
from coffre.core.messages import InitRequest, OffsiteEnrollRequest
from coffre.core.reports import OffsiteEnrollment, StatusReport, TargetStatus, enrollment_from_json

__all__ = ["add_parser", "cmd_offsite", "print_target_status", "print_uploading"]


def add_parser(sub: Any) -> None:
    """Add the ``offsite`` command and its actions to the main parser's subparsers."""
    offsite = sub.add_parser("offsite", help="the offsite (HDS) hosts")
    actions = offsite.add_subparsers(dest="offsite_command", required=True, metavar="ACTION")
    enroll = actions.add_parser(
        "enroll",
        help="the box's key, the host's key and fingerprint, the authorized_keys line; "
        "then the repository",
    )
    enroll.add_argument("name", help="the offsite target's name in the configuration")
    enroll.add_argument(
        "--accept-host-key",
        metavar="FINGERPRINT",
        help="pin the host's key, if it is this one (SHA256:..., checked with the host's operator)",
    )
    enroll.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_offsite(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre offsite ACTION``."""
    return _enroll(args, cfg)


def _enroll(args: argparse.Namespace, cfg: Config) -> int:
    target = cfg.target(args.name)  # an unknown name fails here, before the daemon is asked
    if not isinstance(target, OffsiteTarget):
        raise UsageError(f"target {args.name} is of kind {target.kind!r}, not offsite")
    asked = OffsiteEnrollRequest(name=args.name, accept=args.accept_host_key)
    final = enrollment_from_json(answer(cfg, asked))
    if args.json:
        print_json(final)
    else:
        _print_enrollment(final, args.name)
    preflight = final["preflight"]
    if not final["pinned"]:
        return EXIT_FAILED if final["pinned_before"] else EXIT_OK
    if not preflight or not preflight["ok"]:
        return EXIT_FAILED
    # Pinned, and the host takes the box's key: the repository, as an init job.
    events = ask(cfg, InitRequest(targets=(args.name,)))
    result = follow(events, quiet_progress=True)
    code = job_exit(result)
    outcome = outcomes_from_json(result).get(args.name)
    if outcome is not None and outcome["ok"] and not args.json:
        print(
            f"repository {outcome['repository_id']} {outcome['done']} at {outcome['location']}\n"
            "keep the passphrase file and an export of the key somewhere safe, away from the "
            "box: the host never has them, and without both the offsite copy cannot be read"
        )
    return code


def _print_enrollment(final: OffsiteEnrollment, name: str) -> None:
    if final["key_created"]:
        print(f"created the box's SSH key for {name}")
    print(f"host {final['host']} shows {final['host_key'].split()[0]} key {final['fingerprint']}")
    print(
        "\nthe host's operator puts this line in the authorized_keys of the box's account "
        "(it allows only an append-only borg serve of that repository):\n"
    )
    print(f"  {final['authorized_keys']}\n")
    if not final["pinned"]:
        if final["pinned_before"]:
            print(
                "WARNING: this is NOT the pinned host key: possible interception. Nothing "
                "is sent to this host.\nIf the host's operator confirms the key changed and "
                f"reads you {final['fingerprint']}, run:\n"
                f"  coffre offsite enroll {name} --accept-host-key {final['fingerprint']}"
            )
        else:
            print(
                "check this fingerprint with the host's operator (on the host: "
                "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); if it is the same, run:\n"
                f"  coffre offsite enroll {name} --accept-host-key {final['fingerprint']}"
            )
        return
    if final["pinned_now"]:
        print(f"host key {final['fingerprint']} pinned")
    elif final["pinned_in_config"]:
        print("the host's key is one of the configuration's host_keys")
    else:
        print("the host's key is the pinned one")
    preflight = final["preflight"]
    if preflight is None:
        return
    if preflight["ok"]:
        print("the host takes the box's key")
    elif "error" in preflight:
        print_error(preflight["error"], sys.stdout)


def print_target_status(target: TargetStatus) -> None:
    """The offsite lines of one target in ``coffre status`` (nothing for other kinds)."""
    host = target.get("offsite")
    if host is None:
        return
    reachable = host["reachable"]
    seen = "never checked" if reachable is None else ("reachable" if reachable else "UNREACHABLE")
    checked = f" (checked {when(host['checked_at'])})" if host["checked_at"] else ""
    problem = host["preflight_error"] or host["last_error_kind"]
    print(f"  host: {seen}{checked}{f', last error: {problem}' if problem else ''}")
    print(f"  sent: {size(host['bytes_sent'])} in all")


def print_uploading(report: StatusReport) -> None:
    """The ``uploading:`` line of ``coffre status``: the network lane's running job."""
    job = report["uploading"]
    if not job:
        return
    counters = job["counters"]
    sent = (
        f", {size(counters['deduplicated_size'])} sent" if "deduplicated_size" in counters else ""
    )
    print(
        f"uploading: {job['kind']} of {', '.join(job['targets'])} ({job['reason']}; "
        f"now {job['current_target']}{sent})"
    )
