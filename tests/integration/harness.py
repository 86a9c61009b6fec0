"""A practice on disk and a real ``coffre daemon`` process, for integration tests.

The daemon runs as a subprocess with its own NOTIFY_SOCKET, which the tests
read to know it is ready (no sleeping: every wait is on an event or a
bounded poll of a condition).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.parts import binary

PASSPHRASE = "correct horse battery staple, but for a kiné"


def wait_for(condition: Callable[[], bool], *, timeout: float = 30, what: str = "") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)


@dataclass
class Practice:
    """A share, a passphrase, a configuration with local targets, under ``root``."""

    root: Path
    targets: tuple[str, ...] = ("local",)
    daily: str = "01:30"
    timezone: str = "Europe/Paris"
    prefix: str = "cabinet"
    extra: str = ""
    lock_wait: int = 10
    #: The [quiescence] section: by default no wait for a quiet share (the tests
    #: write files just before backing up); the tests of the wait give theirs.
    quiescence: str = "max_wait_seconds = 0\ndisk_max_wait_seconds = 0"
    #: The share's folder when not ``root/share`` (a share on a btrfs volume, one smbd serves).
    share_at: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.share.mkdir(parents=True, exist_ok=True)
        self.passphrase.write_text(PASSPHRASE + "\n", encoding="utf-8")
        self.passphrase.chmod(0o600)
        self.write_config()
        self.env = {
            **os.environ,
            "COFFRE_CONFIG": str(self.config),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("WATCHDOG_USEC", None)

    @property
    def share(self) -> Path:
        return self.share_at or self.root / "share"

    @property
    def passphrase(self) -> Path:
        return self.root / "passphrase"

    @property
    def config(self) -> Path:
        return self.root / "coffre.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def socket(self) -> Path:
        return self.root / "run" / "control.sock"

    def repository(self, target: str = "local") -> Path:
        return self.root / "repos" / target

    def write_config(self) -> None:
        targets = "".join(
            f'\n[[target]]\nname = "{name}"\nkind = "local"\npath = "{self.repository(name)}"\n'
            for name in self.targets
        )
        self.config.write_text(
            f"""
[source]
paths = ["{self.share}"]

[schedule]
daily = "{self.daily}"
timezone = "{self.timezone}"

[retention]
prefix = "{self.prefix}"

[encryption]
passphrase_file = "{self.passphrase}"

[paths]
state = "{self.state_dir}"
cache = "{self.root / "cache"}"
runtime = "{self.root / "run"}"

[borg]
lock_wait = {self.lock_wait}
checkpoint_interval = 10

