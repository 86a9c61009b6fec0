"""A box whose days pass under libfaketime: nightly runs on a local and an offsite target.

The daemon (and the borg it runs) sees the real time shifted by whole days,
read from a file libfaketime re-reads at every call: writing ``+12d`` there
moves the box twelve days on. Its ticks (half the watchdog's period) then
queue the nightly run that the jump made due; :meth:`GuardedBox.night` waits
for it and for the daemon to be idle again, as a practice's night passes.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.harness import Daemon, wait_for
from tests.integration.observing import ObservedPractice
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host
from tests.parts import faketime_from_file

LOCAL = "local"
HDS = "hds"
NIGHTLY_QUEUED = "nightly run due at"
#: Ticks every 2 s: a jump's missed nightly run is queued within a tick.
WATCHDOG_USEC = 4_000_000
#: The longest a night's jobs (backup, upload, retention) may take here.
NIGHT_BOUND = 300.0


@dataclass
class GuardedPractice(ObservedPractice, OffsitePractice):
    """Metrics and LEDs (observing), one offsite host (offsite_practice)."""


class GuardedBox:
    """The practice, its HDS host and its daemon under libfaketime, for ``with``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock_file = root / "faketime"
        self.days = 0
        self.stack = contextlib.ExitStack()
        self.host = Host(root, HDS)
        self.practice = GuardedPractice(
            root / "box",
            hosts={HDS: self.host},
            offsite_extra={HDS: "retry_for = 0\n"},
        )
        self.daemon: Daemon | None = None

    def __enter__(self) -> GuardedBox:
        try:
            self.host.start()
            self.stack.callback(self.host.stop)
            self.clock_file.write_text("+0d\n")
            self.daemon = Daemon(
                self.practice,
                env=faketime_from_file(self.clock_file),
                watchdog_usec=WATCHDOG_USEC,
            ).ready()
            self.stack.callback(self.daemon.stop)
            self.practice.coffre("target", "init", LOCAL, check=True)
            enroll(self.practice, HDS, self.host)
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    @property
    def share(self) -> Path:
        return self.practice.share

    def now(self) -> datetime:
        """The box's clock (the offset applied)."""
        return datetime.now(UTC) + timedelta(days=self.days)

    def logs(self) -> str:
        assert self.daemon is not None
        return self.daemon.logs()

    def night(self, day: int) -> None:
        """Set the box's clock to ``day`` days from today, and let that night's run end.

        ``day`` must differ from the current one: the run made due is queued
        by the next tick, then runs on every target (backup, upload, retention).
        """
        assert day != self.days, "the same day again makes no nightly run"
        queued = self.logs().count(NIGHTLY_QUEUED)
        self.days = day
        self.clock_file.write_text(f"{day:+d}d\n")
        wait_for(
            lambda: self.logs().count(NIGHTLY_QUEUED) > queued,
            timeout=60,
            what=f"the nightly run of day {day:+d} to be queued",
        )
        wait_for(self.idle, timeout=NIGHT_BOUND, what=f"the nightly run of day {day:+d} to end")

    def idle(self) -> bool:
        status = self.practice.status()
        return status["running"] is None and status["uploading"] is None and not status["queued"]

    def archives(self, target: str) -> dict[str, datetime]:
        """Name -> time of the archives of ``target`` (borg run by hand, as support would)."""
        repository = self.practice.repository(LOCAL) if target == LOCAL else self.host.repo
        listed = json.loads(self.practice.borg("list", "--json", str(repository)).stdout)
        return {
            a["name"]: datetime.fromisoformat(a["start"]).replace(tzinfo=UTC)
            for a in listed["archives"]
        }

    def incident(self) -> list[dict[str, Any]]:
        """The open incidents, as `coffre incident show --json` gives them."""
        out = self.practice.coffre("incident", "show", "--json", check=True).stdout
        incidents: list[dict[str, Any]] = json.loads(out)["incidents"]
        return incidents
