"""(s) An unchanged night read from a btrfs snapshot against the same night read live (issue 14).

One real btrfs filesystem on a loop device (``tests.integration.btrfs_volume``,
a sparse image of VOLUME_MIB MiB under the bench folder) holds ONE share, made a
subvolume by the real ``coffre share setup`` and filled with ``share.fill``
(``files`` files, default ``share.FILES``). Two practices (``BenchPractice``:
coffre's default checkpoint interval) back that same share up, each into its
own local repository, with its own running daemon: side "snapshot"
(``[snapshots] enabled = true``: a read-only snapshot, then borg in the
target's view ``.coffre-versions/.vues/local``) and side "live"
(``enabled = false``: borg reads the share itself). Both use
``[quiescence] max_wait_seconds = 0``: neither waits, each looks once
(smbstatus and the walk of change times).

Both daemons run all along, as a box's does (warm imports, an open state
database); the nights never overlap, and the idle daemon wakes once every ten
minutes at most (its share desk's tending; the live side's does nothing, the
snapshots being off), so it does not weigh on the other's night.

First a full backup of each side, then WARMUPS unchanged nights each (the
first snapshot nights re-read files: borg's files cache never memorises the
files of a run's newest change time), then ``reps`` pairs of unchanged nights,
alternating which side goes first; ``sync`` before each night. A night's time
is the daemon's own record of its backup run (``coffre status --json``:
``targets.local.last_attempt.duration``, from the run's start, quiet look and
snapshot included, to the end of borg create and the view's removal; the
prune that ``coffre backup`` runs afterwards is a run of its own, outside it).
The wall time around ``coffre backup --wait --target local`` (prune and CLI
included, the same on both sides) is printed alongside, and so are borg's own
duration of the archive (``borg info --json``, after the night: borg's
start-up and cache loading are not in it) and the run's start to the read
point's time (``share.reads.local.at``), which the sides do not place alike:
the snapshot side's is taken before its snapshot and the walk of its change
times, the live side's after its walk.

Each night is checked: the snapshot side read ``method == "snapshot"``, the
live side ``live``; and the guard's night figures
(``guard.nights.local.figures``) say whether a snapshot night read file
content: ``added + modified`` at most MAX_CHANGED (borg never memorises the
files of a run's newest change time) and ``new_bytes`` under MAX_NEW_BYTES.

Measured on the 2-core development machine (20,000 files), with the views
bind mounts of the run's snapshot: medians 1.037 and 1.045 (pairs 0.99 to
1.09), snapshot nights reading no content; borg's archive takes the same
time on both sides, and coffre's own work some 0.08 s more, mostly the quiet
look's walk of the new snapshot, whose inodes are not in memory yet (0.05 s
more than the live share's). Before, with each view a snapshot of the
snapshot (a new subvolume again), borg read every inode cold a second time:
1.17, 1.13, 1.13, 1.13 (borg's archive 0.17 s more).

The figure: the median of the pairs' ratios snapshot / live, target TARGET;
a second line says whether every snapshot night read no file content.
``python -m benchmarks snapshot_night`` runs it alone; it needs root (the
loop device).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.btrfs_volume import btrfs_volume

from benchmarks import share
from benchmarks.common import PREFIX, TIMEZONE, BenchPractice, Figure, median
from benchmarks.nightly import RunningDaemon, far_from_now, start_daemon

TARGET = 1.05
REPS = 7
WARMUPS = 2
#: The loop device's image (sparse): the share (some 200 MB on btrfs) and its versions.
VOLUME_MIB = 3072
#: An unchanged night read from a snapshot: files borg re-read at most, new bytes under.
MAX_CHANGED = 2
MAX_NEW_BYTES = 200_000
SNAPSHOT, LIVE = "snapshot", "live"


@dataclass(frozen=True)
class NightRecord:
    """One unchanged night of one side, as the daemon recorded it and as the CLI waited."""

    side: str
    run: float
    wall: float
    to_point: float
    borg: float
    method: str
    figures: dict[str, int]

    @property
    def changed(self) -> int:
        return self.figures.get("added", 0) + self.figures.get("modified", 0)

    @property
    def new_bytes(self) -> int:
        return self.figures.get("new_bytes", 0)

    def describe(self) -> str:
        f = self.figures
        return (
            f"{self.side:<8} run {self.run:6.2f} s (before the read point {self.to_point:5.2f} s, "
            f"borg's archive {self.borg:5.2f} s, the rest {self.run - self.borg:5.2f} s), "
            f"CLI wall {self.wall:6.2f} s; read {self.method}; files {f.get('files')}, "
            f"added {f.get('added')}, modified {f.get('modified')}, new_bytes {f.get('new_bytes')}"
        )


@dataclass(frozen=True)
class Pair:
    """One rep: the snapshot side's night and the live side's."""

    snapshot: NightRecord
    live: NightRecord

    @property
    def ratio(self) -> float:
        return self.snapshot.run / self.live.run

    @property
    def wall_ratio(self) -> float:
        return self.snapshot.wall / self.live.wall


class BenchSide:
    """One practice on the shared share, its daemon, and its nights."""

    def __init__(self, root: Path, share_at: Path, *, snapshots: bool) -> None:
        self.name = SNAPSHOT if snapshots else LIVE
        self.practice = BenchPractice(
            root,
            daily=far_from_now(ZoneInfo(TIMEZONE)),
            prefix=PREFIX,
            share_at=share_at,
            extra=f"\n[snapshots]\nenabled = {'true' if snapshots else 'false'}\n",
        )
        self.running: RunningDaemon | None = None

    def start(self) -> None:
        self.running = start_daemon(self.practice)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def full(self) -> float:
        """The repository made and the first (full) backup; its wall seconds."""
        self.practice.coffre("target", "init", "local", check=True)
        os.sync()
        began = time.perf_counter()
        self.practice.coffre("backup", "--wait", "--target", "local", check=True, timeout=3600)
        return time.perf_counter() - began

    def night(self) -> NightRecord:
        """One unchanged night, after ``sync``; raises AssertionError when the run failed
        or read the share another way than this side's."""
        before = self._last_attempt(self.practice.status())
        os.sync()
        began = time.perf_counter()
        self.practice.coffre("backup", "--wait", "--target", "local", check=True, timeout=1800)
        wall = time.perf_counter() - began
        status = self.practice.status()
        attempt = self._last_attempt(status)
        if attempt is None or attempt == before or attempt["outcome"] != "success":
            raise AssertionError(f"{self.name}: the night's run is not a new success: {attempt}")
        read = status["share"]["reads"]["local"]
        expected = "snapshot" if self.name == SNAPSHOT else "live"
        if read["method"] != expected:
            raise AssertionError(f"{self.name}: the night read {read['method']}: {read}")
        started = datetime.fromisoformat(attempt["started_at"])
        point = datetime.fromisoformat(read["at"])
        figures = status["guard"]["nights"]["local"]["figures"]
        return NightRecord(
            side=self.name,
            run=float(attempt["duration"]),
            wall=wall,
            to_point=(point - started).total_seconds(),
            borg=self._borg_duration(str(attempt["archive"])),
            method=str(read["method"]),
            figures={k: int(v) for k, v in figures.items() if isinstance(v, int | float)},
        )

    def _borg_duration(self, archive: str) -> float:
        """borg's own duration of ``archive`` (its start to its save: borg's start-up,
        the repository's opening and the cache's loading are not in it)."""
        repo = self.practice.repository()
        info = json.loads(self.practice.borg("info", "--json", f"{repo}::{archive}").stdout)
        return float(info["archives"][0]["duration"])

    @staticmethod
    def _last_attempt(status: dict[str, Any]) -> dict[str, Any] | None:
        attempt: dict[str, Any] | None = status["targets"]["local"]["last_attempt"]
        return attempt


