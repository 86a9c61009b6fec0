"""Reading what the daemon wrote to journald: entries by MESSAGE_ID, with their fields.

The ``journald`` fixture (tests/integration/conftest.py) gives a journald to write to.
Tests wait on an entry's MESSAGE_ID and assert its ``COFFRE_*`` fields: what support
filters on, stable across releases, where a sentence's wording is not.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from coffre.storage import logs
from tests.integration.harness import wait_for
from tests.parts import binary, missing

JOURNALD = Path("/lib/systemd/systemd-journald")
#: This test session's start: the journal outlives it, and a later run's daemon may get
#: the PID an earlier run's had (CI caught one, its entries taken for this run's).
SESSION_START = int(time.time()) - 1


@contextlib.contextmanager
def journald_running() -> Iterator[None]:
    """A running journald: the machine's, or one started for the block (no systemd as PID 1)."""
    if logs.journald_listening():
        yield
        return
    if not JOURNALD.exists():
        missing("systemd-journald")
    process = subprocess.Popen([str(JOURNALD)])
    try:
        wait_for(logs.journald_listening, timeout=30, what="journald's socket")
        yield
    finally:
        process.terminate()
        process.wait(30)


def entries(message_id: str | None, pid: int) -> list[dict[str, str]]:
    """The journal's entries with ``message_id`` (None: any) written by process ``pid``
    since this test session began, oldest first."""
    subprocess.run([binary("journalctl"), "--sync"], check=False, capture_output=True)
    matches = [f"_PID={pid}"] if message_id is None else [f"MESSAGE_ID={message_id}", f"_PID={pid}"]
    out = subprocess.run(
        [binary("journalctl"), "--no-pager", "-o", "json", f"--since=@{SESSION_START}", *matches],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_for_entries(
    message_id: str, pid: int, count: int = 1, *, timeout: float = 30
) -> list[dict[str, str]]:
    """Wait until process ``pid`` wrote at least ``count`` entries with ``message_id``; return
    them all."""
    wait_for(
        lambda: len(entries(message_id, pid)) >= count,
        timeout=timeout,
        what=f"{count} journal entries MESSAGE_ID={message_id}",
    )
    return entries(message_id, pid)
