"""`make run`: the demo works out of the box."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.parts import binary


def test_the_demo_makes_a_first_backup_and_says_what_to_try(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    env = {**os.environ, "COFFRE_DEMO_DIR": str(root), "COFFRE_DEMO_ONCE": "1"}
    env.pop("COFFRE_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "coffre.demo"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "local: ok, archive demo-" in result.stderr
    assert (root / "passphrase").stat().st_mode & 0o777 == 0o600
    check = subprocess.run(
        [binary("coffre"), "config", "check", str(root / "coffre.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    # Run again on the same directory: it starts over cleanly on the existing repository.
    again = subprocess.run(
        [sys.executable, "-m", "coffre.demo"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "already initialised" in again.stdout
