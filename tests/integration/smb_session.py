"""A workstation holding a file open over SMB, with a real ``smbclient`` session.

smbclient's ``open <name>`` asks smbd for the file with read and write access
(FILE_READ_DATA | FILE_WRITE_DATA, sharing read and write), falls back to read
only when that is refused, and keeps the handle until the session ends. The
session is an interactive smbclient fed through a pipe: it lives, and the file
stays open, until the pipe is closed.

Whether the open is there is read from smbd itself (``smbstatus --locks
--json``, the raw JSON, not coffre's reader): smbclient's own output is
buffered until it exits.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from tests.integration.harness import wait_for
from tests.parts import binary

#: FILE_WRITE_DATA in an open's access mask.
WRITE_DATA = 0x2


class SmbServer(Protocol):
    """What a session needs of a running smbd: its smb.conf and a client's command line."""

    conf: Path

    def client_argv(self, user: str) -> list[str]:
        """smbclient on the share as ``user`` (with the password), without a command."""
        ...


def access_masks(server: SmbServer, name: str) -> list[int]:
    """The access masks of the opens smbd lists now on the file ``name`` of the share."""
    out = subprocess.run(
        [binary("smbstatus"), "--locks", "--json", f"--configfile={server.conf}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    files = json.loads(out).get("open_files", {})
    return [
        int(detail["access_mask"]["hex"], 16)
        for entry in files.values()
        if entry["filename"] == name
        for detail in entry["opens"].values()
    ]


@contextlib.contextmanager
def held_open(server: SmbServer, user: str, name: str) -> Iterator[int]:
    """``name`` (relative to the share) held open by a session of ``user``; yields its mask.

    On exit the session ends and this waits until smbd no longer lists the
    open. Raises AssertionError when the open does not show within 30 s.
    """
    client = subprocess.Popen(
        server.client_argv(user),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert client.stdin is not None
    try:
        client.stdin.write(f'open "{name}"\n')
        client.stdin.flush()

        def opened() -> bool:
            if client.poll() is not None:
                raise AssertionError(f"smbclient exited {client.returncode}")
            return bool(access_masks(server, name))

        wait_for(opened, timeout=30, what=f"smbd to list an open of {name!r}")
        [mask] = access_masks(server, name)
        yield mask
    finally:
        # communicate() closes smbclient's input: it quits, and its session with it.
        try:
            client.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            client.kill()
            client.communicate()
    wait_for(lambda: not access_masks(server, name), timeout=30, what=f"{name!r} closed")


@contextlib.contextmanager
def held_for_writing(server: SmbServer, user: str, name: str) -> Iterator[None]:
    """``name`` held open for reading and writing by a session of ``user``.

    ``name`` must exist and be writable by ``user``. Raises AssertionError when
    smbd granted only reading.
    """
    with held_open(server, user, name) as mask:
        assert mask & WRITE_DATA, f"smbd granted {mask:#x}, not writing"
        yield


@contextlib.contextmanager
def held_for_reading(server: SmbServer, user: str, name: str) -> Iterator[None]:
    """``name`` held open for reading only by a session of ``user``.

    smbclient asks for writing first: ``name`` must be a file ``user`` may read
    but not write (e.g. root's, mode 0440, group coffre-partage), so that smbd
    refuses writing and smbclient falls back to reading.
    """
    with held_open(server, user, name) as mask:
        assert not mask & WRITE_DATA, f"smbd granted {mask:#x}, writing"
        yield
