"""The ``coffre`` command: one program, subcommands, clear exit codes.

Exit codes: 0 success; 1 a job failed; 2 bad usage or invalid configuration;
3 the daemon is not running; 4 permission refused; 5 not found (a path in no
archive, a find without match); 6 a restore would overwrite files; 7 a
backup made its archive with borg's warnings (files not backed up).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from coffre import __version__
from coffre.cli import audit as cli_audit
from coffre.cli import check as cli_check
from coffre.cli import disk as cli_disk
from coffre.cli import drill as cli_drill
from coffre.cli import incident as cli_incident
from coffre.cli import leds as cli_leds
from coffre.cli import offsite as cli_offsite
from coffre.cli import recover as cli_recover
from coffre.cli import restore as cli_restore
from coffre.cli import restore_time as cli_restore_time
from coffre.cli import share as cli_share
from coffre.cli.share_status import print_share
from coffre.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    DaemonRefused,
    answer,
    ask,
    escaped_lines,
    follow,
    job_exit,
    print_error,
    print_json,
    print_queued,
    size,
    when,
)
from coffre.config import loader as config
from coffre.config.cautions import config_warnings
from coffre.core.config_types import Config
from coffre.core.errors import CoffreError, ConfigError
from coffre.core.health import frozen_reason
from coffre.core.job_events import outcomes_from_json
from coffre.core.messages import (
    ArchivesRequest,
    BackupRequest,
    InitRequest,
    PruneRequest,
    StatusRequest,
)
from coffre.core.printable import controls_escaped
from coffre.core.reports import (
    ArchivesReport,
    CheckView,
    GuardView,
    IncidentView,
    StatusReport,
    TargetStatus,
    archives_from_json,
    status_from_json,
)

# --- subcommands --------------------------------------------------------------


def cmd_daemon(args: argparse.Namespace, cfg: Config) -> int:
    # The daemon, and all it imports, only for `coffre daemon`: the other commands
    # ask it over the socket and start without it.
    import asyncio

    from coffre.daemon.clock import SystemClock
    from coffre.daemon.notify import Notifier
    from coffre.daemon.service import Daemon
    from coffre.storage import logs  # the daemon only: the other commands start without logging

    logger = logs.setup(args.log_target)
    daemon = Daemon(cfg, clock=SystemClock(), notifier=Notifier(os.environ), logger=logger)
    return asyncio.run(daemon.run())


def cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else config.resolve_path(args.config, os.environ)
    cfg = config.load(path)
    names = ", ".join(f"{t.name} ({t.kind})" for t in cfg.targets)
    print(f"{path}: valid; targets: {names}")
    for warning in config_warnings(cfg):  # valid all the same: exit 0
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_status(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre status``: the box, then each target, then the disks (or ``--json``)."""
    report = status_from_json(answer(cfg, StatusRequest()))
    if args.json:
        print_json(report)
        return EXIT_OK
    _print_box(report)
    if "guard" in report:
        print_guard(report["guard"])
    checks = report.get("checks", {})
    for name, target in report["targets"].items():
        _print_target(name, target)
        for line in check_lines(checks.get(name, [])):
            print(f"  {line}")
    if report["disks"]:
        print("\nUSB disks")
        cli_disk.print_disks(report["disks"])
        for disk in report["disks"]:
            for line in check_lines(checks.get(disk["name"], [])):
                print(f"  {disk['name']}: {line}")
    if "restore" in report:
        cli_restore_time.print_restore_times(report["restore"])
    if "share" in report:
        print_share(report["share"])
    return EXIT_OK


def check_lines(checks: list[CheckView]) -> list[str]:
    """The lines of a target's scheduled checks in ``coffre status`` (none when it has none).

    One line with each kind's last complete pass (and a pass under way),
    then one per check whose last attempt failed (its sentence, escaped: it
    may quote borg) and one per damage not yet cleared by a clean pass.
    """
    if not checks:
        return []
    passes = []
    for check in checks:
        under_way = f", a pass under way since {when(check['pass_started'])}"
        passes.append(
            f"{check['kind']} {when(check['last_success'])}"
            f"{under_way if check['pass_started'] else ''}"
        )
    lines = [f"checks, last complete pass: {'; '.join(passes)}"]
    for check in checks:
        if check["last_ok"] is False:
            sentence = controls_escaped(check["last_error"] or "no reason recorded")
            lines.append(f"CHECK FAILED {when(check['last_attempt'])}: {sentence}")
        if check["damage_at"] is not None and check["last_ok"] is not False:
            lines.append(
                f"DAMAGE found by the {check['kind']} check on {when(check['damage_at'])}, "
                "not cleared by a complete pass since: see docs/repair.md"
            )
    return lines


