"""``coffre recover``: a new box gets everything back from an offsite host (disaster recovery).

Runs in the CLI process, as root, without the daemon and without a valid
configuration: everything comes from the flags; a configuration that loads
only gives defaults (the share for ``--to``, the state dir, borg's binary and
lock wait, the timezone of ``--date``). The steps are :mod:`coffre.recovery`'s;
the runbook is ``docs/disaster-recovery.md``.

Exit codes: 0 done; 1 failed (host key mismatch, the recovery key not yet
authorized on the host, borg failed...); 2 bad usage (a typo in the paper
key, a paper key of another repository, a malformed flag); 4 not root;
5 a path asked is not in the archive; 6 files are in the way (no
``--overwrite``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from coffre.cli.support import EXIT_FAILED, EXIT_OK, iso_day, print_error, size
from coffre.config import loader as config
from coffre.core.config_keys import default_str
from coffre.core.config_types import BorgConfig, Config, PathsConfig
from coffre.core.errors import (
    CoffreError,
    ConfigError,
    OffsiteAuthRefused,
    PermissionRefused,
    UsageError,
)
from coffre.core.printable import controls_escaped
from coffre.core.sshkeys import PublicKey, authorized_keys_line

# `coffre --help` and every other command import this module for its parser:
# borg's runner, the recovery, the audit log, asyncio and paramiko (through
# the offsite ssh module) are imported in the functions that run a recovery.
if TYPE_CHECKING:
    import logging

    from coffre.borg.records import Progress
    from coffre.borg.runner import BorgRunner
    from coffre.core.paper_key import PaperKey
    from coffre.recovery.inputs import Source
    from coffre.recovery.recover import Recovered
    from coffre.recovery.repository import Repository

__all__ = ["add_parser", "cmd_recover"]

#: Where the state (the audit log, the recovery key) goes when nothing says otherwise.
DEFAULT_STATE = PathsConfig().state
#: The timezone of ``--date`` and of the times shown, without a configuration.
DEFAULT_TIMEZONE = default_str("schedule.timezone")
#: borg's ``--lock-wait`` and stop timeout without a configuration (the config's defaults).
DEFAULT_LOCK_WAIT = BorgConfig().lock_wait
DEFAULT_STOP_TIMEOUT = float(BorgConfig().stop_timeout)
#: The audit log's file name under the state dir (as ``coffre.storage.audit.audit_path``).
AUDIT_FILE = "audit.log"


# --- the arguments -----------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Add the ``recover`` command to the main parser's subparsers.

    Long (82 lines) by nature: one ``add_argument`` per flag, in the order
    ``--help`` shows them; splitting it would only scatter the list.
    """
    parser = sub.add_parser(
        "recover",
        help="disaster recovery: get the data back from an offsite host onto this (new) box",
        description="Get the practice's data back from an offsite host, with the passphrase "
        "and the paper key alone. Runs without the daemon and without a configuration. "
        "See docs/disaster-recovery.md.",
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the offsite repository, ssh://user@host:port/path (from the host's operator)",
    )
    parser.add_argument(
        "--passphrase-file",
        required=True,
        type=Path,
        metavar="FILE",
        help="a file holding the passphrase (typed from the paper copy)",
    )
    parser.add_argument(
        "--paper-key",
        required=True,
        type=Path,
        metavar="FILE",
        help="the paper key typed back in (or the printout of `coffre key export --paper`)",
    )
    parser.add_argument(
        "--host-key",
        required=True,
        metavar="SHA256:...",
        help="the fingerprint of the host's SSH key, read to you by the host's operator",
    )
    parser.add_argument(
        "--ssh-key",
        type=Path,
        metavar="FILE",
        help="this box's SSH key for the recovery (default STATE/ssh/recover_ed25519; "
        "created, with the line for the host's operator, when missing)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"where the audit log and the recovery key go (default {DEFAULT_STATE})",
    )
    parser.add_argument("--list", action="store_true", help="list the archives and stop")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--archive", metavar="NAME", help="this archive (default: the latest)")
    which.add_argument(
        "--date",
        type=iso_day,
        metavar="YYYY-MM-DD",
        help="the latest complete archive of that day",
    )
    parser.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="write into DIR (default: the share of this box's configuration)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files in the way")
    parser.add_argument(
        "--replace-key",
        action="store_true",
        help="write the paper key into the repository even though it has a key "
        "(when that key is damaged in a way borg takes for a wrong passphrase)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="only these paths (relative to the share, or absolute); default: everything",
    )