def set_up(volume: Path, root: Path, files: int) -> tuple[BenchSide, BenchSide]:
    """The share made a subvolume on ``volume`` and filled; the two sides on it."""
    (volume / "cabinet").mkdir(mode=0o755)
    share_at = volume / "cabinet" / "partage"
    snap = BenchSide(root / SNAPSHOT, share_at, snapshots=True)
    snap.practice.coffre("share", "setup", check=True)
    live = BenchSide(root / LIVE, share_at, snapshots=False)
    began = time.monotonic()
    stats = share.fill(share_at, files)
    print(
        f"snapshot_night: share of {stats.files} files in {stats.folders} folders, "
        f"{stats.size / 1e6:.0f} MB on btrfs (written in {time.monotonic() - began:.0f} s)",
        flush=True,
    )
    return snap, live


def measure(snap: BenchSide, live: BenchSide, reps: int) -> list[Pair]:
    """Full backups, WARMUPS unmeasured nights per side, then ``reps`` pairs, alternating."""
    for side in (snap, live):
        print(f"  full backup {side.name:<8} {side.full():6.1f} s", flush=True)
    for n in range(WARMUPS):
        for side in (snap, live):
            print(f"  warm-up {n + 1} {side.night().describe()}", flush=True)
    pairs = []
    for rep in range(reps):
        order = (snap, live) if rep % 2 == 0 else (live, snap)
        records = {side.name: side.night() for side in order}
        pair = Pair(records[SNAPSHOT], records[LIVE])
        for side in order:
            print(f"  rep {rep + 1} {records[side.name].describe()}", flush=True)
        print(f"  rep {rep + 1} ratio {pair.ratio:.3f} (CLI wall {pair.wall_ratio:.3f})")
        pairs.append(pair)
    return pairs


