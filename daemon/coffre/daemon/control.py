"""The control socket's server: JSON lines over a Unix socket, in the daemon's loop.

A client connects, sends one request line (a JSON object with an ``op``),
and reads event lines until one has ``"event": "result"`` (or ``"error"``);
then the connection closes. Only root (or the daemon's own user) may talk to
the daemon: the socket file is 0600 and the peer's uid is checked. The line is
parsed here (:func:`coffre.core.messages.parse_request`): the handler gets a
typed request, and a malformed one gets a usage error naming its field. The
CLI's side is ``coffre.cli.client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from coffre.core.errors import CoffreError, PermissionRefused, UsageError
from coffre.core.messages import (
    MAX_REQUEST,
    PING,
    Client,
    Event,
    Request,
    Send,
    encode,
    error_info,
    parse_request,
)

Handler = Callable[[Request, Send, Client], Awaitable[None]]

#: What the daemon reads, at most, of the rest of a request line too long before
#: it answers: a client still sending then gets the answer, not a reset
#: connection. A client sending more is cut off.
_DRAIN_MAX = 64 * MAX_REQUEST


def error_message(error: CoffreError) -> Event:
    """The final line that reports ``error`` to the client."""
    return {"event": "error", **error_info(error)}


def _peer(writer: asyncio.StreamWriter) -> tuple[int, int]:
    """(uid, pid) of the client, as the kernel saw them at connect time."""
    sock: socket.socket = writer.get_extra_info("socket")
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid), int(pid)


async def _watch_hangup(reader: asyncio.StreamReader, client: Client) -> None:
    # After its request a client sends only pings; the end of input means it hung up.
    with contextlib.suppress(ConnectionError, ValueError):
        while line := await reader.readline():
            if line.strip() == PING.strip():
                client.pinged.set()
    client.gone.set()


def _replace_stale(path: Path) -> None:
    """Remove a socket file no daemon listens behind; CoffreError when one does."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if not path.exists():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise CoffreError(
                f"another coffre daemon already listens on {path}",
                hint="stop it first (systemctl stop coffre)",
            )


async def _read_request(reader: asyncio.StreamReader) -> Request:
    """The request line of a client, parsed.

    Raises UsageError for a line too long (drained first, so that a client
    still sending gets the answer), not a JSON object with an op, or a field
    :func:`parse_request` refuses; IncompleteReadError/ConnectionError when the
    client went away.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as ended:
        line = ended.partial  # a last line without its newline, as readline gives it
    except asyncio.LimitOverrunError:
        # Not readline: its ValueError does not say whether the newline
        # was consumed, and draining past it would wait for ever.
        await _drain_line(reader)
        raise request_too_large() from None
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict) or not isinstance(raw.get("op"), str):
            raise ValueError("not an object with an op")
    except ValueError:
        raise UsageError(
            "bad request: expected one JSON object with an op per line",
            hint="use the coffre command of this box",
        ) from None
    return parse_request(raw)


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` and hand each request, parsed, to ``handler``.

    A stale socket file (no daemon behind it) is replaced; a live one means
    another daemon runs, and CoffreError is raised. ``handler`` receives the
    typed request, a ``send`` coroutine and the :class:`Client`; a CoffreError
    it raises, or one raised reading the request, is sent to the client as an
    error line.
    """
    _replace_stale(path)
    allowed = {0, os.geteuid()}

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(message: Mapping[str, object]) -> None:
            writer.write(encode(message))
            await writer.drain()

        watcher: asyncio.Task[None] | None = None
        try:
            uid, pid = _peer(writer)
            if uid not in allowed:
                refused = PermissionRefused(
                    "only root may control coffre", hint="run the command with sudo"
                )
                await send(error_message(refused))
                return
            try:
                request = await _read_request(reader)
                client = Client(uid=uid, pid=pid, gone=asyncio.Event(), pinged=asyncio.Event())
                watcher = asyncio.create_task(_watch_hangup(reader, client))
                await handler(request, send, client)
            except CoffreError as error:
                await send(error_message(error))
        except (ConnectionError, asyncio.IncompleteReadError):
            # The client went away (Ctrl-C on `coffre backup --wait`): the job goes on.
            pass
        finally:
            if watcher is not None:
                watcher.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST)
    finally:
        os.umask(old_umask)
    return server


def request_too_large() -> UsageError:
    """The error a request line over :data:`MAX_REQUEST` bytes gets (exit 2)."""
    return UsageError(
        f"request too large: {MAX_REQUEST} bytes at most; "
        "ask for fewer paths at once, or for the folder that holds them",
        hint="a folder restores everything under it: coffre restore Patients/DUPONT",
    )


async def _drain_line(reader: asyncio.StreamReader) -> None:
    """Read and drop a line too long, up to its newline or :data:`_DRAIN_MAX` bytes.

    readuntil left what it had buffered; the client may still be sending the
    rest. Raises nothing: a client gone or sending without end only ends the drain.
    """
    drained = 0
    with contextlib.suppress(ConnectionError):
        while drained < _DRAIN_MAX:
            chunk = await reader.read(MAX_REQUEST)
            drained += len(chunk)
            if not chunk or b"\n" in chunk:
                return