# --- the command --------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """Everything checked before the network: flags, files, defaults from the config."""

    source: Source
    fingerprint: str
    passphrase_file: Path
    keys: tuple[PaperKey, ...]
    state_dir: Path
    key_file: Path
    to: Path | None
    share_paths: tuple[Path, ...]
    tz: ZoneInfo
    binary: str
    lock_wait: int
    stop_timeout: float


def cmd_recover(args: argparse.Namespace) -> int:
    """Run ``coffre recover``; returns the exit code.

    Raises CoffreError (the caller prints it and exits with its code):
    PermissionRefused when not root, UsageError and PaperKeyInvalid for bad
    input, HostKeyMismatch, PaperKeyMismatch, WouldOverwrite... as the
    recovery fails.
    """
    import asyncio

    if os.geteuid() != 0:
        raise PermissionRefused(
            "coffre recover must run as root: it restores files with their owners",
            hint="run it with sudo",
        )
    cfg = _load_config(getattr(args, "config", None))
    inputs = _inputs(args, cfg)
    if not inputs.key_file.exists():
        return _new_key(inputs, as_json=args.json)
    logger = _logger()
    record = _audit_recorder(args, inputs, logger)
    try:
        answer = asyncio.run(_run(args, inputs, logger))
    except BaseException as error:
        # Recorded, then raised again: every outcome goes into the audit log.
        with _audit_failure_reported():
            record(f"failed: {_failure_kind(error)}", args.archive, {})
        if isinstance(error, OSError):
            raise CoffreError(
                f"cannot write {error.filename or 'a file'}: {error.strerror or error}",
                hint="check that place (free space, permissions), then run again",
            ) from error
        raise
    with _audit_failure_reported():
        record("ok", answer.get("archive"), _audit_details(answer))
    _print(answer, args, inputs)
    return EXIT_OK


_Record = Callable[[str, str | None, dict[str, Any]], None]


def _audit_recorder(args: argparse.Namespace, inputs: _Inputs, logger: logging.Logger) -> _Record:
    """Record the recovery asked in the audit log; return what records its outcome.

    The returned function takes (outcome, archive, details) and raises
    OSError when the log cannot be written. Raises CoffreError when the
    "asked" entry cannot be written: nothing is read without it.
    """
    from coffre.cli.client import person_from_env
    from coffre.storage.audit import AuditLog

    audit = AuditLog(inputs.state_dir / AUDIT_FILE, logger)
    person = person_from_env(os.environ, os.getuid()).to_json()
    asked = list(args.paths)

    def record(outcome: str, archive: str | None, details: dict[str, Any]) -> None:
        audit.record(
            op="recover",
            at=datetime.now().astimezone(),
            person=person,
            target=inputs.source.public,
            archive=archive,
            paths=asked,
            outcome=outcome,
            details={"action": "list" if args.list else "recover", **details},
        )

    try:
        record("asked", args.archive, {"to": None if inputs.to is None else str(inputs.to)})
    except OSError as error:
        raise CoffreError(
            f"cannot write the audit log {audit.path}: {error.strerror or error}",
            hint="every access to the backups is recorded: give a writable --state-dir",
        ) from None
    return record


def _failure_kind(error: BaseException) -> str:
    """The audit's word for how the recovery failed: the error's kind, or how it stopped."""
    import asyncio

    if isinstance(error, CoffreError):
        return error.kind
    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return "interrupted"
    return "internal"


@contextlib.contextmanager
def _audit_failure_reported() -> Iterator[None]:
    """Report, not raise, an audit write failing once the work is done (or has failed).

    The "asked" entry is on disk already; the person must still learn the
    outcome of the recovery itself.
    """
    try:
        yield
    except OSError as error:
        print(f"warning: the audit log could not be written: {error}", file=sys.stderr)


