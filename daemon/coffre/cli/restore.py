"""``coffre find``, ``restore``, ``browse`` and ``key export``: what support staff run over SSH.

Each asks the daemon (which owns disks and repositories) and says who asks:
``SUDO_USER`` or the login name, and ``SSH_CONNECTION``, for the audit log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from coffre.cli.client import peer_pid, person_from_env, request
from coffre.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    print_error,
    print_json,
    raise_if_error,
    size,
    when,
)
from coffre.core.config_types import Config
from coffre.core.errors import DaemonUnavailable, NotInArchive
from coffre.core.job_events import (
    MountedEvent,
    TargetOutcome,
    outcomes_from_json,
    result_from_json,
    stream_event,
)
from coffre.core.messages import (
    PING,
    BrowseRequest,
    ErrorInfo,
    Event,
    FindRequest,
    KeyExportRequest,
    ReadRequest,
    RestoreRequest,
)
from coffre.core.printable import controls_escaped
from coffre.core.request_check import check_request

#: Exit code of a find that matched nothing (as a restore of a path in no archive).
EXIT_NOT_FOUND = NotInArchive.exit_code


def add_parsers(sub: Any) -> None:
    """Add ``find``, ``restore``, ``browse`` and ``key`` to the main parser's subparsers."""
    find = sub.add_parser("find", help="which archives hold files matching a pattern")
    find.add_argument("pattern", help="part of a name (dupont), or a glob (Patients/*.pdf)")
    find.add_argument("--target", metavar="NAME", help="search this target (default: fastest)")
    find.add_argument("--since", metavar="YYYY-MM-DD", help="only archives made since that day")
    find.add_argument("--json", action="store_true")

    restore = sub.add_parser("restore", help="bring files back into the share")
    restore.add_argument(
        "paths", nargs="+", metavar="PATH", help="relative to the share, or absolute"
    )
    restore.add_argument("--target", metavar="NAME", help="restore from this target")
    which = restore.add_mutually_exclusive_group()
    which.add_argument("--archive", metavar="NAME", help="this archive (see `coffre archives`)")
    which.add_argument("--date", metavar="YYYY-MM-DD", help="the last archive of that day")
    restore.add_argument(
        "--to", metavar="DIR", help="write there (default: <share>/_restaurations/<archive>/)"
    )
    restore.add_argument("--overwrite", action="store_true", help="replace files that exist")
    restore.add_argument("--json", action="store_true")

    browse = sub.add_parser(
        "browse",
        help="look through archives in a read-only folder",
        description="Mount the archives read-only; print the folder's path on the first line "
        "of stdout. On a terminal a shell opens inside it and the mount ends with the shell. "
        "Otherwise (a script), or with --for, the mount lasts until --for SECONDS are over, "
        "the command gets SIGTERM, SIGINT or SIGHUP, or its standard input, if it is a pipe, "
        "ends (/dev/null or a file count for nothing); the command exits once it is unmounted. "
        "In every case the box ends it after restore.browse_idle seconds unused and "
        "restore.browse_max seconds at most.",
    )
    browse.add_argument("--target", metavar="NAME")
    which = browse.add_mutually_exclusive_group()
    which.add_argument("--archive", metavar="NAME")
    which.add_argument("--date", metavar="YYYY-MM-DD")
    browse.add_argument(
        "--for",
        dest="hold_for",
        type=_seconds,
        metavar="SECONDS",
        help="keep the mount that long, then unmount; no shell, even on a terminal",
    )

    key = sub.add_parser("key", help="escrow of the repositories' keys")
    actions = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="print each repository's key, to keep on paper")
    export.add_argument("--paper", action="store_true", required=True, help="the printable form")
    export.add_argument("--target", action="append", metavar="NAME", help="only this one")


def _ask(
    cfg: Config, message: ReadRequest, *, hold: list[socket.socket] | None = None
) -> Iterable[Event]:
    """Send the audited ``message``, saying who asks; the daemon's events."""
    check_request(message.to_json())  # the daemon refuses the same; saying it here needs no daemon
    asked = replace(message, person=person_from_env(os.environ, os.getuid()))
    return request(cfg.paths.control_socket, asked, on_socket=hold)


