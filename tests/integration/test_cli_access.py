"""The control socket is root's: others get a clear refusal; configs are checked."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import coffre
from tests.integration.harness import Practice, daemon_running
from tests.parts import binary, missing

AsNobody = Callable[..., subprocess.CompletedProcess[str]]


def _reachable_by_anyone(path: Path) -> bool:
    """Whether every folder above ``path`` lets others through and ``path`` lets them read."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents) and bool(
        path.stat().st_mode & stat.S_IROTH
    )


def _interpreter_for_anyone() -> Path:
    """This Python (the venv's base, else the system's of the same version), if others may run it.

    Fails the test when none is: a venv made from an interpreter under /root
    (pyenv) leaves nobody without a Python of that version.
    """
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = (
        Path(sys.base_prefix) / "bin" / version,
        Path(sys.executable).resolve(),
        Path("/usr/bin") / version,
    )
    for candidate in candidates:
        if candidate.exists() and _reachable_by_anyone(candidate):
            return candidate
    raise AssertionError(f"no {version} that nobody may run among {candidates}")


@pytest.fixture
def as_nobody() -> Iterator[tuple[Practice, AsNobody]]:
    """A practice with its daemon, and a way to run the ``coffre`` CLI as ``nobody``.

    The checkout (and its virtualenv) may sit in a folder only root may enter
    (a clone in /root): nobody could not even start the venv's ``coffre``. So
    the package is copied into a world-readable temporary folder and run by
    the base interpreter, isolated (``-I``) from the venv and the environment:
    the CLI needs nothing but the standard library to reach the socket.
    """
    if os.geteuid() != 0:
        missing("root (to run the CLI as another user)")
    if shutil.which("setpriv") is None:
        missing("setpriv (util-linux)")
    python = _interpreter_for_anyone()
    with tempfile.TemporaryDirectory(prefix="coffre-as-nobody-") as scratch:
        top = Path(scratch)
        top.chmod(0o755)
        package = top / "lib" / "coffre"
        shutil.copytree(
            Path(coffre.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
        )
        practice = Practice(top / "practice")
        # nobody may read the configuration (to find the socket), not the passphrase.
        practice.config.chmod(0o644)
        for needed in (package / "cli" / "dispatch.py", practice.config):
            assert _reachable_by_anyone(needed), (
                f"nobody cannot reach {needed}: set TMPDIR to a folder anyone may enter"
            )

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    "setpriv",
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                    str(python),
                    "-I",
                    "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]); "
                    "from coffre.cli import main; sys.exit(main(sys.argv[2:]))",
                    str(package.parent),
                    *args,
                ],
                env={"COFFRE_CONFIG": str(practice.config), "PATH": "/usr/bin:/bin"},
                cwd=top,
                capture_output=True,
                text=True,
                timeout=60,
            )

        with daemon_running(practice):
            yield practice, run


def test_a_user_other_than_root_is_refused_with_a_clear_message(
    as_nobody: tuple[Practice, AsNobody],
) -> None:
    practice, run = as_nobody
    assert practice.socket.exists()
    result = run("status")
    assert result.returncode == 4, result.stderr
    assert "only root may control coffre" in result.stderr
    assert "sudo" in result.stderr


def test_the_daemon_itself_refuses_another_user_whom_the_socket_lets_in(
    as_nobody: tuple[Practice, AsNobody],
) -> None:
    practice, run = as_nobody
    # The socket's folder and mode are the first wall; the daemon checks the peer's uid
    # (SO_PEERCRED) as well, should someone loosen that mode.
    practice.socket.parent.chmod(0o755)
    practice.socket.chmod(0o666)
    result = run("status")
    assert result.returncode == 4, result.stderr
    assert "only root may control coffre" in result.stderr
    assert "permission denied on" not in result.stderr  # not the socket's mode: the daemon
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