def figures(pairs: list[Pair]) -> list[Figure]:
    """The ratio's figure, and whether every measured snapshot night read no file content."""
    ratio = median([p.ratio for p in pairs])
    snap_runs = [p.snapshot.run for p in pairs]
    live_runs = [p.live.run for p in pairs]
    print(
        f"snapshot_night: median ratio {ratio:.3f} (min {min(p.ratio for p in pairs):.3f}, "
        f"max {max(p.ratio for p in pairs):.3f}); snapshot run median {median(snap_runs):.2f} s, "
        f"live {median(live_runs):.2f} s; CLI wall ratio median "
        f"{median([p.wall_ratio for p in pairs]):.3f}; before the read point, median: "
        f"snapshot {median([p.snapshot.to_point for p in pairs]):.2f} s, "
        f"live {median([p.live.to_point for p in pairs]):.2f} s"
    )
    for name, nights in ((SNAPSHOT, [p.snapshot for p in pairs]), (LIVE, [p.live for p in pairs])):
        print(
            f"  {name:<8} borg's archive median {median([n.borg for n in nights]):.2f} s, "
            f"the rest (borg's start-up, coffre's own work) "
            f"{median([n.run - n.borg for n in nights]):.2f} s"
        )
    changed = max(p.snapshot.changed for p in pairs)
    new_bytes = max(p.snapshot.new_bytes for p in pairs)
    return [
        Figure(
            "(s) unchanged night from a snapshot / live, daemon's run time (median of pairs)",
            f"{ratio:.3f}",
            f"<= {TARGET}",
            ratio <= TARGET,
        ),
        Figure(
            "(s) unchanged snapshot nights: files re-read (max), new bytes (max)",
            f"{changed}, {new_bytes} B",
            f"<= {MAX_CHANGED}, < {MAX_NEW_BYTES} B",
            changed <= MAX_CHANGED and new_bytes < MAX_NEW_BYTES,
        ),
    ]


def require_parts() -> None:
    """Raise SystemExit, saying why, unless this runs as root with mkfs.btrfs installed
    (the full run asks first: a refusal after the other benchmarks would lose their table)."""
    if os.geteuid() != 0:
        raise SystemExit("snapshot_night needs root: it mounts a btrfs image on a loop device")
    if shutil.which("mkfs.btrfs") is None:
        raise SystemExit("snapshot_night needs mkfs.btrfs (apt install btrfs-progs)")


def benchmark(root: Path, *, files: int = share.FILES, reps: int = REPS) -> list[Figure]:
    """The whole benchmark under ``root``; its figures. Raises SystemExit when not root
    or without mkfs.btrfs, AssertionError when a night fails or reads the wrong way."""
    require_parts()
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        volume = stack.enter_context(btrfs_volume(VOLUME_MIB, under=root))
        snap, live = set_up(volume, root, files)
        for side in (snap, live):
            side.start()
            stack.callback(side.stop)
        pairs = measure(snap, live, reps)
    return figures(pairs)
