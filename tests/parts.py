"""Finding the real parts the tests drive: in CI a missing part fails, elsewhere it skips."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Fail (CI) or skip (elsewhere) a test whose real part is not installed."""
    message = f"{what} is not installed: `make setup` installs it"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def needs_root(why: str) -> None:
    """Fail (CI) or skip (elsewhere) a test that must run as root, for ``why``."""
    if os.geteuid() != 0:
        message = f"needs root: {why}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def binary(name: str) -> str:
    """The path of ``name``: from the project's virtualenv first, then PATH."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        missing(name)
        raise AssertionError("unreachable")
    return found


def libfaketime() -> str:
    """The path of libfaketime's shared library (for LD_PRELOAD); fails (CI) or skips."""
    candidates = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not candidates:
        binary("faketime")  # fails in CI, skips elsewhere
        raise AssertionError("libfaketime not found")
    return str(candidates[0])


def faketime_from_file(clock_file: Path) -> dict[str, str]:
    """The environment that runs a process (and its children) on libfaketime's clock.

    ``clock_file`` holds the offset (``+12d``), re-read at every call: writing it
    moves the process's wall clock; its monotonic clock stays the real one.
    """
    return {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME_TIMESTAMP_FILE": str(clock_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
