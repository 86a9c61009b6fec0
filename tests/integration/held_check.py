"""``coffre daemon`` whose check is a real borg holding the repository's lock (test only).

Run as the harness's ``wrap``: ``python -m tests.integration.held_check COFFRE daemon
--log-target stderr`` starts the real daemon, as ``coffre daemon`` does, with one
difference: its check (``check_target``) is ``borg with-lock REPO sleep``, a real borg
process that holds the repository's exclusive lock (what would delay a backup) until
the check is stopped, or for :data:`HOLD_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
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


@dataclass(frozen=True)
class Checked:
    at: datetime
    ok: bool = True
    complete: bool = True


async def held_check(
    services: Services, target: str, kind: CheckKind, *, budget: float | None
) -> Checked:
    """A real borg holding ``target``'s exclusive lock until this coroutine is cancelled.

    ``borg with-lock`` waits for its command even after SIGTERM (Python's
    ``subprocess.call``), where a real ``borg check`` stops at once: so, once
    cancelled, the command under the lock is ended first; borg then commits,
    releases the lock and exits, as a stopped check would. Raises CancelledError then.
    """
    location = services.config.target(target).location
    pid_file = services.config.paths.state / "held-check.pid"
    pid_file.unlink(missing_ok=True)
    command = f'echo $$ > "{pid_file}"; exec sleep {HOLD_SECONDS}'
    run = asyncio.ensure_future(services.borg.run(("with-lock", location, "sh", "-c", command)))
    try:
        await asyncio.wait({run})  # unlike await, leaves ``run`` alone when we are cancelled
    except asyncio.CancelledError:
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            run.cancel()  # no command yet: the runner stops borg (SIGTERM, then the group)
        with contextlib.suppress(BaseException):
            await run  # borg ends with its command, commits and releases the lock
        raise
    run.result()
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
