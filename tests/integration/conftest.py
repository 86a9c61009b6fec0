"""Fixtures shared by the integration tests: the Debian package, built once per session; a
journald to log to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.appliance import build_deb
from tests.integration.journal import journald_running
from tests.parts import in_ci

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_deb() -> Path:
    """dist/coffre_<version>-1_<arch>.deb, built once by ``make deb`` (as root: it
    installs its build dependencies when missing)."""
    if os.geteuid() != 0:
        message = "needs root: make deb installs what it needs"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return build_deb(REPO, revision=1)


@pytest.fixture
def journald() -> Iterator[None]:
    """A running journald: the machine's, or one started for the test (no systemd as PID 1)."""
    with journald_running():
        yield
