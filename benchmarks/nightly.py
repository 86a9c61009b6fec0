"""coffre's side of the night benchmarks: a running daemon asked ``coffre backup --wait``.

The daemon is the harness's (a real ``coffre daemon`` process driven through
the CLI). Its repository is created by ``coffre target init``, given the
history with borg (coffre's own borg environment, so that the daemon's files
and chunks caches are the warm ones), and the archive list is put in state
once with ``coffre prune``: the night then works from state, as on a box.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.integration.harness import PASSPHRASE, Daemon, NotifyListener

from benchmarks.common import (
    PREFIX,
    TIMEZONE,
    BenchPractice,
    BorgCall,
    Figure,
    Night,
    Side,
    Snapshot,
    Stopwatch,
    Wrapper,
    archive_names,
    make_history,
    median,
)
from benchmarks.history import History
from coffre.borg.env import BorgEnvironment
from coffre.config import loader as coffre_config
from coffre.core.config_types import Config

#: The watchdog of the measured daemon: a ping each second (half of it), so
#: that an idle window of a few seconds sees enough pings to count.
WATCHDOG_USEC = 2_000_000

_ARCHIVE_DONE = re.compile(r"^local: ok, archive (\S+)$", re.MULTILINE)


class NotifyPump:
    """Reads the daemon's notify socket all along (the harness reads it only when asked).

    Unread, a datagram socket holds 10 messages (net.unix.max_dgram_qlen);
    the 11th ``sendall`` of the daemon would then block its loop.
    """

    def __init__(self, listener: NotifyListener) -> None:
        self._sock = listener.sock
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self.watchdogs: list[float] = []
        self._thread = threading.Thread(target=self._read, name="notify-pump", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                raw = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if b"WATCHDOG=1" in raw.split(b"\n"):
                with self._changed:
                    self.watchdogs.append(time.monotonic())
                    self._changed.notify_all()

    def pings(self) -> int:
        with self._changed:
            return len(self.watchdogs)

    def next_ping(self, timeout: float) -> float:
        """Wait for the next WATCHDOG=1; return when it came (monotonic)."""
        with self._changed:
            seen = len(self.watchdogs)
            if not self._changed.wait_for(lambda: len(self.watchdogs) > seen, timeout):
                raise AssertionError(f"no watchdog ping within {timeout} s")
            return self.watchdogs[seen]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class RunningDaemon:
    daemon: Daemon
    pump: NotifyPump

    def stop(self) -> None:
        self.pump.stop()
        code = self.daemon.stop()
        if code != 0:
            raise AssertionError(f"coffre daemon exited {code}; its log:\n{self.daemon.logs()}")


def start_daemon(practice: BenchPractice, watchdog_usec: int | None = None) -> RunningDaemon:
    daemon = Daemon(practice, watchdog_usec=watchdog_usec).ready()
    return RunningDaemon(daemon, NotifyPump(daemon.notify))


def far_from_now(tz: ZoneInfo) -> str:
    """A nightly time 12 hours away: the timer never fires during the benchmark."""
    return (datetime.now(tz) + timedelta(hours=12)).strftime("%H:%M")


@dataclass
class CoffreSide:
    """``coffre backup --wait`` on a warm, running daemon."""

    root: Path
    history: History
    borg: str
    name: str = "coffre"
    practice: BenchPractice = field(init=False)
    config: Config = field(init=False)
    running: RunningDaemon | None = field(init=False, default=None)
    last_archive: str = field(init=False, default="")

    def __post_init__(self) -> None:
        tz = ZoneInfo(TIMEZONE)
        self.practice = BenchPractice(
            self.root, timezone=TIMEZONE, prefix=PREFIX, daily=far_from_now(tz)
        )
        self.config = coffre_config.load(self.practice.config)
        paths = self.config.paths
        self.snapshot = Snapshot(
            self.root.parent / "saved" / "coffre",
            {
                "repo": self.practice.repository(),
                "borg-base": paths.borg_base,
                "borg-cache": paths.borg_cache,
                # Saved and restored only while the daemon is stopped (closed,
                # its write-ahead log is merged and removed).
                "state-db": paths.state_db,
            },
        )

    @property
    def share(self) -> Path:
        return self.practice.share

    def borg_env(self) -> dict[str, str]:
        """coffre's own borg environment (the daemon's caches), with the passphrase."""
        paths = self.config.paths
        env = BorgEnvironment(self.borg, paths.borg_base, paths.borg_cache).build()
        return {**env, "BORG_PASSPHRASE": PASSPHRASE}

    # --- set-up -------------------------------------------------------------

    def build(self) -> None:
        """Create the repository through the daemon, add the history, put it in state."""
        running = start_daemon(self.practice)
        try:
            self.practice.coffre("target", "init", "local", check=True)
            make_history(
                self.borg,
                self.borg_env(),
                self.practice.repository(),
                self.share,
                self.history.archives,
            )
            listed = json.loads(self.practice.coffre("prune", "--json", check=True).stdout)
            outcome = listed["local"]
            if outcome["delete"] or len(outcome["keep"]) != len(self.history.archives):
                raise AssertionError(f"the history is not all kept: {outcome}")
        finally:
            running.stop()
        # The daemon is stopped: its state database is closed, its log merged.
        wal = self.config.paths.state_db.with_name(self.config.paths.state_db.name + "-wal")
        if wal.exists():
            raise AssertionError(f"{wal} outlived the daemon: the database cannot be copied alone")
        self.snapshot.take()

    def count(self, wrapper: Wrapper) -> tuple[list[BorgCall], Night]:
        """One night with ``borg.binary`` set to the counting wrapper, then back as built."""
        self.practice.extra = f'binary = "{wrapper.path}"'
        self.practice.write_config()
        self.running = start_daemon(self.practice)
        try:
            wrapper.calls()
            night = self.night()
            calls = wrapper.calls()
            self.check()
        finally:
            self.stop()
            self.practice.extra = ""
            self.practice.write_config()
            self.snapshot.restore()
        return calls, night

    def start(self) -> RunningDaemon:
        """The daemon the nights are measured on (and whose idle state is measured)."""
        self.running = start_daemon(self.practice, watchdog_usec=WATCHDOG_USEC)
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    # --- the night ----------------------------------------------------------

    def reset(self) -> None:
        # The daemon runs: its database stays; borg's dirs and the repository
        # go back, then state is told the list again (borg list, nothing deleted).
        self.snapshot.restore(["repo", "borg-base", "borg-cache"])
        listed = json.loads(self.practice.coffre("prune", "--json", check=True).stdout)
        if listed["local"]["delete"]:
            raise AssertionError(f"reset: the history is not all kept: {listed}")

    def night(self) -> Night:
        assert self.running is not None, "the daemon is not started"
        watch = Stopwatch(self.running.daemon.process.pid)
        result = self.practice.coffre("backup", "--wait", check=True, timeout=900)
        night = watch.stop()
        found = _ARCHIVE_DONE.search(result.stderr)
        if found is None:
            raise AssertionError(f"coffre backup said:\n{result.stderr}")
        self.last_archive = found.group(1)
        return night

    def check(self) -> str:
        names = archive_names(self.borg, self.borg_env(), self.practice.repository())
        return check_night(names, self.history, self.last_archive, self.name)


def check_night(names: set[str], history: History, tonight: str, side: str) -> str:
    """Raise unless ``names`` is the history plus ``tonight``, less some of it; say what went."""
    before = {a.name for a in history.archives}
    if tonight not in names or names - before != {tonight}:
        raise AssertionError(f"{side}: after the night the repository holds {sorted(names)}")
    gone = sorted(before - names)
    return ", ".join(gone) or "nothing"


@dataclass
class Nights:
    """Wall times of each side's nights, measured in alternation."""

    times: dict[str, list[Night]] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)

    def median(self, side: str) -> float:
        """The median wall time of ``side``'s nights."""
        return median([n.wall for n in self.times[side]])

    def median_cpu(self, side: str) -> float:
        return median([n.cpu for n in self.times[side]])