[quiescence]
{self.quiescence}
{self.extra}
{targets}""",
            encoding="utf-8",
        )

    def coffre(
        self, *args: str, check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``coffre`` CLI against this practice."""
        result = subprocess.run(
            [binary("coffre"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"coffre {' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def status(self) -> dict[str, Any]:
        out = self.coffre("status", "--json", check=True).stdout
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    def job_events(self, request: dict[str, Any], *, timeout: float = 600) -> list[dict[str, Any]]:
        """Send ``request`` on the control socket as the CLI does (``{"op": "backup", "wait":
        True}``...); every event the daemon answers, up to the final one (result or error).

        What a job did, as the daemon says it: the events a test waits on and
        asserts, where the CLI prints them as sentences for people.
        """
        events: list[dict[str, Any]] = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout)
            client.connect(str(self.socket))
            client.sendall(json.dumps(request).encode() + b"\n")
            with client.makefile("rb") as answers:
                for line in answers:
                    events.append(json.loads(line))
                    if events[-1].get("event") in ("result", "error"):
                        return events
        raise AssertionError(f"the daemon hung up before the job's end: {events}")

    @property
    def borg_env(self) -> dict[str, str]:
        """The environment of borg run by hand (as support would), apart from the daemon's."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "BORG_PASSPHRASE": PASSPHRASE,
            "BORG_BASE_DIR": str(self.root / "test-borg"),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
            "TZ": "UTC",
            "LANG": "C.UTF-8",
        }

    def borg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run borg by hand on this practice's repositories (as support would)."""
        result = subprocess.run(
            [binary("borg"), *args], env=self.borg_env, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"borg {' '.join(args)} exited {result.returncode}\n{result.stderr}"
            )
        return result

    def archive_names(self, target: str = "local") -> list[str]:
        return self.archive_names_at(self.repository(target))

    def archive_names_at(self, repository: Path) -> list[str]:
        """The archives (checkpoints too) of the repository at ``repository``, sorted."""
        listed = json.loads(
            self.borg("list", "--json", "--consider-checkpoints", str(repository)).stdout
        )
        return sorted(a["name"] for a in listed["archives"])


def _parse_notify(raw: bytes) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in raw.decode().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


class NotifyListener:
    """A datagram socket standing for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def expect(self, key: str, value: str | None = None, *, timeout: float = 30) -> dict[str, str]:
        """Wait for a message carrying ``key`` (with ``value`` when given); return it."""
        for message in self.messages:
            if key in message and (value is None or message[key] == value):
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}={value} notification; got {self.messages}")
            self.sock.settimeout(left)
            try:
                raw = self.sock.recv(4096)
            except TimeoutError:
                continue
            message = _parse_notify(raw)
            self.messages.append(message)
            if key in message and (value is None or message[key] == value):
                return message

    def drain(self) -> None:
        """Read every message already sent (the sender has exited)."""
        self.sock.setblocking(False)
        while True:
            try:
                raw = self.sock.recv(4096)
            except BlockingIOError:
                return
            self.messages.append(_parse_notify(raw))

    def close(self) -> None:
        self.drain()
        self.sock.close()


class Daemon:
    """``coffre daemon`` as a subprocess, ready once it has sent READY=1."""

    def __init__(
        self,
        practice: Practice,
        *,
        watchdog_usec: int | None = None,
        env: Mapping[str, str] = {},
        log_target: str = "stderr",
        wrap: Sequence[str] = (),
    ) -> None:
        """``wrap`` is a command the daemon runs under and that execs it (same pid),
        e.g. ``unshare --mount`` for the mount namespace systemd gives the unit."""
        self.practice = practice
        self.notify = NotifyListener(practice.root / f"notify-{time.monotonic_ns()}.sock")
        environ = {**practice.env, "NOTIFY_SOCKET": str(self.notify.path), **env}
        if watchdog_usec:
            environ["WATCHDOG_USEC"] = str(watchdog_usec)
        self.log = practice.root / "daemon.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*wrap, binary("coffre"), "daemon", "--log-target", log_target],
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self, timeout: float = 60) -> Daemon:
        try:
            self.notify.expect("READY", "1", timeout=timeout)
        except AssertionError:
            self.stop()
            raise AssertionError(f"daemon not ready; its log:\n{self.logs()}") from None
        return self

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def children(self) -> list[int]:
        """PIDs of the daemon's direct children (borg)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return []

    def stop(self, timeout: float = 120) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.notify.close()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.notify.close()


@contextlib.contextmanager
def daemon_running(practice: Practice, **kwargs: Any) -> Iterator[Daemon]:
    """A ready daemon for the ``with`` block, stopped after it whatever happens."""
    daemon = Daemon(practice, **kwargs).ready()
    try:
        yield daemon
    finally:
        daemon.stop()


def running_daemon(practice: Practice, **kwargs: Any) -> Iterator[Daemon]:
    """Generator for fixtures: a ready daemon, stopped afterwards."""
    with daemon_running(practice, **kwargs) as daemon:
        yield daemon


#: Words of a practice's notes: what a share's text files hold (the guard reads it as text).
_WORDS = (
    "patient",
    "consultation",
    "ordonnance",
    "bilan",
    "douleur",
    "genou",
    "epaule",
    "dos",
    "seance",
    "exercice",
    "traitement",
    "suivi",
    "rendez-vous",
    "kine",
    "massage",
    "mobilisation",
    "renforcement",
    "amelioration",
    "lombalgie",
    "cervicalgie",
    "reeducation",
    "etirement",
    "posture",
    "marche",
    "respiration",
)


def note_text(rng: random.Random, size: int) -> bytes:
    """``size`` bytes of a practice's note: words drawn by ``rng``, ASCII."""
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words).encode()[:size]


def scan_bytes(size: int) -> bytes:
    """``size`` bytes of an imaging scan as a DICOM file starts (128-byte preamble, ``DICM``),
    its pixels incompressible: what a practice's scanner writes, slow to back up."""
    return (bytes(128) + b"DICM" + os.urandom(max(size - 132, 0)))[:size]


def fill_share(share: Path, files: int = 50, size: int = 2000, *, seed: int = 1) -> None:
    """Write ``files`` small notes of varied content under ``share``."""
    rng = random.Random(seed)
    for i in range(files):
        path = share / f"dossier-{i % 7}" / f"patient-{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(note_text(rng, size))


def run_coffre_module(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coffre.cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
    )
