"""(c) The idle daemon: its memory, and that nothing but the watchdog wakes it.

Measured on the daemon the nights ran on (so everything a night imports is
loaded), once it is idle: no job, no borg, no helper thread left. Its
resident memory is read from /proc; its wake-ups are the context switches
of all its threads over a window of whole watchdog intervals, set beside
the WATCHDOG=1 pings received in that window. Each ping wakes the loop
once, so a daemon that nothing else wakes shows one switch per ping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.harness import wait_for

from benchmarks.common import Figure
from benchmarks.nightly import WATCHDOG_USEC, RunningDaemon

RSS_TARGET_MIB = 40.0
#: A switch now and then that no ping explains (a preemption) is tolerated.
WAKEUPS_PER_PING_TARGET = 1.1


@dataclass(frozen=True)
class Idle:
    rss_mib: float
    peak_rss_mib: float
    threads: int
    seconds: float
    pings: int
    voluntary: int
    involuntary: int

    @property
    def wakeups(self) -> int:
        return self.voluntary + self.involuntary


def _status(pid: int) -> dict[str, str]:
    return _status_of(Path(f"/proc/{pid}/status"))


def _switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of all the threads of ``pid``."""
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = _status_of(task / "status")
        voluntary += int(status["voluntary_ctxt_switches"])
        involuntary += int(status["nonvoluntary_ctxt_switches"])
    return voluntary, involuntary


def _status_of(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _kib(value: str) -> float:
    number, unit = value.split()
    assert unit == "kB", value
    return int(number) / 1024


def measure(running: RunningDaemon, window: float) -> Idle:
    """Idle figures of the daemon over about ``window`` seconds (whole watchdog intervals)."""
    daemon, pump = running.daemon, running.pump
    pid = daemon.process.pid
    interval = WATCHDOG_USEC / 2_000_000
    wait_for(lambda: not daemon.children(), timeout=60, what="borg to exit")
    wait_for(
        lambda: int(_status(pid)["Threads"]) == 1, timeout=60, what="the daemon's threads to end"
    )
    # Start half an interval after a ping, and end a whole number of intervals
    # later: both readings fall between pings, never on one.
    pump.next_ping(timeout=10 * interval)
    time.sleep(interval / 2)
    intervals = max(1, round(window / interval))
    pings_before = pump.pings()
    voluntary_before, involuntary_before = _switches(pid)
    started = time.monotonic()
    time.sleep(intervals * interval)  # the measurement window itself
    voluntary_after, involuntary_after = _switches(pid)
    pings_after = pump.pings()
    seconds = time.monotonic() - started
    status = _status(pid)
    return Idle(
        rss_mib=_kib(status["VmRSS"]),
        peak_rss_mib=_kib(status["VmHWM"]),
        threads=int(status["Threads"]),
        seconds=seconds,
        pings=pings_after - pings_before,
        voluntary=voluntary_after - voluntary_before,
        involuntary=involuntary_after - involuntary_before,
    )


def figures(idle: Idle) -> list[Figure]:
    per_ping = idle.wakeups / idle.pings if idle.pings else float("inf")
    return [
        Figure(
            "(c) idle daemon RSS",
            f"{idle.rss_mib:.1f} MiB (peak {idle.peak_rss_mib:.1f} MiB)",
            f"<= {RSS_TARGET_MIB:.0f} MiB",
            idle.rss_mib <= RSS_TARGET_MIB,
        ),
        Figure(
            "(c) idle wake-ups per watchdog ping",
            f"{per_ping:.2f}: {idle.wakeups} switches ({idle.voluntary} voluntary) "
            f"for {idle.pings} pings in {idle.seconds:.1f} s, {idle.threads} thread(s)",
            f"<= {WAKEUPS_PER_PING_TARGET:.1f}, 1 thread",
            per_ping <= WAKEUPS_PER_PING_TARGET and idle.threads == 1,
        ),
    ]