def _print_box(report: StatusReport) -> None:
    """The head of ``coffre status``: time, problems, jobs, keys never exported."""
    print(f"coffre {__version__} at {when(report['now'])} ({report['timezone']})")
    print(f"next nightly run: {when(report['next_nightly'])}")
    for problem in report["problems"]:
        print(f"FAILURE: {problem}")
    running = report["running"]
    if running:
        progress = running["progress"]
        share = f", {progress:.0%}" if progress is not None else ""
        print(
            f"running: {running['kind']} of {', '.join(running['targets'])} "
            f"({running['reason']}; now {running['current_target']}{share})"
        )
    for repository in report["key_escrow"]:
        if repository["exported_at"] is None:
            print(
                f"WARNING: the key of {repository['target']} was never exported: "
                "run `coffre key export --paper` and keep the sheet with the passphrase"
            )
    cli_offsite.print_uploading(report)
    if "maintenance" in report:
        cli_check.print_maintenance(report["maintenance"])
    reading = report["reading"]
    if reading:
        print(f"reading: {reading['kind']} of {', '.join(reading['targets'])} (support)")
    for job in report["queued"]:
        print(f"queued: {job['kind']} of {', '.join(job['targets'])} ({job['reason']})")


def print_guard(guard: GuardView) -> None:
    """The guard's lines of ``coffre status``: open incidents, the clock, each target's night.

    Counts and figures only, as status sends them (the evidence is for
    ``coffre incident show``).
    """
    for incident in guard["incidents"]:
        _print_incident(incident)
    if guard["pruning_frozen"]:
        print("pruning frozen on every target; backups go on; `coffre incident show`")
    print(f"clock: {_clock_line(guard['clock_synchronised'])}")
    for name, night in guard["nights"].items():
        print(f"{name}, last night ({when(night['at'])}): {night_line(night['figures'])}")


def _print_incident(incident: IncidentView) -> None:
    print(
        f"FAILURE: {frozen_reason(incident['kind'])} since {when(incident['opened_at'])}"
        f" ({', '.join(incident['reasons']) or 'no reason recorded'})"
    )
    figures = ", ".join(f"{name} {_number(v)}" for name, v in incident["figures"].items())
    seen = incident["sightings"]
    print(
        f"  latest sighting ({seen} in all): {when(incident['latest_at'])} on "
        f"{incident['latest_target']}{': ' + figures if figures else ''}"
    )


def _clock_line(synchronised: bool | None) -> str:
    if synchronised is None:
        return "NTP synchronisation unknown (`timedatectl` tells)"
    if synchronised:
        return "NTP-synchronised"
    # Retention and the clock guard trust this clock: a wrong one is support's business.
    return "NOT synchronised (check `timedatectl` and the box's network; call support)"


def night_line(figures: dict[str, float]) -> str:
    """One short line of a night's ``figures``: what changed, the sample, the canaries.

    In: the figures by name (those it does not know are left out, all of
    them shown as ``name value`` when it knows none). Out: e.g. "12 added,
    40 modified, 3 vanished; 0 of 52 sampled look encrypted". Raises nothing.
    """
    parts = []
    changes = [
        f"{_number(figures[k])} {k}" for k in ("added", "modified", "vanished") if k in figures
    ]
    if changes:
        parts.append(", ".join(changes))
    if "sampled" in figures:
        suspects = _number(figures.get("suspects", 0))
        parts.append(f"{suspects} of {_number(figures['sampled'])} sampled look encrypted")
    if "canaries_checked" in figures:
        touched = _number(figures.get("canaries_touched", 0))
        parts.append(f"{touched} of {_number(figures['canaries_checked'])} canaries touched")
    if not parts:
        return ", ".join(f"{name} {_number(v)}" for name, v in figures.items()) or "no figures"
    return "; ".join(parts)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _print_target(name: str, target: TargetStatus) -> None:
    """One target of ``coffre status``: its repository, last runs, restore points, archives."""
    print(f"\ntarget {name} ({target['kind']}, {target['location']})")
    if target["repository_id"] is None:
        print(f"  not initialised: run `coffre target init {name}`")
    ok = target["last_success"]
    if ok:
        # The last archive made; one with borg's warnings is never called a success.
        partial = ok["outcome"] == "warning"
        print(
            f"  last {'backup (PARTIAL)' if partial else 'success'}: "
            f"{when(ok['finished_at'])}, archive {ok['archive']}, "
            f"{ok['nfiles']} files, {size(ok['original_size'])} "
            f"({size(ok['deduplicated_size'])} new), {ok['duration'] or 0:.0f} s"
        )
        if partial:
            print(
                f"  WARNING: {ok['warning_summary']} (`journalctl -u coffre -p warning` names them)"
            )
    else:
        print("  last success: never")
    failure = target["last_failure"]
    if failure:
        older = (
            ok is not None
            and failure["started_at"] is not None
            and ok["started_at"] is not None
            and datetime.fromisoformat(failure["started_at"])
            < datetime.fromisoformat(ok["started_at"])
        )
        # Recorded as the error said it: borg's words may quote a name from the share.
        message = controls_escaped(failure["error_message"] or "")
        print(
            f"  last failure: {when(failure['finished_at'])} [{failure['error_kind']}] "
            f"{message}{' (since succeeded)' if older else ''}"
        )
    if target["slots"]:
        marks = " ".join(
            f"{slot} {'✓' if present else '✗'}" for slot, present in target["slots"].items()
        )
        print(f"  restore points: {marks}")
    cli_offsite.print_target_status(target)
    _print_archives(target, indent="  ")