def _result(events: Iterable[Event], *, tty: bool) -> Event:
    """Show waiting, archive and progress events; return the final one."""
    final: Event = {}
    for line in events:
        final = line
        event = stream_event(line)
        if event is None:
            continue
        if event["event"] == "waiting":
            print(controls_escaped(event["message"]), file=sys.stderr)
        elif event["event"] == "archive":
            archive = controls_escaped(event["archive"])
            print(f"archive {archive} of {event['target']}", file=sys.stderr)
        elif event["event"] == "progress" and tty and event.get("items") is not None:
            print(
                f"\r{event['target']}: {event.get('items')} items restored   ",
                end="",
                file=sys.stderr,
            )
        elif event["event"] == "disk_released" and event["safe_to_remove"]:
            print(f"disk {event['target']}: safe to remove", file=sys.stderr)
    if tty:
        print("\r", end="", file=sys.stderr)
    raise_if_error(final)
    return final


def _outcome(final: Event) -> tuple[str, TargetOutcome]:
    """The one target of a read job's result and its outcome."""
    outcomes = outcomes_from_json(final)
    if not outcomes:
        failed: ErrorInfo = {"kind": "unknown", "message": "failed", "hint": ""}
        return "", {"ok": False, "error": final.get("error") or failed}
    return next(iter(outcomes.items()))


def _failed(outcome: TargetOutcome) -> int:
    """Print why ``outcome`` failed; its exit code."""
    error = outcome.get("error")
    if error is None:
        print_error({}, sys.stderr)
        return EXIT_FAILED
    print_error(error, sys.stderr)
    return int(error.get("exit_code", EXIT_FAILED))


