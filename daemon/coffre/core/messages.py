"""What the CLI and the daemon say to each other over the control socket.

One JSON object a line; ``Send`` streams a job's events back to its asker. Here,
below every package, so that both sides (and a job that streams progress) share
the shape without importing the socket's transport (``coffre.daemon.control``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
