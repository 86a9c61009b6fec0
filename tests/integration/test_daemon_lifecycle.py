"""`coffre daemon` as systemd runs it: notify protocol, watchdog, clean stop, bad config."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.integration.harness import Daemon, Practice, daemon_running
from tests.parts import binary


def test_daemon_sends_ready_then_watchdog_pings_then_stopping(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    daemon = Daemon(practice, watchdog_usec=200_000).ready()
    try:
        ready = daemon.notify.expect("READY", "1")
        assert ready.get("STATUS") == "idle"
        daemon.notify.expect("WATCHDOG", "1", timeout=10)
        assert practice.socket.exists()
        assert practice.socket.stat().st_mode & 0o777 == 0o600
    finally:
        code = daemon.stop()
    assert code == 0
    assert any(m.get("STOPPING") == "1" for m in daemon.notify.messages)
    assert not practice.socket.exists()


def test_no_watchdog_pings_when_systemd_asks_none(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    with daemon_running(practice) as daemon:
        assert practice.status()["running"] is None  # a full round trip through the loop
    assert not any("WATCHDOG" in m for m in daemon.notify.messages)


def test_daemon_refuses_to_start_on_an_invalid_config(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    practice.config.write_text(
        practice.config.read_text().replace("[retention]", '[retention]\ndaily = "three"')
    )
    result = subprocess.run(
        [binary("coffre"), "daemon"], env=practice.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert 'retention.daily: expected an integer >= 1, got "three"' in result.stderr
    assert not practice.socket.exists()


def test_a_second_daemon_on_the_same_socket_is_refused(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    with daemon_running(practice):
        second = subprocess.run(
            [binary("coffre"), "daemon", "--log-target", "stderr"],
            env=practice.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "already listens" in second.stderr
        assert practice.status()["running"] is None  # the first one still answers


def test_sigint_stops_the_daemon_too(tmp_path: Path) -> None:
    daemon = Daemon(Practice(tmp_path)).ready()
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.process.wait(60) == 0
    daemon.notify.close()


def test_cli_without_daemon_says_so_and_exits_3(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    for args in (("status",), ("backup", "--wait"), ("archives",), ("prune",)):
        result = practice.coffre(*args)
        assert result.returncode == 3, args
        assert "daemon is not running" in result.stderr
