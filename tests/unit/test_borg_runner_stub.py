"""The runner's plumbing, against a stub borg: a Python script playing borg's part.

Real borg is exercised in tests/integration/test_borg_runner.py; the stub
makes the rarer paths deterministic: huge outputs, odd stderr lines, a borg
that ignores SIGINT and SIGTERM, a grandchild holding the pipes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coffre.borg.env import BorgEnvironment
from coffre.borg.exitcodes import NOT_RUN
from coffre.borg.runner import BorgRunner, Progress
from coffre.core.errors import (
    BorgError,
    BorgLockTimeout,
    BorgNotFound,
    BorgWrongPassphrase,
)

PASSPHRASE = b"correct horse battery staple\n"

STUB = r"""
import json, os, signal, subprocess, sys, time

args = sys.argv[4:]
out = os.environ["STUB_DIR"]


def emit(**fields):
    print(json.dumps(fields), file=sys.stderr, flush=True)


def log(level, message, msgid=None):
    fields = {"type": "log_message", "time": time.time(), "levelname": level,
              "name": "borg.archiver", "message": message}
    if msgid:
        fields["msgid"] = msgid
    emit(**fields)


def record(name, value):
    with open(os.path.join(out, name), "a") as f:
        f.write(value + "\n")


cmd = args[0] if args else ""
if cmd == "--version":
    print(os.environ.get("STUB_VERSION", "borg 1.4.5"))
elif cmd == "env":
    info = {"env": dict(os.environ), "cwd": os.getcwd(), "sid": os.getsid(0),
            "pid": os.getpid(), "stdin": sys.stdin.read(), "argv": sys.argv}
    fd = os.environ.get("BORG_PASSPHRASE_FD")
    if fd:
        with os.fdopen(int(fd), "rb") as f:
            info["passphrase"] = f.read().decode()
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(info, f)
elif cmd == "big":
    for i in range(20000):
        log("INFO", "line %d" % i)
    print(json.dumps({"archives": [{"name": "a%d" % i} for i in range(100000)]}))
elif cmd == "exit":
    log("ERROR", args[2], args[3] if len(args) > 3 else None)
    sys.exit(int(args[1]))
elif cmd == "chatty":
    emit(type="progress_percent", operation=1, msgid="cache.sync", message="  50%",
         current=5, total=10, info=None, finished=False, time=time.time())
    emit(type="archive_progress", original_size=100, compressed_size=50,
         deduplicated_size=20, nfiles=3, path="srv/a", finished=False, time=time.time())
    emit(type="file_status", status="A", path="srv/a")
    emit(type="progress_message", operation=2, msgid=None, message="Saving files cache",
         finished=False, time=time.time())
    emit(type="progress_percent", operation=1, msgid="cache.sync", finished=True,
         time=time.time())
    emit(type="archive_progress", finished=True, time=time.time())
    log("WARNING", "srv/b: file changed while we backed it up", "FileChangedWarning")
    emit(type="question_prompt", msgid="BORG_X", message="Continue? [yN]")
    sys.stderr.write("not json at all\n")
    sys.stderr.write('Enter passphrase: {"type": "log_message", "levelname": "INFO", '
                     '"name": "borg.x", "message": "glued"}\n')
    sys.stderr.write("{broken json\n")
    sys.stderr.flush()
    print(json.dumps({"ok": True}))
    sys.exit(int(args[1]) if len(args) > 1 else 0)
elif cmd in ("create", "list"):
    mode = args[1]
    record("pid", str(os.getpid()))

    def on_signal(number, frame):
        record("signals", signal.Signals(number).name)
        if mode == "polite":
            log("ERROR", "Got Ctrl-C / SIGINT.", "Error")
            sys.exit(2)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if mode == "stubborn":
        # A grandchild that ignores signals and keeps borg's stderr open.
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "time.sleep(600)\n"])
        record("grandchild", str(child.pid))
    emit(type="progress_message", operation=1, msgid=None, message="ready", finished=False,
         time=time.time())
    while True:
        time.sleep(0.05)
else:
    log("ERROR", "stub: unknown command %r" % cmd, "CommandError")
    sys.exit(4)
