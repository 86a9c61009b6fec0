"""The share's desk in the daemon: made at start, and tended on the office hours' beat.

The loop wakes at each office slot (a Previous Version may be due) and at
least every ``TEND_EVERY`` seconds (versions expire, the filesystem may be
filling up), and asks the desk to tend the versions. The desk logs what fails
and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from coffre.consistency.quiescence import Quiescence
from coffre.consistency.share_desk import ShareDesk, office_hours
from coffre.consistency.version_plan import next_office
from coffre.core.clock import Clock
from coffre.core.config_types import Config
from coffre.jobs.supervision import unexpected
from coffre.storage.state import State

__all__ = ["TEND_EVERY", "share_desk", "tend_forever"]

#: Seconds between two looks at the versions and the free space, at most.
TEND_EVERY = 600.0


def share_desk(config: Config, state: State, clock: Clock, logger: logging.Logger) -> ShareDesk:
    """The daemon's desk over ``config``'s sources, with Samba's view of open files."""
    quiescence = Quiescence(config.quiescence, config.source.paths, logger)
    return ShareDesk(config, state, clock, logger, quiescence)


async def tend_forever(
    desk: ShareDesk,
    config: Config,
    clock: Clock,
    logger: logging.Logger,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Tend ``desk`` at every office slot and every TEND_EVERY seconds; never returns.

    What the desk does not handle itself (a bug) is logged with its traceback
    (``jobs.supervision.unexpected``) and the loop goes on.
    """
    hours = office_hours(config)
    while True:
        try:
            await desk.tend()
        except Exception as error:  # noqa: BLE001 - a bug here must not end the daemon's loop
            unexpected(error, "tending the Previous Versions", logger)
        now = clock.now()
        until_slot = (next_office(now, hours) - now).total_seconds()
        await sleep(max(min(until_slot, TEND_EVERY), 1.0))
