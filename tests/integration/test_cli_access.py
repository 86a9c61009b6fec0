"""The control socket is root's: others get a clear refusal; configs are checked."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from tests.integration.harness import Practice, daemon_running
from tests.parts import binary, missing


def test_a_user_other_than_root_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        missing("root (to run the CLI as another user)")
    if shutil.which("setpriv") is None:
        missing("setpriv (util-linux)")
    practice = Practice(tmp_path)
    with daemon_running(practice):
        # nobody may read the tree to load the configuration, not to use the socket.
        for parent in [tmp_path, *tmp_path.parents]:
            parent.chmod(stat.S_IMODE(parent.stat().st_mode) | 0o055)
        practice.config.chmod(0o644)
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                binary("coffre"),
                "status",
            ],
            env=practice.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 4, result.stderr
    assert "only root may control coffre" in result.stderr
    assert "sudo" in result.stderr


def test_config_check_reports_each_problem_with_its_key_path(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    practice.passphrase.chmod(0o644)
    practice.config.write_text(
        practice.config.read_text()
        .replace('daily = "01:30"', 'daily = "25:00"\ntimezone_ = "x"')
        .replace('timezone = "Europe/Paris"', 'timezone = "Europe/Pariss"')
    )
    result = subprocess.run(
        [binary("coffre"), "config", "check", str(practice.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert 'schedule.daily: expected a time of day "HH:MM" (00:00 to 23:59), got "25:00"' in (
        result.stderr
    )
    assert 'schedule.timezone: unknown timezone "Europe/Pariss"' in result.stderr
    assert "schedule.timezone_: unknown key" in result.stderr
    assert "readable by group or others" in result.stderr


def test_config_check_of_a_valid_file_exits_0(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    result = subprocess.run(
        [binary("coffre"), "config", "check", str(practice.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
