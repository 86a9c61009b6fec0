"""The metrics endpoint: a small HTTP/1.1 server in the daemon's loop, ``GET /metrics``.

No thread: the state's sqlite connection belongs to the loop, and an idle
daemon must stay one thread that only the watchdog wakes. One request per
connection (``Connection: close``).

It must stay up when a client misbehaves, whoever it is (a local user
shares 127.0.0.1 with the box's Prometheus agent):

- a client has ``head_deadline`` seconds (2) to send its whole request head;
  the agent on loopback sends it in microseconds;
- the slots are shared by :class:`coffre.observe.admission.Slots`: a flood
  of connections that never finish their head pushes out its own oldest,
  never the scraper's, which finishes at once;
- the answer is handed to the kernel whole where it fits its send buffer
  (a reader that never reads then holds no slot), and the rest of it gets
  ``answer_deadline`` seconds (10, Prometheus's default scrape timeout):
  a client that does not read is cut off then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from coffre.observe.admission import Limits, Slots

#: Seconds a client has, from its connection, to send its whole request head.
HEAD_DEADLINE = 2.0
#: Seconds the answer may take to leave once the head is read.
ANSWER_DEADLINE = 10.0
#: The longest request head read; longer is dropped.
MAX_HEAD = 8192
#: The send buffer asked of the kernel for a large answer (Linux caps it at
#: net.core.wmem_max, 208 KiB by default): a scrape fits whole.
SEND_BUFFER = 4 << 20
#: Seconds between two log lines about dropped or refused connections (a flood
#: must not flood the journal too).
REPORT_EVERY = 60.0

_Client = asyncio.Task[None]


class Endpoint:
    """Serves ``render()``'s bytes on ``GET /metrics`` (and ``HEAD``), with ``limits``.

    ``render`` is called at each scrape, in the loop; an exception it raises
    costs that scrape a 500 and an ERROR log line, never the daemon.
    """

    def __init__(
        self,
        render: Callable[[], bytes],
        logger: logging.Logger,
        *,
        limits: Limits | None = None,
        head_deadline: float = HEAD_DEADLINE,
        answer_deadline: float = ANSWER_DEADLINE,
    ) -> None:
        self._render = render
        self._logger = logger
        self._limits = limits or Limits()
        self._slots: Slots[_Client] = Slots(self._limits)
        self._head_deadline = head_deadline
        self._answer_deadline = answer_deadline
        self._server: asyncio.Server | None = None
        #: The open connections' writers, by their task.
        self._open: dict[_Client, asyncio.StreamWriter] = {}
        self._dropped = 0
        self._refused = 0
        self._reported = -REPORT_EVERY

    @property
    def connections(self) -> int:
        """The connections open now (being read or answered)."""
        return len(self._open)

    async def serve(self, host: str, port: int) -> bool:
        """Listen on ``host``:``port``; False (and an ERROR log line) when it cannot."""
        try:
            self._server = await asyncio.start_server(
                self._client,
                host,
                port,
                reuse_address=True,
                limit=MAX_HEAD,
                # A flood is accepted and sorted out here, not left in the kernel's queue
                # where the scraper's connection would wait behind it.
                backlog=self._limits.ceiling,
            )
        except OSError as error:
            self._logger.error(
                "metrics: cannot listen on %s:%d (%s); the daemon goes on without them "
                "(check metrics.listen in the configuration)",
                host,
                port,
                error.strerror or error,
            )
            return False
        self._logger.info("metrics served on http://%s:%d/metrics", _shown(host), port)
        return True

    async def close(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is None:
            return
        self._server.close()
        tasks = list(self._open)
        for task in tasks:
            self._cut(task)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        admission = self._slots.admit(task, address, loop.time())
        for dropped in admission.dropped:
            self._cut(dropped)
        self._dropped += len(admission.dropped)
        if not admission.admitted:
            self._refused += 1
            writer.transport.abort()
        self._report(loop.time())
        if not admission.admitted:
            return
        self._open[task] = writer
        try:
            await self._answer(reader, writer, task)
        except (
            ConnectionError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass  # the client left, was too slow or sent garbage: nothing to answer
        finally:
            self._slots.leave(task)
            self._open.pop(task, None)
            await _close(writer)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: _Client
    ) -> None:
        """Read the head, answer it, within their deadlines (TimeoutError past them)."""
        async with asyncio.timeout(self._head_deadline):
            head = await reader.readuntil(b"\r\n\r\n")
        self._slots.answering(task)
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
        answer = self._response(method, target.split(b"?", 1)[0])
        if len(answer) > 65536:
            with contextlib.suppress(OSError):
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, min(len(answer), SEND_BUFFER))
        async with asyncio.timeout(self._answer_deadline):
            writer.write(answer)
            await writer.drain()

    def _response(self, method: bytes, path: bytes) -> bytes:
        """The whole HTTP answer (head, and body unless ``HEAD``) to ``method`` on ``path``."""
        content_type = "text/plain; charset=utf-8"
        if method not in (b"GET", b"HEAD"):
            status, body = "405 Method Not Allowed", b"only GET\n"
        elif path == b"/metrics":
            try:
                body = self._render()
                status, content_type = "200 OK", CONTENT_TYPE_PLAIN_0_0_4
            except Exception:  # a bug here must cost a scrape, not the daemon
                self._logger.exception("metrics: the exposition failed")
                status, body = "500 Internal Server Error", b"see the daemon's log\n"
        elif path == b"/":
            status, body = "200 OK", b"coffre exporter: see /metrics\n"
        else:
            status, body = "404 Not Found", b"not found; see /metrics\n"
        header = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        return header if method == b"HEAD" else header + body

    def _cut(self, task: _Client) -> None:
        """Close ``task``'s connection now (no lingering) and end the task."""
        writer = self._open.pop(task, None)
        if writer is not None:
            writer.transport.abort()
        task.cancel()

    def _report(self, now: float) -> None:
        """Log what was dropped or refused since the last line, at most every REPORT_EVERY."""
        if not (self._dropped or self._refused) or now - self._reported < REPORT_EVERY:
            return
        self._logger.warning(
            "metrics: %d connection(s) dropped and %d refused since the last report: "
            "clients holding connections without sending their request (%d open)",
            self._dropped,
            self._refused,
            len(self._slots),
        )
        self._dropped = self._refused = 0
        self._reported = now


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection: at once when an answer is still unsent (a client that does
    not read must not keep it), else politely."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
        return
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host