def _audit_details(answer: dict[str, Any]) -> dict[str, Any]:
    keys = ("repository_id", "key_imported", "destinations", "nfiles", "nbytes", "archives")
    return {k: answer[k] for k in keys if k in answer}


def _load_config(cli_value: str | None) -> Config | None:
    """The configuration if one loads (only for defaults); None otherwise."""
    path = config.resolve_path(cli_value, os.environ)
    if not path.exists():
        return None
    try:
        # check_files=False: the passphrase file it names may not exist on a new box.
        return config.load(path, check_files=False)
    except ConfigError as error:
        print(
            f"note: {path} is not a valid configuration ({len(error.problems)} problem(s)); "
            "taking everything from the flags",
            file=sys.stderr,
        )
        return None


def _inputs(args: argparse.Namespace, cfg: Config | None) -> _Inputs:
    """The flags checked and completed with the configuration's defaults (no network)."""
    from coffre.borg.env import default_binary
    from coffre.recovery.host import RECOVER_KEY_NAME
    from coffre.recovery.inputs import (
        check_fingerprint,
        parse_source,
        read_paper_keys,
        read_passphrase,
    )

    source = parse_source(args.source)
    fingerprint = check_fingerprint(args.host_key)
    read_passphrase(args.passphrase_file)  # fail now, not after the network
    keys = read_paper_keys(args.paper_key)
    if args.list and (args.paths or args.to or args.overwrite or args.archive or args.date):
        raise UsageError(
            "--list only lists the archives", hint="drop --list to recover, or the other options"
        )
    state_dir = (args.state_dir or (cfg.paths.state if cfg else DEFAULT_STATE)).absolute()
    return _Inputs(
        source=source,
        fingerprint=fingerprint,
        passphrase_file=args.passphrase_file.absolute(),
        keys=keys,
        state_dir=state_dir,
        key_file=(args.ssh_key or state_dir / "ssh" / RECOVER_KEY_NAME).absolute(),
        to=None if args.to is None else args.to.absolute(),
        share_paths=cfg.source.paths if cfg else (),
        tz=cfg.schedule.timezone if cfg else ZoneInfo(DEFAULT_TIMEZONE),
        binary=(cfg.borg.binary if cfg else "") or default_binary(),
        lock_wait=cfg.borg.lock_wait if cfg else DEFAULT_LOCK_WAIT,
        stop_timeout=float(cfg.borg.stop_timeout) if cfg else DEFAULT_STOP_TIMEOUT,
    )


def _new_key(inputs: _Inputs, *, as_json: bool) -> int:
    """Create the recovery key and show the line the host's operator installs; exit 1."""
    from coffre.targets.offsite import ssh

    comment = f"coffre-recover@{socket.gethostname()}"
    try:
        ssh.ensure_key(inputs.key_file, comment)
    except (OSError, ValueError) as error:
        raise CoffreError(
            f"cannot create the recovery key {inputs.key_file}: {error}",
            hint="give a writable place with --ssh-key FILE or --state-dir DIR",
        ) from None
    line = _authorized_line(inputs, comment)
    message = (
        "ask the host's operator to install this line, then run again "
        f"(it lets this box's key read and add to {inputs.source.url.path} only, "
        "never erase history)"
    )
    if as_json:
        created = {"ok": False, "key_created": str(inputs.key_file), "authorized_keys": line}
        json.dump(created, sys.stdout)
        print()
    else:
        print(f"created this box's recovery key {inputs.key_file}")
        print(f"\nthe line for the authorized_keys of {inputs.source.url.user} on the host:\n")
        print(f"  {line}\n")
    print_error(
        {"message": "the host does not know this box's key yet", "hint": message}, sys.stderr
    )
    return EXIT_FAILED


def _authorized_line(inputs: _Inputs, comment: str | None = None) -> str:
    """The authorized_keys line of the recovery key for the host (OSError, ValueError)."""
    from coffre.targets.offsite import ssh

    public = ssh.read_public_key(inputs.key_file)
    return authorized_keys_line(
        public, inputs.source.url.path, comment or f"coffre-recover@{socket.gethostname()}"
    )


