"""The control socket: JSON lines over a Unix socket, shared by daemon and CLI.

A client connects, sends one request line (a JSON object with an ``op``),
and reads event lines until one has ``"event": "result"`` (or ``"error"``);
then the connection closes. Only root (or the daemon's own user) may talk to
the daemon: the socket file is 0600 and the peer's uid is checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coffre.core.errors import CoffreError, DaemonUnavailable, PermissionRefused, UsageError
from coffre.core.messages import Message as Message
from coffre.core.messages import Send as Send

if TYPE_CHECKING:
    # The server side only: the CLI (the client) starts faster without asyncio.
    import asyncio


@dataclass(frozen=True)
class Client:
    """Who sent a request (kernel-checked uid and pid), whether they hung up, and their pings.

    ``gone`` is set when the client closes its end: a browse mount lives
    as long as the command that asked for it. ``pinged`` is set at each
    ``{"op": "in_use"}`` line the client sends after its request (``coffre
    browse`` sees who works in the mount; the hardened daemon cannot).
    """

    uid: int
    pid: int
    gone: asyncio.Event
    pinged: asyncio.Event


Handler = Callable[[Message, Send, Client], Awaitable[None]]

#: A request line longer than this is refused: requests are small.
MAX_REQUEST = 64 * 1024

#: What the daemon reads, at most, of the rest of a request line too long before
#: it answers: a client still sending then gets the answer, not a reset
#: connection. A client sending more is cut off.
_DRAIN_MAX = 64 * MAX_REQUEST

FINAL_EVENTS = frozenset({"result", "error"})

#: The line a client sends after its request to say its browse mount is in use.
PING = b'{"op":"in_use"}\n'


def encode(message: Message) -> bytes:
    """One JSON line."""
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def error_message(error: CoffreError) -> Message:
    """The final line that reports ``error`` to the client."""
    return {
        "event": "error",
        "kind": error.kind,
        "message": error.message,
        "hint": error.hint,
        "exit_code": error.exit_code,
    }


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


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` and hand each request to ``handler``.

    A stale socket file (no daemon behind it) is replaced; a live one means
    another daemon runs, and CoffreError is raised. ``handler`` receives the
    request and a ``send`` coroutine; a CoffreError it raises is sent to the
    client as an error line.
    """
    import asyncio

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if path.exists():
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
    allowed = {0, os.geteuid()}

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(message: Message) -> None:
            writer.write(encode(message))
            await writer.drain()

        watcher: asyncio.Task[None] | None = None
        try:
            uid, pid = _peer(writer)
            if uid not in allowed:
                await send(
                    error_message(
                        PermissionRefused(
                            "only root may control coffre", hint="run the command with sudo"
                        )
                    )
                )
                return
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as ended:
                line = ended.partial  # a last line without its newline, as readline gives it
            except asyncio.LimitOverrunError:
                # Not readline: its ValueError does not say whether the newline
                # was consumed, and draining past it would wait for ever.
                await _drain_line(reader)
                await send(error_message(request_too_large()))
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                    raise ValueError("not an object with an op")
            except ValueError:
                await send(
                    error_message(
                        UsageError(
                            "bad request: expected one JSON object with an op per line",
                            hint="use the coffre command of this box",
                        )
                    )
                )
                return
            client = Client(uid=uid, pid=pid, gone=asyncio.Event(), pinged=asyncio.Event())
            watcher = asyncio.create_task(_watch_hangup(reader, client))
            try:
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


def peer_pid(sock: socket.socket) -> int:
    """The pid of the process at the other end of a connected Unix socket (the daemon)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    return int(pid)


def request(
    path: Path,
    message: Message,
    *,
    timeout: float | None = None,
    on_socket: list[socket.socket] | None = None,
) -> Iterator[Message]:
    """Send ``message`` to the daemon at ``path``; yield the event lines it answers.

    ``on_socket``, when given, receives the connected socket: shutting it
    down from another thread ends the request (``coffre browse`` at end of input).

    Raises DaemonUnavailable when no daemon listens there, PermissionRefused
    when the socket refuses us.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except PermissionError as exc:
        sock.close()
        raise PermissionRefused(
            f"permission denied on {path}: only root may control coffre",
            hint="run the command with sudo",
        ) from exc
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise DaemonUnavailable(
            f"the coffre daemon is not running (no one listens on {path})",
            hint="start it: systemctl start coffre (or `coffre daemon`)",
        ) from exc
    if on_socket is not None:
        on_socket.append(sock)
    with sock, sock.makefile("rb") as stream:
        # The daemon may answer and hang up before reading all of the request (a
        # refused peer, a request too large): its answer is still ours to read below.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(encode(message))
        for line in _lines(stream):
            event = json.loads(line)
            if not isinstance(event, dict):
                continue
            yield event
            if event.get("event") in FINAL_EVENTS:
                return
    raise DaemonUnavailable(
        "the daemon closed the connection before answering",
        hint="it may have stopped; see `journalctl -u coffre`",
    )


def _lines(stream: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of ``stream``; a connection reset (the daemon hung up on unread data) ends them."""
    with contextlib.suppress(ConnectionResetError):
        yield from stream