def _print_archives(target: ArchivesReport, indent: str) -> None:
    if not target["listed"]:
        print(f"{indent}archives: not listed yet (the first backup lists them)")
        return
    print(f"{indent}archives ({len(target['archives'])}):")
    for archive in target["archives"]:
        reasons = ", ".join(archive["reasons"]) if archive["reasons"] else ""
        tag = reasons or ("(to be deleted)" if archive["ours"] else "(not coffre's)")
        # Whoever can write the repository names its archives: escaped (core.printable).
        name = controls_escaped(archive["name"])
        print(f"{indent}  {name:<40} {when(archive['time'])}  {tag}")


def cmd_archives(args: argparse.Namespace, cfg: Config) -> int:
    reports = archives_from_json(answer(cfg, ArchivesRequest(targets=tuple(args.target or ()))))
    if args.json:
        print_json(reports)
        return EXIT_OK
    for name, target in reports.items():
        print(f"target {name}")
        _print_archives(target, indent="  ")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, cfg: Config) -> int:
    events = ask(cfg, BackupRequest(targets=tuple(args.target or ()), wait=args.wait))
    if not args.wait:
        return print_queued(events, "backup")
    return job_exit(follow(events, quiet_progress=False))


def cmd_prune(args: argparse.Namespace, cfg: Config) -> int:
    final = follow(
        ask(cfg, PruneRequest(targets=tuple(args.target or ()), dry_run=args.dry_run)),
        quiet_progress=True,
    )
    code = job_exit(final)
    if args.json:
        print_json(outcomes_from_json(final))
        return code
    for name, outcome in outcomes_from_json(final).items():
        if not outcome["ok"]:
            continue
        verb = "would delete" if outcome["dry_run"] else "deleted"
        print(f"target {name}:")
        for kept in outcome["keep"]:
            print(f"  keep    {kept['name']:<40} {', '.join(kept['reasons'])}")
        for name_deleted in outcome["delete"]:
            print(f"  {verb:<7} {name_deleted}")
        frozen_by = ", ".join(outcome.get("frozen_by", []))
        for name_held in outcome.get("held", []):
            print(f"  held    {name_held} (pruning frozen: {frozen_by} incident)")
        for name_ignored in outcome["ignored"]:  # named by whoever made them: escaped
            print(f"  ignore  {controls_escaped(name_ignored)} (not coffre's)")
    return code


def cmd_target_init(args: argparse.Namespace, cfg: Config) -> int:
    cfg.target(args.name)  # an unknown name fails here, before the daemon is asked
    final = follow(
        ask(cfg, InitRequest(targets=(args.name,), adopt=args.adopt, replace=args.replace)),
        quiet_progress=True,
    )
    code = job_exit(final)
    outcome = outcomes_from_json(final).get(args.name)
    if outcome is not None and outcome["ok"]:
        print(
            f"target {args.name}: repository {outcome['repository_id']} {outcome['done']} "
            f"at {outcome['location']}"
        )
        print(
            "keep the passphrase file and an export of the key somewhere safe, "
            "away from the box: without both, the backups cannot be read"
        )
    return code


# --- parsing -------------------------------------------------------------------


