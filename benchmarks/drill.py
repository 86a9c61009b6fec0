"""(h) A restore drill's extract against a bare ``borg extract`` of the very same files.

One practice: ``files`` small files (``share.fill``) and BIG_FILES files of
BIG_SIZE random bytes (incompressible: borg's work on them is not flattered),
backed up into one archive by ``coffre backup --wait``; a daemon runs
throughout, idle but for the drills asked. The drill's sample is
``[drills] files = SAMPLE_FILES``, ``mib = SAMPLE_MIB``: the big files (the
largest that fit) and small ones at random.

Each rep: ``coffre drill --json --target local``, whose ``extract_seconds``
is the time the daemon measured around its one ``borg extract`` of the
sample (what the restore-time estimate divides by), then, with the paths the
drill read (its "asked" line in the audit log), a bare ``borg extract
REPO::ARCHIVE pp:PATH...`` into a fresh folder, timed with ``perf_counter``
around the process, as a person would type it (its own BORG_BASE_DIR, the
passphrase exported). ``sync`` runs before each run; a warm-up pair is
discarded. The figure is the median of the reps' ratios (drill / bare,
target TARGET): the drill's extract costs what borg's does, its ``--list``
and coffre's runner included.

``python -m benchmarks drill`` runs it alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks import share
from benchmarks.common import PREFIX, TIMEZONE, BenchPractice, Figure, borg_env, median
from benchmarks.nightly import far_from_now, start_daemon

TARGET = 1.15
REPS = 9
#: Files in the share besides the big ones.
FILES = 2_000
#: The big files: their count and size (random bytes).
BIG_FILES = 8
BIG_SIZE = 16_000_000
SAMPLE_FILES = 200
SAMPLE_MIB = 200


@dataclass(frozen=True)
class Pair:
    """One rep: the drill's extract and the bare extract of the same paths, seconds; bytes."""

    drill: float
    bare: float
    nbytes: int
    nfiles: int

    @property
    def ratio(self) -> float:
        return self.drill / self.bare


class DrillBench:
    """The practice, its daemon, and the two ways of extracting a drill's sample."""

    def __init__(self, root: Path, borg: str) -> None:
        self.root = root
        self.borg = borg
        extra = f"\n[drills]\nfiles = {SAMPLE_FILES}\nmib = {SAMPLE_MIB}\n"
        self.practice = BenchPractice(
            root, daily=far_from_now(ZoneInfo(TIMEZONE)), prefix=PREFIX, extra=extra
        )
        self.env = borg_env(root / "bare-borg")

    def set_up(self, files: int) -> int:
        """The share, its repository, its one archive; the share's bytes."""
        stats = share.fill(self.practice.share, files)
        big = self.practice.share / "imagerie"
        big.mkdir()
        for n in range(BIG_FILES):
            (big / f"IRM-{n:02}.dat").write_bytes(os.urandom(BIG_SIZE))
        self.practice.coffre("target", "init", "local", check=True)
        self.practice.coffre("backup", "--wait", check=True, timeout=1800)
        return stats.size + BIG_FILES * BIG_SIZE

    def drill(self) -> tuple[float, int, int, str, list[str]]:
        """One drill: (extract seconds, bytes, files, archive, the paths it read)."""
        result = self.practice.coffre("drill", "--json", "--target", "local", timeout=1800)
        if result.returncode != 0:
            raise AssertionError(f"coffre drill failed:\n{result.stdout}\n{result.stderr}")
        outcome = json.loads(result.stdout)["targets"]["local"]
        log = self.practice.state_dir / "audit.log"
        lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        asked = [line for line in lines if line["op"] == "drill" and line["outcome"] == "asked"]
        return (
            float(outcome["extract_seconds"]),
            int(outcome["nbytes"]),
            int(outcome["nfiles"]),
            str(outcome["archive"]),
            list(asked[-1]["paths"]),
        )

    def bare(self, archive: str, paths: list[str], into: Path) -> float:
        """``borg extract`` of ``paths`` into the empty folder ``into``; its wall seconds."""
        into.mkdir()
        repo = f"{self.practice.repository()}::{archive}"
        os.sync()
        began = time.perf_counter()
        result = subprocess.run(
            [self.borg, "extract", repo, *(f"pp:{p}" for p in paths)],
            env=self.env,
            cwd=into,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        seconds = time.perf_counter() - began
        if result.returncode != 0:
            raise AssertionError(f"bare borg extract exited {result.returncode}\n{result.stderr}")
        shutil.rmtree(into)
        return seconds

    def pair(self, n: int) -> Pair:
        os.sync()
        drill, nbytes, nfiles, archive, paths = self.drill()
        bare = self.bare(archive, paths, self.root / f"bare-{n}")
        return Pair(drill, bare, nbytes, nfiles)


def benchmark(root: Path, borg: str, *, files: int = FILES, reps: int = REPS) -> list[Figure]:
    """The whole benchmark under ``root``; its figure for the table (and printed figures)."""
    root.mkdir(parents=True, exist_ok=True)
    bench = DrillBench(root, borg)
    running = start_daemon(bench.practice)
    try:
        began = time.monotonic()
        size = bench.set_up(files)
        print(
            f"drill: share of {files} small files and {BIG_FILES} x {BIG_SIZE / 1e6:.0f} MB "
            f"random ones, {size / 1e6:.0f} MB, backed up in {time.monotonic() - began:.0f} s",
            flush=True,
        )
        bench.pair(0)  # warm-up: borg's security dir, the page cache of the repository
        pairs = [bench.pair(n) for n in range(1, reps + 1)]
    finally:
        running.stop()
    for n, p in enumerate(pairs, start=1):
        print(
            f"  rep {n}: {p.nfiles} files, {p.nbytes / 1e6:.0f} MB: drill extract {p.drill:.2f} s "
            f"({p.nbytes / p.drill / 1e6:.0f} MB/s), bare {p.bare:.2f} s "
            f"({p.nbytes / p.bare / 1e6:.0f} MB/s), ratio {p.ratio:.3f}"
        )
    ratio = median([p.ratio for p in pairs])
    rate = median([p.nbytes / p.drill for p in pairs])
    print(f"drill: median ratio {ratio:.3f}; median drill extract rate {rate / 1e6:.0f} MB/s")
    return [
        Figure(
            "(h) drill's extract / bare borg extract of the same sample, wall (median of reps)",
            f"{ratio:.3f}",
            f"<= {TARGET}",
            ratio <= TARGET,
        )
    ]