"""


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    script = tmp_path / "borg"
    script.write_text(f"#!{sys.executable}\n{STUB}")
    script.chmod(0o755)
    return script


def make_runner(
    tmp_path: Path,
    binary: Path | str,
    *,
    passphrase: Callable[[], bytes] | None = lambda: PASSPHRASE,
    stop_timeout: float = 30.0,
    **extra: str,
) -> BorgRunner:
    env = BorgEnvironment(
        str(binary),
        tmp_path / "base",
        tmp_path / "cache",
        extra={"STUB_DIR": str(tmp_path), **extra},
    )
    return BorgRunner(
        env,
        passphrase,
        lock_wait=1,
        stop_timeout=stop_timeout,
        logger=logging.getLogger("coffre.test.borg"),
    )


def open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


def read_env(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "env.json").read_text())
    return data


def test_passphrase_goes_through_a_pipe_only(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub)
    before = open_fds()
    result = asyncio.run(runner.run(("env",), cwd=tmp_path))
    assert open_fds() == before  # our read end is closed
    info = read_env(tmp_path)
    assert info["passphrase"].encode() == PASSPHRASE
    assert PASSPHRASE.strip().decode() not in json.dumps(info["env"])
    assert PASSPHRASE.strip().decode() not in " ".join(info["argv"])
    assert "BORG_PASSPHRASE" not in info["env"]
    assert info["env"]["BORG_PASSPHRASE_FD"].isdigit()
    assert info["argv"][1:] == ["--log-json", "--lock-wait", "1", "env"]
    assert result.argv == (str(stub), "--log-json", "--lock-wait", "1", "env")
    assert info["cwd"] == str(tmp_path)
    assert info["stdin"] == ""  # /dev/null
    assert info["sid"] == info["pid"]  # its own session: no terminal, no Ctrl-C
    assert info["env"]["BORG_EXIT_CODES"] == "modern"
    assert info["env"]["TZ"] == "UTC"


def test_passphrase_is_read_at_each_run(tmp_path: Path, stub: Path) -> None:
    calls: list[int] = []

    def passphrase() -> bytes:
        calls.append(1)
        return b"p%d" % len(calls)

    runner = make_runner(tmp_path, stub, passphrase=passphrase)
    asyncio.run(runner.run(("env",)))
    asyncio.run(runner.run(("env",)))
    assert read_env(tmp_path)["passphrase"] == "p2"


@pytest.mark.parametrize("use_passphrase", [False, True])
def test_no_passphrase(tmp_path: Path, stub: Path, use_passphrase: bool) -> None:
    source = None if use_passphrase else (lambda: PASSPHRASE)
    runner = make_runner(tmp_path, stub, passphrase=source)
    asyncio.run(runner.run(("env",), use_passphrase=use_passphrase))
    info = read_env(tmp_path)
    assert "BORG_PASSPHRASE_FD" not in info["env"]
    assert "passphrase" not in info


@pytest.mark.parametrize(
    ("passphrase", "message"), [(b"x" * 4097, "4097 bytes"), (b"\xff\xfe", "UTF-8")]
)
def test_unusable_passphrase(tmp_path: Path, stub: Path, passphrase: bytes, message: str) -> None:
    runner = make_runner(tmp_path, stub, passphrase=lambda: passphrase)
    before = open_fds()
    with pytest.raises(BorgWrongPassphrase, match=message) as caught:
        asyncio.run(runner.run(("env",)))
    assert caught.value.rc == NOT_RUN
    assert not (tmp_path / "env.json").exists()
    assert open_fds() == before


def test_largest_passphrase_passes(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub, passphrase=lambda: b"y" * 4096)
    asyncio.run(runner.run(("env",)))
    assert read_env(tmp_path)["passphrase"] == "y" * 4096


def test_large_outputs_do_not_deadlock(tmp_path: Path, stub: Path) -> None:
    result = asyncio.run(make_runner(tmp_path, stub).run(("big",)))
    assert len(result.json()["archives"]) == 100000
    assert len(result.logs) == 20000
    assert result.logs[-1].message == "line 19999"
    assert result.warnings == ()


def test_stderr_parsing_and_progress(tmp_path: Path, stub: Path) -> None:
    seen: list[Progress] = []
    result = asyncio.run(make_runner(tmp_path, stub).run(("chatty",), on_progress=seen.append))
    assert result.rc == 0
    assert result.json() == {"ok": True}
    assert seen == [
        Progress(0, 0, 0, 0, finished=False, message="  50%", percent=50.0),
        Progress(100, 50, 20, 3, finished=False, message="srv/a"),
        Progress(100, 50, 20, 3, finished=False, message="Saving files cache"),
        Progress(100, 50, 20, 3, finished=True, message=""),
        Progress(100, 50, 20, 3, finished=True, message=""),
    ]
    levels = [(r.level, r.name, r.message) for r in result.logs]
    assert levels == [
        ("WARNING", "borg.archiver", "srv/b: file changed while we backed it up"),
        ("INFO", "question_prompt", "Continue? [yN]"),
        ("WARNING", "stderr", "not json at all"),
        ("WARNING", "stderr", "Enter passphrase:"),
        ("INFO", "borg.x", "glued"),
        ("WARNING", "stderr", "{broken json"),
    ]
    assert result.logs[0].msgid == "FileChangedWarning"
    assert [r.message for r in result.warnings] == [
        "srv/b: file changed while we backed it up",
        "not json at all",
        "Enter passphrase:",
        "{broken json",
    ]
    assert result.duration > 0


def test_warning_exit_codes_return(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub)
    for rc in (1, 107):
        assert asyncio.run(runner.run(("chatty", str(rc)))).rc == rc


def test_error_exit_code_raises_typed_error(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub)
    message = "Failed to create/acquire the lock /r/lock.exclusive (timeout)."
    with pytest.raises(BorgLockTimeout) as caught:
        asyncio.run(runner.run(("exit", "73", message, "LockTimeout")))
    assert caught.value.message == message
    assert caught.value.rc == 73
    assert caught.value.msgid == "LockTimeout"


def test_progress_callback_errors_are_contained(
    tmp_path: Path, stub: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(progress: Progress) -> None:
        raise RuntimeError("display gone")

    result = asyncio.run(make_runner(tmp_path, stub).run(("chatty",), on_progress=broken))
    assert result.json() == {"ok": True}
    assert "progress callback failed" in caplog.text


def test_missing_binary(tmp_path: Path) -> None:
    runner = make_runner(tmp_path, tmp_path / "no-such-borg")
    with pytest.raises(BorgNotFound) as caught:
        asyncio.run(runner.run(("list", "/r")))
    assert "no-such-borg" in caught.value.message
    assert caught.value.hint
    assert caught.value.rc == NOT_RUN


def test_binary_not_executable(tmp_path: Path) -> None:
    binary = tmp_path / "borg"
    binary.write_text("#!/bin/sh\n")
    with pytest.raises(BorgNotFound):
        asyncio.run(make_runner(tmp_path, binary).run(("list", "/r")))


def test_missing_cwd_is_not_a_missing_borg(tmp_path: Path, stub: Path) -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(make_runner(tmp_path, stub).run(("env",), cwd=tmp_path / "nope"))


def test_version(tmp_path: Path, stub: Path) -> None:
    assert asyncio.run(make_runner(tmp_path, stub).run(("--version",))).stdout == "borg 1.4.5\n"
    assert asyncio.run(make_runner(tmp_path, stub).version()) == "1.4.5"
    with pytest.raises(BorgError, match="unexpected output"):
        asyncio.run(make_runner(tmp_path, stub, STUB_VERSION="borgbackup?").version())


def _pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # A zombie is dead; reaping it is its parent's (or init's) business.
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _children() -> list[int]:
    """Our direct child processes, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == os.getpid():
                found.append(int(entry.name))
    return found


