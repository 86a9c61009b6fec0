"""The one door to borg: run a command line, get a result or a typed error.

The runner owns what every borg run needs: ``--log-json`` parsing,
progress, the environment (``BORG_EXIT_CODES=modern``), the passphrase pipe
(``BORG_PASSPHRASE_FD``) and stopping borg when the caller is cancelled.

Stopping (borg 1.4.5, ``archiver.main`` and ``helpers/process.py``): SIGTERM
makes borg raise at once, roll back its open transaction and exit 143, *without*
a checkpoint. Only the first SIGINT makes ``create`` write a checkpoint archive
(at its next chunk; it then finishes the file being read and stops walking),
and ``delete``/``prune`` commit what they did; other commands ignore that first
SIGINT. So a cancelled ``create``/``delete``/``prune`` gets SIGINT, any other
command SIGTERM; whatever still runs after ``stop_timeout`` gets SIGTERM (briefly),
then SIGKILL with its whole process group (ssh, ``with-lock`` commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coffre.borg.env import BorgEnvironment
from coffre.borg.exitcodes import NOT_RUN, error_for, is_success, is_warning
from coffre.borg.records import STDERR_NAME, FileStatus, LogRecord, Progress
from coffre.core.errors import BorgError, BorgNotFound, BorgWrongPassphrase
from coffre.core.printable import controls_escaped

if TYPE_CHECKING:
    from coffre.borg.protocol import EnvBorg, StdinBorg

__all__ = ["BorgResult", "BorgRunner", "FileStatus", "LogRecord", "Progress"]

#: Largest passphrase handed over: a pipe holds at least this much (PIPE_BUF)
#: without a reader, so writing it before borg starts cannot block.
MAX_PASSPHRASE_BYTES = 4096

# Commands whose first SIGINT ends them cleanly (checkpoint or commit).
_SIGINT_COMMANDS = frozenset({"create", "delete", "prune"})

_PR_SET_PDEATHSIG = 1


def _stop_signal(argv: Sequence[str]) -> signal.Signals:
    """The signal that stops borg ``argv[0]`` cleanly (a checkpoint for create)."""
    return signal.SIGINT if argv and argv[0] in _SIGINT_COMMANDS else signal.SIGTERM


def _die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A preexec_fn asking the kernel to send ``sig`` to borg if the daemon dies.

    Without it, a daemon killed outside systemd (which would kill the whole
    cgroup) leaves borg running, holding the repository lock for the next start.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


# After SIGTERM, borg only rolls back and unlocks: it needs little time.
_TERM_GRACE = 10.0
# After SIGKILL, a process stuck in uninterruptible I/O (a dead USB disk) may
# still linger; the child watcher reaps it whenever it goes.
_KILL_WAIT = 10.0
# Output pipes may stay open after borg exits when something it started lives on.
_DRAIN_TIMEOUT = 5.0
_READ_CHUNK = 65536
# Longer stderr lines are cut: borg's lines are short, tracebacks a few KiB.
_MAX_LINE = 1 << 20
_QUESTION_PREFIX = "question_"
# The logger of --list lines (an item created, extracted...).
_LISTED = "borg.output.list"


@dataclass(frozen=True)
class BorgResult:
    """A borg run that reached its end: success (rc 0) or warnings (rc 1, 100..127).

    ``argv`` is the whole command line run, ``stdout`` borg's output (JSON
    for ``--json`` commands), ``logs`` every log record in order,
    ``warnings`` those at WARNING level, ``duration`` in seconds.
    ``file_statuses``: the items ``create --list`` reported (``argv.create``'s
    ``list_changed``), in borg's order; empty without ``--list``.
    """

    argv: tuple[str, ...]
    rc: int
    stdout: str
    logs: tuple[LogRecord, ...]
    warnings: tuple[LogRecord, ...]
    duration: float
    file_statuses: tuple[FileStatus, ...] = ()

    def json(self) -> Any:
        """``stdout`` decoded as JSON; ValueError (JSONDecodeError) when it is not."""
        return json.loads(self.stdout)


class BorgRunner:
    """Runs borg commands, one ``run`` per borg process; safe to share between tasks.

    ``passphrase`` is called at each run that uses one (None: never give
    borg a passphrase); it may raise, and its error then propagates.
    ``lock_wait`` is borg's ``--lock-wait`` in seconds; ``stop_timeout`` the
    seconds a cancelled borg gets to stop cleanly before it is killed.
    """

    def __init__(
        self,
        env: BorgEnvironment,
        passphrase: Callable[[], bytes] | None,
        *,
        lock_wait: int,
        stop_timeout: float,
        logger: logging.Logger,
    ) -> None:
        self._env = env
        self._passphrase = passphrase
        self._lock_wait = lock_wait
        self._stop_timeout = stop_timeout
        self._logger = logger

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
        extra_env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> BorgResult:
        """Run ``borg --log-json --lock-wait N *argv`` and wait for its end.

        ``on_progress`` is called, in the event loop, for each progress report
        (an exception it raises is logged and otherwise ignored). ``cwd`` is
        borg's working directory (where ``extract`` writes). ``extra_env``
        adds variables for this run only (``BORG_RSH`` of an offsite target);
        like ``BorgEnvironment.extra`` it may neither override the runner's
        own nor carry a passphrase (ValueError). ``stdin``, when given, is
        written to borg's standard input, which is then closed (the answers to
        ``borg key import --paper``'s prompts); when None, borg's stdin is
        /dev/null, so a prompt gets EOF instead of waiting forever.

        Returns a BorgResult on success or warnings. Raises BorgNotFound when
        the binary cannot be started, BorgWrongPassphrase for a passphrase
        that cannot be handed over (over 4096 bytes, not UTF-8), and the
        BorgError that ``exitcodes.error_for`` gives for an error exit code.
        If the calling task is cancelled, borg is stopped (see the module
        doc) before CancelledError propagates.
        """
        full_argv = (self._env.binary, "--log-json", "--lock-wait", str(self._lock_wait), *argv)
        env, read_fd = self._environment(extra_env, use_passphrase)
        started = time.monotonic()
        try:
            proc = await self._start(
                full_argv, env, cwd=cwd, stdin=stdin, read_fd=read_fd, stop=_stop_signal(argv)
            )
        finally:
            if read_fd is not None:
                os.close(read_fd)
        stderr = _StderrReader(on_progress, self._logger)
        feeder = None
        if stdin is not None:
            assert proc.stdin is not None
            feeder = asyncio.create_task(_feed(proc.stdin, stdin))
        rc, stdout = await self._wait(proc, stderr, argv, started, feeder)
        duration = time.monotonic() - started
        logs = tuple(stderr.records)
        shown = controls_escaped(shlex.join(full_argv))
        self._logger.debug("borg run: %s -> rc %d in %.2fs", shown, rc, duration)
        if is_success(rc) or is_warning(rc):
            return BorgResult(
                argv=full_argv,
                rc=rc,
                stdout=stdout.decode("utf-8", errors="replace"),
                logs=logs,
                warnings=tuple(r for r in logs if r.level == "WARNING"),
                duration=duration,
                file_statuses=tuple(stderr.file_statuses),
            )
        raise error_for(rc, logs, argv)

    def _environment(
        self, extra_env: Mapping[str, str] | None, use_passphrase: bool
    ) -> tuple[dict[str, str], int | None]:
        """borg's environment for one run, and the read end of its passphrase pipe (or None).

        The caller closes the pipe once borg has started. Raises ValueError
        for ``extra_env`` the environment refuses, what the passphrase
        callable raises, and BorgWrongPassphrase for one that cannot be handed over.
        """
        env = self._env.build()
        if extra_env:
            # replace() checks the merged extras as the constructor does.
            env = replace(self._env, extra={**self._env.extra, **extra_env}).build()
        read_fd = None
        if use_passphrase and self._passphrase is not None:
            read_fd = _passphrase_pipe(self._passphrase())
            env["BORG_PASSPHRASE_FD"] = str(read_fd)
        return env, read_fd

    async def _start(
        self,
        full_argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path | None,
        stdin: bytes | None,
        read_fd: int | None,
        stop: signal.Signals,
    ) -> asyncio.subprocess.Process:
        """Start borg ``full_argv`` (its binary first); BorgNotFound when it cannot be run.

        ``stop`` is the signal the kernel sends borg if the daemon dies first.
        """
        try:
            return await asyncio.create_subprocess_exec(
                *full_argv,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cwd,
                # Own session: a Ctrl-C on the daemon's terminal is not borg's,
                # and borg has no terminal to ask a passphrase on.
                start_new_session=True,
                pass_fds=() if read_fd is None else (read_fd,),
                preexec_fn=_die_with_parent(stop),
            )
        except OSError as exc:
            if exc.filename is not None and os.fsdecode(exc.filename) != self._env.binary:
                raise
            raise BorgNotFound(
                f"cannot run borg ({self._env.binary}): {exc.strerror}",
                rc=NOT_RUN,
                hint="install borgbackup 1.4 beside coffre, or set borg.binary in the config",
            ) from exc

    async def version(self) -> str:
        """The version of the borg binary, e.g. ``"1.4.5"`` (no passphrase, no repository)."""
        result = await self.run(("--version",), use_passphrase=False)
        words = result.stdout.split()
        if len(words) != 2 or words[0] != "borg":
            raise BorgError(f"unexpected output of borg --version: {result.stdout!r}", rc=result.rc)
        return words[1]

    async def _wait(
        self,
        proc: asyncio.subprocess.Process,
        stderr: _StderrReader,
        argv: Sequence[str],
        started: float,
        feeder: asyncio.Task[None] | None = None,
    ) -> tuple[int, bytes]:
        """Read borg's output (and feed its stdin) while it runs; return its rc and stdout.

        ``started`` is when borg was started (time.monotonic), for the log of a stop.
        """
        assert proc.stdout is not None and proc.stderr is not None
        stdout_task = asyncio.create_task(proc.stdout.read())
        stderr_task = asyncio.create_task(stderr.consume(proc.stderr))
        exit_task = asyncio.create_task(proc.wait())
        readers: set[asyncio.Task[Any]] = {stdout_task, stderr_task}
        if feeder is not None:
            # Drained and, if borg never reads, cancelled like the readers.
            readers.add(feeder)
        try:
            # asyncio.wait, unlike await, leaves exit_task running if we are cancelled.
            await asyncio.wait({exit_task})
        except asyncio.CancelledError:
            await self._stop(proc, exit_task, argv, started)
            raise
        finally:
            await _drain(readers, exit_task)
        if stdout_task.cancelled():
            self._logger.warning("borg's stdout stayed open after it exited: output cut")
            return exit_task.result(), b""
        return exit_task.result(), stdout_task.result()

    async def _stop(
        self,
        proc: asyncio.subprocess.Process,
        exit_task: asyncio.Task[int],
        argv: Sequence[str],
        started: float,
    ) -> None:
        command = argv[0] if argv else ""
        first = _stop_signal(argv)
        began = time.monotonic()
        self._logger.info("cancelled: stopping borg %s with %s", command, first.name)
        try:
            _send(proc, first)
            if await _exited(exit_task, self._stop_timeout):
                return
            if first is not signal.SIGTERM:
                self._logger.warning(
                    "borg %s still runs %.0fs after SIGINT: sending SIGTERM",
                    command,
                    self._stop_timeout,
                )
                _send(proc, signal.SIGTERM)
                if await _exited(exit_task, min(_TERM_GRACE, self._stop_timeout)):
                    return
        finally:
            # Also reached when we are cancelled again while waiting.
            if not exit_task.done():
                self._logger.warning("borg %s does not stop: killing it", command)
                _kill_group(proc)
                if not await _exited(exit_task, _KILL_WAIT):
                    self._logger.error("borg %s (pid %d) survives SIGKILL", command, proc.pid)
            # Both times: "stopped after 0.0s" of a borg mount that served
            # for 41 s read as if it had never run.
            now = time.monotonic()
            self._logger.info(
                "borg %s stopped %.1fs after %s, having run %.1fs (rc %s)",
                command,
                now - began,
                first.name,
                now - started,
                proc.returncode,
            )


class _StderrReader:
    """Turns ``--log-json`` stderr lines into LogRecords and Progress calls."""

    def __init__(self, on_progress: Callable[[Progress], None] | None, logger: logging.Logger):
        self.records: list[LogRecord] = []
        # Held in memory: a few hundred bytes per changed file (a lost files cache
        # lists every file: some 20 MB for 100 000 files).
        self.file_statuses: list[FileStatus] = []
        self._on_progress = on_progress
        self._logger = logger
        # Sizes of the last archive_progress, repeated by the other kinds of progress.
        self._sizes = (0, 0, 0, 0)

    async def consume(self, stream: asyncio.StreamReader) -> None:
        """Read ``stream`` to its end, line by line, whatever the lines' length."""
        pending = b""
        while chunk := await stream.read(_READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.feed(line)
            if len(pending) > _MAX_LINE:
                self.feed(pending[:_MAX_LINE])
                pending = b""
        if pending:
            self.feed(pending)

    def feed(self, raw: bytes) -> None:
        """Handle one stderr line."""
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            return
        data = _json_object(line)
        if data is None:
            # A prompt borg printed without a newline may glue itself to a JSON line.
            start = line.find('{"type"')
            if start > 0 and (data := _json_object(line[start:])) is not None:
                self._add(LogRecord("WARNING", line[:start].strip(), "", STDERR_NAME))
            else:
                self._add(LogRecord("WARNING", line, "", STDERR_NAME))
                return
        self._handle(data)

    def _handle(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "log_message":
            name = str(data.get("name") or "")
            if name == _LISTED:
                # One line per item written (extract --list): progress, not a log record.
                self._progress(False, str(data.get("message") or ""), None)
                return
            self._add(
                LogRecord(
                    level=str(data.get("levelname") or "CRITICAL"),
                    message=str(data.get("message") or ""),
                    msgid=str(data.get("msgid") or ""),
                    name=name,
                )
            )
        elif kind == "archive_progress":
            finished = bool(data.get("finished"))
            if not finished:
                self._sizes = (
                    _int(data.get("original_size")),
                    _int(data.get("compressed_size")),
                    _int(data.get("deduplicated_size")),
                    _int(data.get("nfiles")),
                )
            self._progress(finished, str(data.get("path") or ""), None)
        elif kind == "progress_percent":
            current, total = data.get("current"), data.get("total")
            percent = None
            if isinstance(current, int | float) and isinstance(total, int | float) and total > 0:
                percent = min(100.0, 100.0 * current / total)
            self._progress(bool(data.get("finished")), str(data.get("message") or ""), percent)
        elif kind == "progress_message":
            self._progress(bool(data.get("finished")), str(data.get("message") or ""), None)
        elif isinstance(kind, str) and kind.startswith(_QUESTION_PREFIX):
            # borg asked (and the environment answered): keep it, it explains a refusal.
            self._add(
                LogRecord(
                    "INFO", str(data.get("message") or ""), str(data.get("msgid") or ""), kind
                )
            )
        elif kind == "file_status":
            # create --list: kept for the ransomware guard (coffre.guard.night).
            self.file_statuses.append(
                FileStatus(str(data.get("status") or ""), str(data.get("path") or ""))
            )
        # Unknown kinds: nothing coffre uses.

    def _add(self, record: LogRecord) -> None:
        self.records.append(record)
        # borg's messages name the share's files: escaped, as every log line naming them.
        self._logger.debug(
            "borg %s %s: %s", record.level, record.name, controls_escaped(record.message)
        )

    def _progress(self, finished: bool, message: str, percent: float | None) -> None:
        if self._on_progress is None:
            return
        original, compressed, deduplicated, nfiles = self._sizes
        progress = Progress(
            original_size=original,
            compressed_size=compressed,
            deduplicated_size=deduplicated,
            nfiles=nfiles,
            finished=finished,
            message=message,
            percent=percent,
        )
        try:
            self._on_progress(progress)
        except Exception:
            # A broken display must not stop the reading of borg's stderr.
            self._logger.exception("progress callback failed")


async def _feed(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data`` to borg's stdin, then close it: borg sees EOF after the last line.

    borg may exit without reading it all (an error before its prompts): the
    broken pipe is then no error of ours, borg's exit code tells what happened.
    """
    try:
        writer.write(data)
        await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await writer.wait_closed()


def _passphrase_pipe(passphrase: bytes) -> int:
    """A pipe's read end holding ``passphrase`` then EOF, for BORG_PASSPHRASE_FD."""
    if len(passphrase) > MAX_PASSPHRASE_BYTES:
        raise BorgWrongPassphrase(
            f"the passphrase is {len(passphrase)} bytes long, more than {MAX_PASSPHRASE_BYTES}",
            rc=NOT_RUN,
            hint="check the passphrase file: it should hold one line",
        )
    try:
        passphrase.decode("utf-8")
    except UnicodeDecodeError:
        # borg reads the pipe as UTF-8 text and would fail with a traceback.
        raise BorgWrongPassphrase(
            "the passphrase is not UTF-8 text",
            rc=NOT_RUN,
            hint="check the passphrase file",
        ) from None
    read_fd, write_fd = os.pipe()
    try:
        with open(write_fd, "wb", closefd=True) as writer:
            writer.write(passphrase)
    except BaseException:
        os.close(read_fd)
        raise
    return read_fd


async def _exited(exit_task: asyncio.Task[int], seconds: float) -> bool:
    """Wait up to ``seconds`` for borg's exit; True when it exited."""
    # Not asyncio.timeout(): in a task that was cancelled (the reason we stop
    # borg), 3.11's timeout() raises CancelledError where TimeoutError is due.
    await asyncio.wait({exit_task}, timeout=seconds)
    return exit_task.done()


def _send(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # Only while borg is not reaped: its pid then still names its process group.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _drain(readers: set[asyncio.Task[Any]], exit_task: asyncio.Task[int]) -> None:
    """Let the output readers finish (bounded), cancel what is left, and never leak a task."""
    try:
        if exit_task.done():
            await asyncio.wait(readers, timeout=_DRAIN_TIMEOUT)
    finally:
        for task in (*readers, exit_task):
            if not task.done():
                task.cancel()
        await asyncio.gather(*readers, exit_task, return_exceptions=True)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


if TYPE_CHECKING:

    def _is_a_door(runner: BorgRunner) -> tuple[EnvBorg, StdinBorg]:
        """mypy checks here that the runner is the door its users type against."""
        return runner, runner