def _add_job_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``status``, ``backup``, ``archives`` and ``prune``, to the subcommands ``sub``."""
    st = sub.add_parser("status", help="how each target stands")
    st.add_argument("--json", action="store_true", help="machine-readable output")

    backup = sub.add_parser("backup", help="back up now")
    backup.add_argument("--target", action="append", metavar="NAME", help="only this target")
    backup.add_argument(
        "--wait", action="store_true", help="follow the backup; exit non-zero if it fails"
    )

    archives = sub.add_parser("archives", help="the archives of each target, with why kept")
    archives.add_argument("--target", action="append", metavar="NAME")
    archives.add_argument("--json", action="store_true")

    prune = sub.add_parser("prune", help="apply retention (J, J-1, J-2, M, M-1) now")
    prune.add_argument("--target", action="append", metavar="NAME")
    prune.add_argument("--dry-run", action="store_true", help="only show what would go")
    prune.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """The ``coffre`` command's parser: every subcommand, each taking ``--config`` too."""
    parser = argparse.ArgumentParser(
        prog="coffre", description="Backups of the practice's share, on this box and away."
    )
    parser.add_argument("--version", action="version", version=f"coffre {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $COFFRE_CONFIG, else /etc/coffre/coffre.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    daemon = sub.add_parser("daemon", help="run the daemon (systemd starts it)")
    daemon.add_argument(
        "--log-target",
        choices=("auto", "journal", "stderr"),
        default="auto",
        help="where logs go (auto: journald when it runs, else stderr)",
    )

    cfg = sub.add_parser("config", help="check the configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = cfg_sub.add_parser("check", help="report every problem of a configuration file")
    check.add_argument("path", nargs="?", help="file to check (default: the configuration)")

    _add_job_parsers(sub)
    cli_disk.add_parser(sub)
    cli_offsite.add_parser(sub)
    cli_restore.add_parsers(sub)
    cli_audit.add_parser(sub)
    cli_check.add_parser(sub)
    cli_incident.add_parser(sub)
    cli_drill.add_parser(sub)
    cli_leds.add_parser(sub)
    cli_recover.add_parser(sub)
    cli_share.add_parser(sub)
    target = sub.add_parser("target", help="manage targets' repositories")
    target_sub = target.add_subparsers(dest="target_command", required=True, metavar="ACTION")
    init = target_sub.add_parser("init", help="create a target's repository, record its ID")
    init.add_argument("name")
    init.add_argument(
        "--adopt", action="store_true", help="record an existing repository found there"
    )
    init.add_argument(
        "--replace", action="store_true", help="create a new one where the recorded one is lost"
    )
    _accept_config_everywhere(parser)
    return parser


def _accept_config_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let every subcommand, at every level, take ``--config`` after its name too.

    In: the main parser, whose subcommands are all added. Out: each subparser
    below it has a ``--config`` option storing into ``args.config``. Raises
    nothing (argparse.ArgumentError if a subcommand already defines ``--config``).

    People type the option where they think of it (`coffre status --config
    FILE`). Its default is SUPPRESS: argparse copies a subcommand's namespace
    over the main one, so only a value given after the subcommand is copied,
    and one given before it is kept when none comes after. Done here, by
    walking the tree, so that a subcommand added later gets it too.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        # An alias maps to the same parser: add the option once per parser.
        for subparser in {id(p): p for p in action.choices.values()}.values():
            subparser.add_argument(
                "--config",
                metavar="PATH",
                default=argparse.SUPPRESS,
                help="configuration file (as `coffre --config PATH ...`)",
            )
            _accept_config_everywhere(subparser)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coffre`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "config":
            return cmd_config_check(args)
        if args.command == "recover":
            # A new box: no daemon, maybe no valid configuration yet.
            return cli_recover.cmd_recover(args)
        cfg = config.load(
            # Not even for the daemon: a missing share or passphrase file is a
            # box problem it shows and waits out (coffre.daemon.service), not a reason
            # to exit 2, which systemd would never restart.
            config.resolve_path(args.config, os.environ),
            check_files=False,
        )
        handlers = {
            "daemon": cmd_daemon,
            "status": cmd_status,
            "backup": cmd_backup,
            "archives": cmd_archives,
            "prune": cmd_prune,
            "target": cmd_target_init,
            "disk": cli_disk.cmd_disk,
            "offsite": cli_offsite.cmd_offsite,
            "find": cli_restore.cmd_find,
            "restore": cli_restore.cmd_restore,
            "browse": cli_restore.cmd_browse,
            "key": cli_restore.cmd_key,
            "audit": cli_audit.cmd_audit,
            "check": cli_check.cmd_check,
            "incident": cli_incident.cmd_incident,
            "drill": cli_drill.cmd_drill,
            "leds": cli_leds.cmd_leds,
            "share": cli_share.cmd_share,
        }
        return handlers[args.command](args, cfg)
    except ConfigError as error:
        print(escaped_lines(error.message), file=sys.stderr)  # one problem a line
        return error.exit_code
    except CoffreError as error:
        print_error({"message": error.message, "hint": error.hint}, sys.stderr)
        return error.exit_code
    except DaemonRefused as refused:
        print_error(refused.event, sys.stderr)
        return int(refused.event.get("exit_code", EXIT_FAILED))
    except KeyboardInterrupt:
        return 130