def _logger() -> logging.Logger:
    """The ``coffre`` logger: journald when it listens (the audit's witness), else stderr.

    On stderr only warnings show: the person already reads the steps.
    """
    import logging

    from coffre.storage import logs

    # paramiko logs each refused handshake with a traceback (trying the host's
    # key types one by one makes several): our own errors say what matters.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    if logs.journald_listening():
        return logs.setup("journal")
    return logs.setup("stderr", level=logging.WARNING)


async def _run(args: argparse.Namespace, inputs: _Inputs, logger: logging.Logger) -> dict[str, Any]:
    """The network part: host key, borg in a private temporary dir, list or recover.

    Returns the answer printed (or dumped as JSON). Raises what the steps raise.
    """
    import asyncio
    import tempfile

    from coffre.recovery.host import verify_host_key
    from coffre.recovery.plan import choose_archive
    from coffre.recovery.recover import recover
    from coffre.recovery.repository import open_repository
    from coffre.storage.staging_mark import StagingMark

    say = _Steps(quiet=args.json)
    host_key = await asyncio.to_thread(verify_host_key, inputs.source.url, inputs.fingerprint)
    say(f"host {inputs.source.url.host}:{inputs.source.url.port}: key {host_key.fingerprint} ok")
    await _check_login(inputs, host_key)
    with tempfile.TemporaryDirectory(prefix="coffre-recover-") as temporary:
        runner = _runner(Path(temporary), inputs, host_key, logger)
        repository = await open_repository(
            runner, inputs.source.location, inputs.keys, replace_key=args.replace_key, on_step=say
        )
        if args.list:
            return _opened_answer(repository, inputs.tz, with_archives=True)
        archive = choose_archive(
            repository.archives, name=args.archive, day=args.date, tz=inputs.tz
        )
        say(f"archive {archive.name} ({_local(archive.time, inputs.tz)})")
        try:
            done = await recover(
                runner,
                inputs.source.location,
                archive,
                args.paths,
                to=inputs.to,
                share_paths=inputs.share_paths,
                overwrite=args.overwrite,
                mark=StagingMark.of_box(inputs.state_dir),
                on_progress=say.progress(),
            )
        finally:
            say.end_progress()
    return {**_opened_answer(repository, inputs.tz), **_recovered_answer(done, inputs.tz)}


def _runner(work: Path, inputs: _Inputs, host_key: PublicKey, logger: logging.Logger) -> BorgRunner:
    """A borg runner of its own for the recovery, everything borg keeps under ``work``.

    A private BORG_BASE_DIR: no key, security dir or cache of a previous box
    is used. Its ssh knows ``host_key`` only. Raises StateError when the
    known_hosts file cannot be written in ``work``.
    """
    from coffre.borg.env import BorgEnvironment
    from coffre.borg.runner import BorgRunner
    from coffre.recovery.host import ssh_command
    from coffre.recovery.inputs import read_passphrase

    rsh = ssh_command(work, inputs.source.url, host_key, inputs.key_file)
    env = BorgEnvironment(
        binary=inputs.binary,
        base_dir=work / "borg",
        cache_dir=work / "cache",
        extra={"BORG_RSH": rsh},
    )
    return BorgRunner(
        env,
        lambda: read_passphrase(inputs.passphrase_file),
        lock_wait=inputs.lock_wait,
        stop_timeout=inputs.stop_timeout,
        logger=logger,
    )


def _opened_answer(
    repository: Repository, tz: ZoneInfo, *, with_archives: bool = False
) -> dict[str, Any]:
    """The answer's part about the repository opened (with its archives for ``--list``)."""
    answer: dict[str, Any] = {
        "ok": True,
        "repository_id": repository.id,
        "key_imported": repository.key_imported,
        "paper_key_current": repository.paper_key_current,
    }
    if with_archives:
        answer["archives"] = [
            {
                "name": a.name,
                "time": a.time.astimezone(tz).isoformat(),
                "checkpoint": a.is_checkpoint,
            }
            for a in repository.archives
        ]
    return answer