def cmd_find(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre find``: hits grouped by archive, newest first."""
    message = FindRequest(pattern=args.pattern, target=args.target, since=args.since)
    final = _result(_ask(cfg, message), tty=sys.stderr.isatty())
    target, outcome = _outcome(final)
    if not outcome["ok"]:
        return _failed(outcome)
    if args.json:
        print_json({"target": target, **outcome})  # the exact names: json escapes controls
    else:
        current = None
        for hit in outcome["hits"]:
            if hit["archive"] != current:
                current = hit["archive"]
                print(f"{controls_escaped(current)} ({target}, made {when(hit['archive_time'])})")
            kind = "folder" if hit["type"] == "d" else size(hit["size"])
            print(f"  {when(hit['mtime'])}  {kind:>9}  {controls_escaped(hit['path'])}")
        if outcome["truncated"]:
            print(f"... {outcome['total']} matches in all: narrow the pattern or use --since")
    if not outcome["hits"]:
        print(
            f"nothing matches {args.pattern!r} in the {outcome['archives_searched']} archive(s) "
            f"of {target}",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre restore``: what was restored, and where."""
    tty = sys.stderr.isatty()
    message = RestoreRequest(
        paths=tuple(args.paths),
        target=args.target,
        archive=args.archive,
        date=args.date,
        to=None if args.to is None else str(Path(args.to).absolute()),
        overwrite=args.overwrite,
        progress=tty,
    )
    final = _result(_ask(cfg, message), tty=tty)
    target, outcome = _outcome(final)
    if args.json:
        print_json({"target": target, **outcome})
    if not outcome["ok"]:
        return _failed(outcome)
    if not args.json:
        archive = controls_escaped(str(outcome["archive"]))
        print(
            f"restored {outcome['nfiles']} file(s), {size(outcome['nbytes'])}, "
            f"from archive {archive} of {target}:"
        )
        for path in outcome["written"]:
            print(f"  {controls_escaped(path)}")
        for warning in outcome.get("warnings", []):  # borg's, naming the file
            print(f"warning: {controls_escaped(warning)}", file=sys.stderr)
    return EXIT_OK


def cmd_browse(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre browse``: mount, then a shell inside (a terminal) or hold it (a script).

    Without a terminal, or with ``--for``: see ``_hold_without_shell``.
    """
    held: list[socket.socket] = []
    events = iter(
        _ask(
            cfg,
            BrowseRequest(target=args.target, archive=args.archive, date=args.date),
            hold=held,
        )
    )
    mounted = _until_mounted(events)
    if isinstance(mounted, int):
        return mounted
    path = mounted["path"]
    sock = held[0]
    daemon = peer_pid(sock)
    # No stdin at all (fd 0 closed) leaves sys.stdin None: a script.
    shell = args.hold_for is None and sys.stdin is not None and sys.stdin.isatty()
    watch_input = not shell and _input_is_a_pipe()
    release = None if shell else _Release(sock)  # before the path: a script may signal at once
    print(path, flush=True)
    idle = cfg.restore.browse_idle
    ends = _what_ends_it(shell=shell, hold_for=args.hold_for, watch_input=watch_input)
    print(
        f"read-only; unmounted when {' or '.join(ends)}, or after {idle // 60 or 1} min unused",
        file=sys.stderr,
    )
    stop = threading.Event()
    threading.Thread(
        target=_ping_while_used, args=(sock, Path(path), idle, stop), daemon=True
    ).start()
    # Under systemd the daemon has a mount namespace of its own: the folder
    # exists only there, and a shell must enter it to see it.
    own = _mount_namespace("self") == _mount_namespace(str(daemon))
    enter = ["nsenter", f"--mount=/proc/{daemon}/ns/mnt", "--"]
    try:
        if release is None:
            _shell_inside(path, None if own else enter)
            return EXIT_OK
        if not own:
            print(f"to look inside: sudo {' '.join(enter)} ls {shlex.quote(path)}", file=sys.stderr)
        return _hold_without_shell(events, release, hold_for=args.hold_for, watch_input=watch_input)
    finally:
        stop.set()
        if release is not None:
            release.restore_signals()


def _until_mounted(events: Iterator[Event]) -> MountedEvent | int:
    """The ``mounted`` event of a browse, or the exit code when it ends before (told why).

    Raises DaemonRefused for an error line.
    """
    for line in events:
        raise_if_error(line)
        if line.get("event") == "result":
            _, outcome = _outcome(line)
            return EXIT_OK if outcome["ok"] else _failed(outcome)
        event = stream_event(line)
        if event is None:
            continue
        if event["event"] == "waiting":
            print(controls_escaped(event["message"]), file=sys.stderr)
        if event["event"] == "mounted":
            return event
    return EXIT_FAILED


def _what_ends_it(*, shell: bool, hold_for: int | None, watch_input: bool) -> list[str]:
    """What ends a browse, as told to the person."""
    if shell:
        return ["the shell exits"]
    return [
        *([f"{hold_for} s are over"] if hold_for is not None else []),
        *(["this command's input ends"] if watch_input else []),
        "this command is stopped (SIGTERM, SIGINT, SIGHUP)",
    ]


def _shell_inside(path: str, enter: list[str] | None) -> None:
    """Run the person's shell in ``path``; ``enter``: the nsenter prefix of the daemon's
    mount namespace, when the folder exists only there (under systemd)."""
    program = os.environ.get("SHELL") or "/bin/sh"
    print("a shell opens inside it: type `exit` to leave", file=sys.stderr)
    if enter is None:
        subprocess.run([program], cwd=path, check=False)
        return
    # Not `nsenter --wd`: util-linux 2.38 opens that folder before
    # entering, so the shell would sit in the empty folder under the mount.
    cd_then_shell = 'cd -- "$1" && exec "$2"'
    subprocess.run([*enter, "/bin/sh", "-c", cd_then_shell, "sh", path, program], check=False)


def _mount_namespace(pid: str) -> str:
    return str(Path(f"/proc/{pid}/ns/mnt").readlink())


def _ping_while_used(sock: socket.socket, path: Path, idle: int, stop: threading.Event) -> None:
    """Tell the daemon the mount is in use while a process works in it (it may not see them)."""
    from coffre.targets.usb import devices  # browse only: the other commands start without asyncio

    step = max(min(idle / 4, 30.0), 0.25)
    while not stop.wait(step):
        if devices.in_use(path, ignore=frozenset({os.getpid()})):
            try:
                sock.sendall(PING)
            except OSError:
                return


def _seconds(text: str) -> int:
    """``--for``'s value: a whole number of seconds, at least 1 (ArgumentTypeError otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 second, got {value}")
    return value


def _input_is_a_pipe() -> bool:
    """Whether our standard input is a pipe or a socket: then its end ends a browse.

    A script's background job gets /dev/null as input (POSIX sh), which ends
    at once: /dev/null, a file, a closed input count for nothing, else such
    a browse would unmount within the second. Raises nothing.
    """
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


#: Signals that end a browse held by a script, which then waits for the unmount.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Release:
    """Ends a browse held without a shell, once, for the first reason that comes.

    Made, it catches ENDING_SIGNALS not ignored (until ``restore_signals``): a
    signal releases the mount instead of killing the command; a second one kills.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        #: Why it was released (None: not by us; the daemon ended it).
        self.reason: str | None = None
        # A signal ignored from the start stays so: a shell ignores SIGINT for
        # its background jobs, and a Ctrl-C meant for the script is not ours.
        self._previous = {
            s: signal.signal(s, self._on_signal)
            for s in ENDING_SIGNALS
            if signal.getsignal(s) is not signal.SIG_IGN
        }

    def __call__(self, reason: str) -> None:
        """Release the mount (``reason`` is shown); later calls do nothing. Raises nothing."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
        # Half-close: the daemon reads our end and unmounts, and we still read
        # its answer, so that the mount is gone when this command exits.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def _on_signal(self, signum: int, _frame: object) -> None:
        for ending in self._previous:
            signal.signal(ending, signal.SIG_DFL)  # a second one ends us at once
        self(signal.Signals(signum).name)

    def restore_signals(self) -> None:
        """Put back the handlers found at creation."""
        for ending, handler in self._previous.items():
            signal.signal(ending, handler)


def _hold_without_shell(
    events: Iterator[Event], release: _Release, *, hold_for: int | None, watch_input: bool
) -> int:
    """Hold the mount until ``hold_for`` seconds, a signal (``release``), the end of a
    piped input (``watch_input``), or the daemon's end of it (idle, longest).

    Returns EXIT_OK once the daemon has answered that it unmounted (or went
    away), after printing why and after how long. Raises nothing of its own.
    """

    def release_at_eof() -> None:
        # os.read, not sys.stdin: a thread blocked in a buffered read holds
        # its lock, and the interpreter aborts at exit when it cannot take it.
        with contextlib.suppress(OSError):
            while os.read(0, 65536):
                pass
        release("end of input")

    if watch_input:
        threading.Thread(target=release_at_eof, daemon=True).start()
    timer = None
    if hold_for is not None:
        timer = threading.Timer(hold_for, release, args=(f"--for {hold_for} s over",))
        timer.daemon = True
        timer.start()
    try:
        for event in events:
            if event.get("event") == "result":
                _, outcome = _outcome(event)
                mounted_for = outcome.get("mounted_for")
                after = "" if mounted_for is None else f" after {mounted_for:.0f} s"
                ended = release.reason or outcome.get("ended", "ended")
                print(f"unmounted ({ended}){after}", file=sys.stderr)
                break
    except (DaemonUnavailable, OSError):
        pass  # the daemon went away (it stops): it unmounted on its way out
    finally:
        if timer is not None:
            timer.cancel()
    return EXIT_OK


def cmd_key(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre key export --paper``: every repository's key and how to use it."""
    final = _result(_ask(cfg, KeyExportRequest(targets=tuple(args.target or ()))), tty=False)
    code = EXIT_OK
    print(ESCROW_HEADER)
    for name, outcome in outcomes_from_json(final).items():
        if not outcome["ok"]:
            print(f"\n--- {name}: NOT EXPORTED ---", file=sys.stderr)
            code = _failed(outcome)
            continue
        print(f"\n--- target {name}: {outcome['location']}")
        print(f"    repository ID {outcome['repository_id']}\n")
        print(outcome["paper"].rstrip("\n"))
    for disk in result_from_json(final).get("absent_disks", []):
        print(
            f"\n--- disk {disk}: not plugged in; run `coffre key export --paper --target {disk}` "
            "and plug it in when asked",
            file=sys.stderr,
        )
    print(ESCROW_FOOTER)
    return code


ESCROW_HEADER = """\
COFFRE KEY ESCROW: print this, keep it with the passphrase, away from the box.
Without the passphrase AND these keys, no backup can be read after the box is lost."""

ESCROW_FOOTER = """
HOW TO RECOVER (docs/disaster-recovery.md):
  on a new box:  coffre recover --from ssh://USER@HOST:PORT/PATH --passphrase-file FILE \\
                     --paper-key THIS_SHEET_TYPED_IN --host-key SHA256:... --list
  by hand:       borg key import --paper REPOSITORY   (type the lines of that repository)"""
