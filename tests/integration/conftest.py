"""Fixtures shared by the integration tests: the Debian package, built once per session; a
journald to log to; a daemon on the test module's ``practice``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.appliance import build_deb
from tests.integration.harness import Daemon, Practice, running_daemon
from tests.integration.journal import journald_running
from tests.parts import needs_root

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_deb() -> Path:
    """dist/coffre_<version>-1_<arch>.deb, built once by ``make deb`` (as root: it
    installs its build dependencies when missing)."""
    needs_root("make deb installs what it needs")
    return build_deb(REPO, revision=1)


@pytest.fixture
def journald() -> Iterator[None]:
    """A running journald: the machine's, or one started for the test (no systemd as PID 1)."""
    with journald_running():
        yield


@pytest.fixture
def daemon(practice: Practice) -> Iterator[Daemon]:
    """A ready ``coffre daemon`` on the ``practice`` fixture of the test's module, stopped
    after the test."""
    yield from running_daemon(practice)