def comparison(nights: Nights, label: str, ours: str, theirs: str, target: float) -> list[Figure]:
    """The ratio of the medians of ``ours`` to ``theirs``: wall time (the figure), and CPU time.

    The CPU time line is there because the wall time of a shared machine is
    noisy: both should agree.
    """
    figures = []
    for what, mine, other in (
        ("wall", nights.median(ours), nights.median(theirs)),
        ("CPU", nights.median_cpu(ours), nights.median_cpu(theirs)),
    ):
        ratio = mine / other
        figures.append(
            Figure(
                f"{label}, {what}",
                f"{mine:.2f} s vs {other:.2f} s, ratio {ratio:.2f}",
                f"ratio <= {target:.2f}",
                ratio <= target,
            )
        )
    return figures


def measure(sides: Sequence[Side], reps: int, *, warmup: int = 1) -> Nights:
    """``reps`` nights of each side, rotating which goes first, after ``warmup`` unmeasured ones.

    Before each night its side is put back as it was before the first.
    """
    nights = Nights({side.name: [] for side in sides})
    for rep in range(warmup + reps):
        shift = rep % len(sides)
        for side in [*sides[shift:], *sides[:shift]]:
            side.reset()
            night = side.night()
            nights.deleted[side.name] = side.check()
            if rep >= warmup:
                nights.times[side.name].append(night)
            print(
                f"  {'warm-up' if rep < warmup else f'rep {rep - warmup + 1}'} "
                f"{side.name:<10} {night.wall:6.2f} s (CPU {night.cpu:5.2f} s)",
                flush=True,
            )
    return nights
