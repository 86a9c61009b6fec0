"""The control socket at its edge (coffre.daemon.control, coffre.cli.client): a request line
too long or malformed gets a clear answer."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from coffre.cli import client
from coffre.core.messages import MAX_REQUEST, Client, Event, JsonObject, Request, Send, encode
from coffre.daemon import control


async def echo(request: Request, send: Send, client: Client) -> None:
    await send({"event": "result", "ok": True, "op": request.op})


def ask(path: Path, message: JsonObject) -> list[Event]:
    """What the daemon answers ``message``, as the CLI reads it (a socket timeout: never hang)."""
    return list(client.request(path, message, timeout=30))


def ask_raw(path: Path, line: bytes) -> list[bytes]:
    """The lines answered to ``line`` sent as it is, then the end of input."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)  # a line without its newline ends with the input
        with sock.makefile("rb") as stream:
            return list(stream)


def served(tmp_path: Path, *calls: tuple[Any, ...]) -> list[Any]:
    """Run ``calls`` (a function and its arguments) one by one in a thread, against a server."""

    async def main() -> list[Any]:
        path = tmp_path / "control.sock"
        server = await control.serve(path, echo)
        try:
            return [await asyncio.to_thread(call[0], path, *call[1:]) for call in calls]
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


@pytest.mark.parametrize(
    "size",
    [
        # Short enough to arrive whole: readline would have eaten its newline.
        MAX_REQUEST + 10_000,
        # Long enough that the client is still sending when the daemon answers.
        8 * 1024 * 1024,
    ],
)
def test_a_request_over_the_limit_gets_a_usage_error_and_the_next_one_is_served(
    tmp_path: Path, size: int
) -> None:
    too_large = {"op": "restore", "paths": ["x" * size]}
    answered, after = served(tmp_path, (ask, too_large), (ask, {"op": "ping"}))
    assert answered == [
        {
            "event": "error",
            "kind": "usage",
            "exit_code": 2,
            "message": "request too large: 65536 bytes at most; ask for fewer paths at once, "
            "or for the folder that holds them",
            "hint": "a folder restores everything under it: coffre restore Patients/DUPONT",
        }
    ]
    assert after == [{"event": "result", "ok": True, "op": "ping"}]


def test_a_request_just_under_the_limit_is_served(tmp_path: Path) -> None:
    overhead = len(encode({"op": "ping", "pad": ""})) - 1  # without its newline
    line = {"op": "ping", "pad": "x" * (MAX_REQUEST - overhead)}
    assert len(encode(line)) == MAX_REQUEST + 1
    [answered] = served(tmp_path, (ask, line))
    assert answered == [{"event": "result", "ok": True, "op": "ping"}]


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'{"op": 3}\n', b"\xff\n", b"{"])
def test_a_malformed_request_is_a_usage_error_with_exit_code_2(tmp_path: Path, line: bytes) -> None:
    [answered] = served(tmp_path, (ask_raw, line))
    assert len(answered) == 1
    assert (
        encode(
            {
                "event": "error",
                "kind": "usage",
                "exit_code": 2,
                "message": "bad request: expected one JSON object with an op per line",
                "hint": "use the coffre command of this box",
            }
        )
        == answered[0]
    )