async def _cancel_when_ready(runner: BorgRunner, argv: tuple[str, ...]) -> float:
    """Start ``argv``, cancel it once the stub says ready; seconds the stop took."""
    ready = asyncio.Event()

    def on_progress(progress: Progress) -> None:
        if progress.message == "ready":
            ready.set()

    task = asyncio.create_task(runner.run(argv, on_progress=on_progress))
    await asyncio.wait_for(ready.wait(), timeout=30)
    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - began


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_cancel_create_sends_sigint_first(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub, stop_timeout=30)
    took = asyncio.run(_cancel_when_ready(runner, ("create", "polite")))
    assert took < 10  # it stopped on SIGINT, not after stop_timeout
    assert (tmp_path / "signals").read_text().split() == ["SIGINT"]
    assert _pid_gone(int((tmp_path / "pid").read_text()))
    assert _children() == []


def test_cancel_other_commands_sends_sigterm_first(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub, stop_timeout=30)
    took = asyncio.run(_cancel_when_ready(runner, ("list", "polite")))
    assert took < 10
    assert (tmp_path / "signals").read_text().split() == ["SIGTERM"]
    assert _children() == []


def test_cancel_escalates_to_sigkill_of_the_whole_group(tmp_path: Path, stub: Path) -> None:
    runner = make_runner(tmp_path, stub, stop_timeout=0.3)
    took = asyncio.run(_cancel_when_ready(runner, ("create", "stubborn")))
    assert (tmp_path / "signals").read_text().split() == ["SIGINT", "SIGTERM"]
    assert took < 10  # the grandchild holding stderr open did not hold us
    assert _pid_gone(int((tmp_path / "pid").read_text()))
    assert _wait_for(lambda: _pid_gone(int((tmp_path / "grandchild").read_text())))
    assert _children() == []
