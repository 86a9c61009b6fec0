"""The machine's clock, passed in by the daemon and the CLI as a ``coffre.core.clock.Clock``."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
