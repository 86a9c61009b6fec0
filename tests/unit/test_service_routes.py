"""The daemon's table of ops: every request a line may carry has its handler, typed by it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from coffre.core.messages import REQUEST_OPS, Client, PingRequest, StatusRequest
from coffre.daemon.notify import Notifier
from coffre.daemon.service import Daemon
from tests.fakes import LOCAL, Clock, config

NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)


def _daemon(tmp_path: Path) -> Daemon:
    return Daemon(
        config(tmp_path, LOCAL),
        clock=Clock(NOW),
        notifier=Notifier({}),
        logger=logging.getLogger("t"),
    )


def _client() -> Client:
    return Client(uid=0, pid=1, gone=asyncio.Event(), pinged=asyncio.Event())


def test_every_op_a_request_may_carry_has_a_handler(tmp_path: Path) -> None:
    # Running is only reached when a handler runs: the table is built without it.
    assert set(_daemon(tmp_path).routes(cast(Any, None))) == REQUEST_OPS


def test_a_request_goes_to_its_handler_and_no_other(tmp_path: Path) -> None:
    routes = _daemon(tmp_path).routes(cast(Any, None))
    sent: list[Mapping[str, object]] = []

    async def send(event: Mapping[str, object]) -> None:
        sent.append(event)

    async def ask() -> None:
        await routes["ping"](PingRequest(), send, _client())
        with pytest.raises(TypeError, match="StatusRequest routed to the handler of PingRequest"):
            await routes["ping"](StatusRequest(), send, _client())

    asyncio.run(ask())
    assert sent == [{"event": "result", "ok": True}]
