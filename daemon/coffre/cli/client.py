"""The CLI's side of the control socket: send one request, read the daemon's event lines.

Blocking and small (no asyncio): every ``coffre`` command that asks the daemon
starts with it. The daemon's side is ``coffre.daemon.control``; both speak the
shapes of ``coffre.core.messages``.
"""

from __future__ import annotations

import contextlib
import json
import pwd
import socket
import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from coffre.core.errors import DaemonUnavailable, PermissionRefused
from coffre.core.messages import FINAL_EVENTS, Event, Person, Request, encode

__all__ = ["peer_pid", "person_from_env", "request"]


def person_from_env(env: Mapping[str, str], uid: int) -> Person:
    """Who is asking, as the CLI sees it, for the ``person`` of an audited request.

    ``env`` is the CLI's environment, ``uid`` its real uid. ``user`` is the
    person (``SUDO_USER``, else ``LOGNAME``/``USER``, else the account name of
    ``uid``, else the uid as text), ``login`` the account name of ``uid`` (None
    if it has none), ``ssh`` the ``SSH_CONNECTION`` ("client-ip client-port
    server-ip server-port") or None. Empty variables count as unset. Raises
    nothing; only reads the passwd database.
    """
    try:
        login: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        login = None
    # The environment is what the caller claims (only root reaches the daemon);
    # "login" and "uid" are what the kernel says, so both are kept.
    user = env.get("SUDO_USER") or env.get("LOGNAME") or env.get("USER") or login or str(uid)
    return Person(user=user, login=login, uid=uid, ssh=env.get("SSH_CONNECTION") or None)


def peer_pid(sock: socket.socket) -> int:
    """The pid of the process at the other end of a connected Unix socket (the daemon)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    return int(pid)


def request(
    path: Path,
    message: Request | Mapping[str, object],
    *,
    timeout: float | None = None,
    on_socket: list[socket.socket] | None = None,
) -> Iterator[Event]:
    """Send ``message`` to the daemon at ``path``; yield the event lines it answers.

    ``message`` is a typed request, or a JSON object as it is (tests of the
    wire send what no typed request would). ``on_socket``, when given, receives
    the connected socket: shutting it down from another thread ends the
    request (``coffre browse`` at end of input).

    Raises DaemonUnavailable when no daemon listens there or it hangs up before
    its final line, PermissionRefused when the socket refuses us.
    """
    line = encode(message if isinstance(message, Mapping) else message.to_json())
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
            sock.sendall(line)
        for raw in _lines(stream):
            event = json.loads(raw)
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
