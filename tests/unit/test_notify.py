"""sd_notify: messages reach the socket; a reader that falls behind never blocks us."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from types import FrameType

import pytest

from coffre.daemon.notify import Notifier


def test_messages_reach_the_socket_and_watchdog_interval_is_half(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
        notifier.notify(READY="1", STATUS="idle")
        assert listener.recv(100) == b"READY=1\nSTATUS=idle"
    assert notifier.watchdog_interval == 2.0


def test_watchdog_meant_for_another_pid_is_ignored() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval is None


def test_a_socket_nobody_reads_never_blocks_the_sender(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"

    def hung(signum: int, frame: FrameType | None) -> None:
        pytest.fail("notify blocked on a full socket")

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        previous = signal.signal(signal.SIGALRM, hung)
        signal.alarm(20)
        try:
            for _ in range(500):  # far more than the kernel queues (max_dgram_qlen)
                notifier.notify(WATCHDOG="1")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        assert listener.recv(100) == b"WATCHDOG=1"


def test_without_a_socket_nothing_is_sent_and_nothing_raises() -> None:
    # Outside systemd (a terminal, the tests): every notify is a no-op.
    notifier = Notifier({})
    notifier.notify(READY="1", STATUS="idle")
    assert notifier.watchdog_interval is None


def test_an_abstract_socket_is_reached(tmp_path: Path) -> None:
    name = f"coffre-test-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        Notifier({"NOTIFY_SOCKET": "@" + name}).notify(STATUS="idle")
        assert listener.recv(100) == b"STATUS=idle"
