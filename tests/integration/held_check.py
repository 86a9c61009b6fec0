"""``coffre daemon`` whose check is a real borg holding the repository's lock (test only).

Run as the harness's ``wrap``: ``python -m tests.integration.held_check COFFRE daemon
--log-target stderr`` starts the real daemon, as ``coffre daemon`` does, with one
difference: its check (``check_target``) is ``borg with-lock REPO <wait>``, a real borg
process that holds the repository's exclusive lock (what would delay a backup) until
it is stopped, or for :data:`HOLD_SECONDS`. The command it runs under the lock ends as
soon as that borg is gone (it watches its parent), so no ``sleep`` outlives the test.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from coffre.config import loader
from coffre.core.errors import UsageError
from coffre.daemon.clock import SystemClock
from coffre.daemon.notify import Notifier
from coffre.daemon.service import Daemon
from coffre.jobs.maintenance import EntryPoints
from coffre.jobs.services import Services
from coffre.proof.maintenance_plan import CheckKind
from coffre.storage import logs

#: The longest the held check runs if nobody stops it.
HOLD_SECONDS = 600

_WAIT = (
    f"i=0; while kill -0 $PPID 2>/dev/null && [ $i -lt {HOLD_SECONDS * 5} ]; "
    "do sleep 0.2; i=$((i+1)); done"
)


@dataclass(frozen=True)
class Checked:
    at: datetime
    ok: bool = True
    complete: bool = True


async def held_check(
    services: Services, target: str, kind: CheckKind, *, budget: float | None
) -> Checked:
    """A real borg holding ``target``'s lock until stopped (the daemon's runner stops it)."""
    location = services.config.target(target).location
    await services.borg.run(("with-lock", location, "sh", "-c", _WAIT))
    return Checked(services.clock.now())


@dataclass(frozen=True)
class Drilled:
    at: datetime
    outcome: str


async def no_drill(services: Services, target: str, *, person: Mapping[str, str] | None) -> Drilled:
    raise UsageError("no drills in this test daemon")


def main(argv: list[str]) -> int:
    """``argv``: the coffre binary the harness names, then ``daemon --log-target T``."""
    named = argv[argv.index("--log-target") + 1] if "--log-target" in argv else "stderr"
    targets: dict[str, logs.LogTarget] = {"auto": "auto", "journal": "journal", "stderr": "stderr"}
    config = loader.load(loader.resolve_path(None, os.environ), check_files=False)
    logger = logs.setup(targets[named])
    daemon = Daemon(
        config,
        clock=SystemClock(),
        notifier=Notifier(os.environ),
        logger=logger,
        maintenance=EntryPoints(check=held_check, drill=no_drill),
    )
    return asyncio.run(daemon.run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
