"""(d) The offsite nightly job on unchanged data against a bare ``borg create`` over SSH.

Both sides send the same share to the same repository on a real sshd on
loopback (``tests.integration.sshd``), with the same borg, the same caches
(the daemon's: both start warm) and the same SSH command. coffre's side is
``coffre backup --target hds1 --wait`` on a running daemon: the control
socket, the preflight (a paramiko handshake and authentication), ``borg
create``, retention from state (nothing falls out: the repository holds one
archive of earlier today). The bare side is the ``borg create`` alone.

Before each night the repository, borg's base dir and caches are put back
as they were after the first upload, so that every night does the same work.

``python -m benchmarks.offsite [--files N] [--reps N]`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.integration.harness import PASSPHRASE, Daemon
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host

from benchmarks import share
from benchmarks.common import (
    CHECKPOINT_INTERVAL,
    COMPRESSION,
    PREFIX,
    TIMEZONE,
    Figure,
    Night,
    Snapshot,
    Stopwatch,
    print_table,
    run,
    use_box_checkpoint_interval,
    venv_binary,
)
from benchmarks.nightly import Nights, NotifyPump, RunningDaemon, comparison, far_from_now
from coffre.borg import argv as borg_argv
from coffre.borg.env import BorgEnvironment
from coffre.config import loader as coffre_config
from coffre.core.config_types import OffsiteTarget
from coffre.targets.offsite.repository import OffsiteBorg

TARGET = 1.15
LABEL = "(d) offsite night / bare borg create over SSH"


@dataclass
class OffsiteBenchPractice(OffsitePractice):
    """The test practice with coffre's default checkpoint interval (a night as on a box)."""

    def write_config(self) -> None:
        super().write_config()
        use_box_checkpoint_interval(self.config)


class Bench:
    """The host, the box, and the two ways of sending the night."""

    def __init__(self, root: Path, files: int) -> None:
        self.root = root
        self.borg = venv_binary("borg")
        self.host = Host(root, "hds1").start()
        tz = ZoneInfo(TIMEZONE)
        self.practice = OffsiteBenchPractice(
            root / "box",
            hosts={"hds1": self.host},
            timezone=TIMEZONE,
            prefix=PREFIX,
            daily=far_from_now(tz),
        )
        self.stats = share.fill(self.practice.share, files)
        daemon = Daemon(self.practice).ready()
        self.running: RunningDaemon | None = RunningDaemon(daemon, NotifyPump(daemon.notify))
        config = coffre_config.load(self.practice.config)
        target = next(t for t in config.targets if isinstance(t, OffsiteTarget))
        self.location = target.location
        paths = config.paths
        self.snapshot = Snapshot(
            root / "saved",
            {"repo": self.host.repo, "borg-base": paths.borg_base, "borg-cache": paths.borg_cache},
        )
        self.env = {
            **BorgEnvironment(self.borg, paths.borg_base, paths.borg_cache).build(),
            "BORG_PASSPHRASE": PASSPHRASE,
            # The very SSH command coffre gives borg for this target.
            "BORG_RSH": OffsiteBorg.rsh_of(target, paths),
        }
        self.bare_nights = 0

    def set_up(self) -> None:
        """Enroll the host, make the first (full) upload, remember the state after it."""
        enroll(self.practice, "hds1", self.host)
        self.practice.coffre("backup", "--target", "hds1", "--wait", check=True, timeout=3600)
        self.snapshot.take()

    def reset(self) -> None:
        self.snapshot.restore()
        # State is told the list again (borg list through the daemon, nothing deleted).
        listed = json.loads(
            self.practice.coffre("prune", "--target", "hds1", "--json", check=True).stdout
        )
        if listed["hds1"]["delete"] or len(listed["hds1"]["keep"]) != 1:
            raise AssertionError(
                f"reset: the repository is not as after the first upload: {listed}"
            )

    def coffre_night(self) -> Night:
        assert self.running is not None
        watch = Stopwatch(self.running.daemon.process.pid)
        result = self.practice.coffre("backup", "--target", "hds1", "--wait", check=True)
        night = watch.stop()
        if "hds1: ok, archive" not in result.stderr:
            raise AssertionError(f"coffre backup said:\n{result.stderr}")
        return night

    def bare_night(self) -> Night:
        self.bare_nights += 1
        args = borg_argv.create(
            self.location,
            f"bare-{self.bare_nights}",
            [str(self.practice.share)],
            compression=COMPRESSION,
            checkpoint_interval=CHECKPOINT_INTERVAL,
            progress=False,
        )
        watch = Stopwatch()
        run([self.borg, *args], self.env)
        return watch.stop()

    def close(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None
        self.host.stop()


def measure(root: Path, files: int, reps: int, *, warmup: int = 1) -> list[Figure]:
    """Set up, then ``reps`` nights of each side in alternation; the figures of the comparison."""
    bench = Bench(root, files)
    try:
        print(
            f"offsite: {bench.stats.files} files, {bench.stats.size / 1e6:.0f} MB, "
            f"sshd on 127.0.0.1:{bench.host.port}",
            flush=True,
        )
        bench.set_up()
        nights = Nights({"coffre": [], "bare": []})
        sides = [("coffre", bench.coffre_night), ("bare", bench.bare_night)]
        for rep in range(warmup + reps):
            order = sides if rep % 2 == 0 else sides[::-1]
            for name, night_of in order:
                bench.reset()
                night = night_of()
                if rep >= warmup:
                    nights.times[name].append(night)
                print(
                    f"  {'warm-up' if rep < warmup else f'rep {rep - warmup + 1}'} "
                    f"{name:<7} {night.wall:6.2f} s (CPU {night.cpu:5.2f} s)",
                    flush=True,
                )
        return comparison(nights, LABEL, "coffre", "bare", TARGET)
    finally:
        bench.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.offsite", description=__doc__)
    parser.add_argument("--files", type=int, default=share.FILES)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="coffre-offsite-run-", dir=args.dir))
    try:
        figures = measure(root, args.files, args.reps)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(figures)
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
