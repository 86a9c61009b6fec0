"""What the observability tests share: a practice with an exporter port and LEDs of its
own, scraping, reading the LEDs back, and a repository lock held to keep a job running."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The exposition's readers, for the tests that import them from here.
from tests.exposition import Series as Series
from tests.exposition import parse as parse
from tests.exposition import value as value
from tests.integration.harness import PASSPHRASE, Practice, wait_for
from tests.parts import binary

LED_NAMES = {"green": "coffre:green", "amber": "coffre:amber", "red": "coffre:red"}


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ObservedPractice(Practice):
    """The harness's practice with ``[metrics]`` on a port of its own and ``[leds]`` in a
    directory shaped like /sys/class/leds; borg waits long for a lock (see
    :func:`repository_locked`)."""

    metrics_port: int = 0

    def __post_init__(self) -> None:
        self.metrics_port = self.metrics_port or free_port()
        for name in LED_NAMES.values():
            led = self.leds / name
            led.mkdir(parents=True, exist_ok=True)
            (led / "brightness").write_text("0\n")
            (led / "max_brightness").write_text("255\n")
            (led / "trigger").write_text("[none] timer\n")
        self.extra += (
            f'\n[metrics]\nlisten = "127.0.0.1:{self.metrics_port}"\n'
            f'\n[leds]\nsysfs_root = "{self.leds}"\n'
        )
        super().__post_init__()

    @property
    def leds(self) -> Path:
        return self.root / "leds"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def write_config(self) -> None:
        super().write_config()
        text = self.config.read_text(encoding="utf-8")
        patched = text.replace("\nlock_wait = 10\n", "\nlock_wait = 300\n")
        if patched == text:
            raise AssertionError("the harness's config no longer sets lock_wait = 10")
        self.config.write_text(patched, encoding="utf-8")

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            assert response.status == 200
            text: str = response.read().decode("utf-8")
            return text

    def lights(self) -> dict[str, str]:
        """What each LED shows: "off", "on", or "blink ON/OFF" (milliseconds)."""
        return {color: led_state(self.leds / name) for color, name in LED_NAMES.items()}


def led_state(led: Path) -> str:
    trigger = (led / "trigger").read_text().strip()
    if trigger == "timer":
        return f"blink {(led / 'delay_on').read_text()}/{(led / 'delay_off').read_text()}"
    if trigger != "none":
        return f"untouched ({trigger})"
    return "off" if (led / "brightness").read_text().strip() == "0" else "on"


OK = {"green": "on", "amber": "off", "red": "off"}
WORKING = {"green": "blink 150/150", "amber": "off", "red": "off"}
SAFE_TO_REMOVE = {"green": "blink 1000/1000", "amber": "off", "red": "off"}
ATTENTION = {"green": "off", "amber": "on", "red": "off"}
FAILURE = {"green": "off", "amber": "off", "red": "on"}


@contextlib.contextmanager
def repository_locked(practice: Practice, repository: Path) -> Iterator[None]:
    """Hold ``repository``'s lock with ``borg with-lock``: the daemon's borg waits for it.

    The job stays running (deterministically, no sleep) until the block ends.
    """
    env = {
        "PATH": os.environ.get("PATH", ""),
        "BORG_PASSPHRASE": PASSPHRASE,
        "BORG_BASE_DIR": str(practice.root / "test-borg"),
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        "LANG": "C.UTF-8",
    }
    holder = subprocess.Popen(
        [
            binary("borg"),
            "with-lock",
            str(repository),
            binary("python3"),
            "-c",
            "import sys; sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        env=env,
    )
    try:
        wait_for(lambda: (repository / "lock.exclusive").exists(), what="borg with-lock")
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
