"""(h) The ransomware signal's cost: an unchanged night's ``borg create``, with and without it.

One practice-like share (``tests.integration.practice_share``: letters,
reports, images, notes, the dump, the programs, each with its magic bytes;
about ``files`` files), one repository, backed up once, then once more on
each side as a warm-up (the signal side plants its canaries then). Then, in
alternation, REPS unchanged nights per side, through coffre's own door
(``BorgRunner``), each making a new archive of the same share:

- plain: ``borg create`` with coffre's options, as before the guard;
- signal: the same with ``--list --filter=AMCE`` (``argv.create``'s
  ``list_changed``), then ``guard.night.assess``: canaries checked, the
  changed files sampled (on an unchanged night, the few borg lists ``A``
  because their ctime was the newest of the last run), the rules judged.

The figure is median(signal) / median(plain) - 1, wall time; the issue's bar
is 5 %. Best times are printed beside the medians: the machine is shared.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.practice_share import PracticeShare

from benchmarks import share
from benchmarks.common import CHECKPOINT_INTERVAL, COMPRESSION, Figure
from coffre.borg import argv, parse
from coffre.borg.env import BorgEnvironment
from coffre.borg.runner import BorgRunner
from coffre.core.config_types import GuardConfig
from coffre.guard.canaries import CanaryRecord
from coffre.guard.night import Baseline, assess

REPS = 7
#: Files a PracticeShare patient folder holds, about (for the size asked).
_FILES_PER_PATIENT = 8
TARGET = 0.05


class SignalBench:
    """The share, the repository and one night of each side."""

    def __init__(self, root: Path, borg: str, files: int) -> None:
        self.share = PracticeShare(root / "partage", random.Random(2026))
        self.share.build(patients=max(10, files // _FILES_PER_PATIENT))
        passphrase = secrets.token_urlsafe(24).encode()
        env = BorgEnvironment(borg, root / "borg-base", root / "borg-cache")
        self.runner = BorgRunner(
            env,
            lambda: passphrase,
            lock_wait=10,
            stop_timeout=30.0,
            logger=logging.getLogger("coffre.bench.signal"),
        )
        self.repo = str(root / "repo")
        asyncio.run(self.runner.run(argv.init(self.repo, encryption="repokey-blake2")))
        self.serial = 0
        self.now = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
        self.baseline: Baseline | None = None
        self.canaries: CanaryRecord | None = None
        self.rng = random.Random(5)

    def night(self, *, signal: bool) -> float:
        """One unchanged night of the ``signal`` side or the plain one; its wall seconds."""
        self.serial += 1
        self.now += timedelta(hours=1)
        args = argv.create(
            self.repo,
            f"cabinet-{self.serial:03d}",
            [str(self.share.root)],
            compression=COMPRESSION,
            checkpoint_interval=CHECKPOINT_INTERVAL,
            progress=False,
            list_changed=signal,
        )
        began = time.perf_counter()
        result = asyncio.run(self.runner.run(args))
        if signal:
            stats = parse.create(result.json())
            judged = assess(
                GuardConfig(),
                [self.share.root],
                files=stats.nfiles,
                original_bytes=stats.original_size,
                new_bytes=stats.deduplicated_size,
                statuses=result.file_statuses,
                baseline=self.baseline,
                canaries=self.canaries,
                now=self.now,
                rng=self.rng,
            )
            self.baseline = Baseline(stats.nfiles, self.now)
            self.canaries = judged.canaries
            if judged.signal is not None:
                raise AssertionError(f"an unchanged night gave a signal: {judged.signal}")
        return time.perf_counter() - began


def benchmark(root: Path, borg: str, *, files: int = share.FILES, reps: int = REPS) -> list[Figure]:
    """Set up under ``root``, measure both sides in alternation; the figure for the table."""
    root.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    bench = SignalBench(root, borg, files)
    count = len(bench.share.files())
    print(f"(h) change signal: {count} files, built in {time.monotonic() - began:.0f} s")
    first = bench.night(signal=False)
    print(f"    first backup {first:.1f} s; warm-up of each side")
    bench.night(signal=True)
    bench.night(signal=False)
    plain: list[float] = []
    signal: list[float] = []
    for rep in range(reps):
        # Alternate which side goes first: neither always gets the warmer cache.
        for side in (True, False) if rep % 2 else (False, True):
            (signal if side else plain).append(bench.night(signal=side))
    ratio = statistics.median(signal) / statistics.median(plain) - 1
    print(
        f"    plain  median {statistics.median(plain):.3f} s, best {min(plain):.3f} s\n"
        f"    signal median {statistics.median(signal):.3f} s, best {min(signal):.3f} s\n"
        f"    extra: median {100 * ratio:+.1f} %, best "
        f"{100 * (min(signal) / min(plain) - 1):+.1f} %",
        flush=True,
    )
    return [
        Figure(
            "(h) signal's cost, unchanged night",
            f"{100 * ratio:+.1f} %",
            f"<= {100 * TARGET:.0f} %",
            ratio <= TARGET,
        )
    ]