def _recovered_answer(done: Recovered, tz: ZoneInfo) -> dict[str, Any]:
    """The answer's part about what the recovery restored, and where."""
    report = done.report
    return {
        "archive": done.archive.name,
        "archive_time": done.archive.time.astimezone(tz).isoformat(),
        "roots": [str(r) for r in done.roots],
        "destinations": list(report.destinations),
        "written": list(report.written),
        "nfiles": report.nfiles,
        "nbytes": report.nbytes,
        "warnings": list(report.warnings),
    }


async def _check_login(inputs: _Inputs, host_key: PublicKey) -> None:
    """Check that the host takes the recovery key, for a clear error before borg's ssh runs."""
    import asyncio

    from coffre.recovery.host import CONNECT_TIMEOUT
    from coffre.targets.offsite import ssh

    url = inputs.source.url
    try:
        await asyncio.to_thread(
            ssh.preflight,
            host=url.host,
            port=url.port,
            user=url.user,
            key_file=inputs.key_file,
            pinned=[host_key],
            timeout=CONNECT_TIMEOUT,
            target="recover",
        )
    except OffsiteAuthRefused as refused:
        raise OffsiteAuthRefused(
            f"{refused.message}: the recovery key {inputs.key_file} is not installed there",
            hint="ask the host's operator to install this line in that account's "
            f"authorized_keys, then run again: {_authorized_line(inputs)}",
        ) from None


class _Steps:
    """Prints each step, and borg's progress on a terminal, on stderr (nothing with ``--json``)."""

    def __init__(self, *, quiet: bool) -> None:
        self._quiet = quiet
        self._progress_shown = False

    def __call__(self, text: str) -> None:
        if not self._quiet:
            print(controls_escaped(text), file=sys.stderr)  # names an archive of the host's

    def progress(self) -> Callable[[Progress], None] | None:
        """A progress printer on a terminal; None elsewhere (borg then skips its extra pass)."""
        if self._quiet or not sys.stderr.isatty():
            return None

        def show(progress: Progress) -> None:
            self._progress_shown = True
            share = f"{progress.percent:5.1f}%" if progress.percent is not None else "..."
            print(f"\rrestoring {share}", end="", file=sys.stderr, flush=True)

        return show

    def end_progress(self) -> None:
        """End the progress line, if one was shown."""
        if self._progress_shown:
            print(file=sys.stderr)
            self._progress_shown = False


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M:%S} {tz.key}"


def _print(answer: dict[str, Any], args: argparse.Namespace, inputs: _Inputs) -> None:
    if args.json:
        json.dump(answer, sys.stdout, indent=2)
        print()
        return
    if answer.get("key_imported"):
        print("the paper key was written into the repository (its own key was missing)")
    elif answer.get("paper_key_current") is False:
        print(
            "note: the repository's key is not the paper key's copy (re-encrypted since it "
            "was printed): export the key on paper again once the box is set up"
        )
    if args.list:
        archives = answer["archives"]
        print(f"repository {answer['repository_id']}: {len(archives)} archive(s)")
        for archive in archives:
            mark = "  (checkpoint: incomplete)" if archive["checkpoint"] else ""
            name = controls_escaped(archive["name"])
            print(f"  {name:<40} {archive['time'][:19].replace('T', ' ')}{mark}")
        return
    # Escaped (core.printable): names from the archive, and archive names the host
    # holds; --json keeps them exact.
    print(
        controls_escaped(
            f"recovered archive {answer['archive']}: {answer['nfiles']} file(s), "
            f"{size(answer['nbytes'])}, into {', '.join(answer['destinations'])}"
        )
    )
    for path in answer["written"]:
        print(f"  {controls_escaped(path)}")
    for warning in answer["warnings"]:  # borg's, naming the file
        print(f"warning: {controls_escaped(warning)}", file=sys.stderr)
    print(
        "next: check the files, then set the box up again (docs/disaster-recovery.md: "
        "new repositories, new paper keys)"
    )
