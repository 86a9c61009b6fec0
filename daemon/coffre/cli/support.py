"""What every ``coffre`` subcommand shares: talking to the daemon, printing its events."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TextIO

from coffre.cli.client import request
from coffre.core.config_types import Config
from coffre.core.job_events import TargetDone, outcomes_from_json, result_from_json, stream_event
from coffre.core.messages import Event, Request, other_version
from coffre.core.printable import controls_escaped

EXIT_OK, EXIT_FAILED = 0, 1
#: The job ended, but a backup made its archive with borg's warnings (files not
#: backed up): a script must not take a partial backup for a success.
EXIT_WARNINGS = 7


def size(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def when(iso: str | None) -> str:
    return "never" if iso is None else iso.replace("T", " ")[:19]


def print_error(error: Mapping[str, object], out: TextIO) -> None:
    """``error: MESSAGE`` and ``what to do: HINT`` (an ErrorInfo, or what an old daemon sent).

    Both escaped but for their line breaks (see :func:`escaped_lines`). Raises nothing.
    """
    print(f"error: {escaped_lines(str(error.get('message', 'failed')))}", file=out)
    if error.get("hint"):
        print(f"  what to do: {escaped_lines(str(error['hint']))}", file=out)


def escaped_lines(text: str) -> str:
    """``text`` with each line escaped (core.printable), its line breaks kept.

    The last guard before the terminal: a message may quote borg (whose own
    messages may run over lines) or a name its maker did not escape; names are
    escaped where messages are made, and escaping twice changes nothing.
    """
    return "\n".join(controls_escaped(line) for line in text.split("\n"))


# --- talking to the daemon ---------------------------------------------------


def ask(cfg: Config, message: Request) -> Iterable[Event]:
    """The events the daemon of ``cfg`` answers ``message`` with (see ``client.request``)."""
    return request(cfg.paths.control_socket, message)


def last_event(events: Iterable[Event]) -> Event:
    final: Event = {}
    for event in events:
        final = event
    return final


class DaemonRefused(Exception):
    """The daemon answered a request with an error line (carried as ``event``)."""

    def __init__(self, event: Event) -> None:
        super().__init__(event.get("message", ""))
        self.event = event


def raise_if_error(event: Event) -> None:
    if event.get("event") == "error":
        raise DaemonRefused(event)


def print_queued(events: Iterable[Event], what: str) -> int:
    """Print that ``what`` (a job asked without ``--wait``) is queued; its exit code (0).

    Raises the CoffreError the daemon answered, or one saying it speaks
    another version when its answer names no queued job.
    """
    final = last_event(events)
    raise_if_error(final)
    queued = result_from_json(final).get("queued")
    if queued is None:
        raise other_version("the queued job")
    print(f"{what} of {', '.join(queued['targets'])} queued (job {queued['id']})")
    return EXIT_OK


def answer(cfg: Config, message: Request) -> Event:
    """The daemon's final line for ``message``; raises DaemonRefused when it is an error."""
    final = last_event(ask(cfg, message))
    raise_if_error(final)
    return final


def print_json(value: object) -> None:
    """``value`` on stdout as indented JSON, then a newline (what ``--json`` prints)."""
    json.dump(value, sys.stdout, indent=2)
    print()


def follow(events: Iterable[Event], *, quiet_progress: bool) -> Event:
    """Print a job's events as they come; return the final one."""
    tty = sys.stderr.isatty()
    final: Event = {}
    for line in events:
        final = line
        event = stream_event(line)
        if event is None:
            continue
        if event["event"] == "queued":
            print(f"job {event['job']['id']} queued", file=sys.stderr)
        elif event["event"] == "target_started":
            print(f"{event['target']}: started", file=sys.stderr)
        elif event["event"] == "progress" and tty and not quiet_progress:
            ratio = event.get("ratio")
            share = f" ~{ratio:.0%}" if ratio is not None else ""
            print(
                f"\r{event['target']}: {event.get('nfiles')} files, "
                f"{size(event.get('original_size'))}{share}   ",
                end="",
                file=sys.stderr,
            )
        elif event["event"] == "target_done":
            _print_target_done(event, tty=tty)
    return final


def _print_target_done(event: TargetDone, *, tty: bool) -> None:
    if tty:
        print("\r", end="", file=sys.stderr)
    if event["ok"] and event.get("outcome") == "warning":
        print(
            f"{event['target']}: WARNING, archive {event.get('archive')}: "
            f"{event.get('warning_summary')} (the journal names them)",
            file=sys.stderr,
        )
    elif event["ok"]:
        archive = event.get("archive")
        detail = f"archive {archive}" if archive else "done"
        print(f"{event['target']}: ok, {detail}", file=sys.stderr)
    else:
        print(f"{event['target']}: FAILED", file=sys.stderr)
        print_error(event.get("error") or {}, sys.stderr)


def job_exit(final: Event) -> int:
    """The exit code of a job's final event: EXIT_FAILED when a target failed, else
    EXIT_WARNINGS when a backup ended with warnings, else EXIT_OK."""
    raise_if_error(final)
    if final.get("event") != "result":
        return EXIT_FAILED
    if not final.get("ok") and "error" in final:
        print_error(final["error"], sys.stderr)
    if not final.get("ok"):
        return EXIT_FAILED
    if any(t.get("outcome") == "warning" for t in outcomes_from_json(final).values()):
        return EXIT_WARNINGS
    return EXIT_OK


def iso_day(text: str) -> date:
    """argparse type of a ``YYYY-MM-DD`` flag (``--since``, ``--date``): that date.

    Raises argparse.ArgumentTypeError (argparse then prints the usage and exits 2).
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
