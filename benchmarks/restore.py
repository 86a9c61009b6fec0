"""(g) ``coffre restore`` against a bare ``borg extract``: one file, then the whole share.

One practice: the nights' share (``share.FILES`` files of 1 to 8 KiB in
``share.FOLDERS`` folders) plus one file of BIG_SIZE random bytes (they do
not compress: borg's work on it is not flattered) at BIG_FILE; ``coffre
target init local`` and ``coffre backup --wait`` make the one archive. A
daemon runs throughout, idle but for the restores asked.

Each case alternates the two sides, each into a fresh empty folder, after a
warm-up run of each (discarded, and the one whose output is checked: both
sides must write the very same bytes). Outputs are deleted outside the
timing: the single file's after each run, the whole share's at the end of
its case (see ``Case.keep_outputs``: deleting 20,000 files makes the next
extract slower on some filesystems); ``sync`` runs before each run, so that
no run pays for the write-back of the last.

- coffre: ``coffre restore PATH --to DIR``, timed from the shell as a whole
  command (``perf_counter`` around ``subprocess.run``): what the person waits
  for, the CLI's start-up, the daemon's job and its staging folder included.
  The CLI's stderr is a pipe, not a terminal: coffre asks borg for no
  item list. The whole share is one PATH: ``.`` (``restore_plan.resolve``
  takes it for the share's root).
- bare: ``borg extract REPO::ARCHIVE pp:STORED_PATH --strip-components=N``
  (no path for the whole share) run in DIR, as a person would type it: the
  passphrase in BORG_PASSPHRASE, the same LANG and TZ as coffre's borg, its
  own BORG_BASE_DIR, in which the warm-up left what a person's borg keeps
  (the repository's security dir; extract uses no cache).

The figures are the ratios of the medians of the wall times, one file
(target 1.2) and whole share (target 1.1). The daemon's processes are timed
by the kernel (``usb_plug.ProcessTrace``: fork and exit on the monotonic
clock; it needs root, as ``make bench`` does) during every run of both
sides; that breaks coffre's run down into before its ``borg extract``, the
extract, and after it, and shows that the daemon starts nothing during the
bare runs. Also shown, without a target: ``coffre --version`` (the CLI's
start-up alone), and the single file restored from a terminal (coffre then
asks borg for ``--list`` and shows the items as they come: what the person
at an SSH prompt waits for).

``python -m benchmarks restore`` runs it alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pty
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.harness import PASSPHRASE, wait_for

from benchmarks import share
from benchmarks.common import PREFIX, TIMEZONE, BenchPractice, Figure, Stopwatch, median, run
from benchmarks.nightly import RunningDaemon, far_from_now, start_daemon
from benchmarks.usb_plug import Child, ProcessTrace, step_name
from coffre.borg.env import BorgEnvironment
from coffre.cli import client
from coffre.config import loader as coffre_config
from coffre.core.restore_plan import STAGING_PREFIX

TARGET_ONE = 1.2
TARGET_FULL = 1.1
REPS_ONE = 7
REPS_FULL = 5
#: Runs of coffre's single-file restore from a terminal (shown, no target).
REPS_TTY = 3
#: The one big file, relative to the share, and its size (random bytes).
BIG_FILE = PurePosixPath("patients-123/imagerie-IRM-2024-03-18.dat")
BIG_SIZE = 1_000_000
#: Runs of ``coffre --version`` whose median is shown as the CLI's start-up.
VERSION_RUNS = 5

_ARCHIVE_DONE = re.compile(r"^local: ok, archive (\S+)$", re.MULTILINE)
_RESTORED = re.compile(r"^restored (\d+) file\(s\)", re.MULTILINE)


@dataclass(frozen=True)
class Case:
    """What is restored: ``path`` as given to coffre, ``stored`` as given to borg (None: all)."""

    name: str
    label: str
    path: str
    stored: str | None
    reps: int
    target: float
    #: Keep each run's output until the case ends instead of deleting it after the run.
    #: On ext4 without a journal (the VM it was first run on), creating an inode skips
    #: each free one deleted in the last minute or more (``recently_deleted`` under
    #: ``__ext4_new_inode``, seen with perf): after a run deleted 20,000 files, the
    #: next extract's kernel time grew from run to run (sys 8 s, then 13, 11, 14, 18 s
    #: for the same bare extract; 1 s on tmpfs), both sides alike, noise far above the
    #: differences measured. A box's journaled share has no such cost.
    keep_outputs: bool = False


@dataclass(frozen=True)
class Tree:
    """Regular files under a folder: how many, their bytes, a digest of names and contents."""

    files: int
    size: int
    digest: str


def tree(top: Path) -> Tree:
    """The :class:`Tree` of ``top`` (names relative to it, in a fixed order)."""
    files = size = 0
    summary = hashlib.sha256()
    for folder, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            files += 1
            size += len(data)
            summary.update(str(path.relative_to(top)).encode() + b"\0")
            summary.update(hashlib.sha256(data).digest())
    return Tree(files, size, summary.hexdigest())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_files(top: Path) -> int:
    return sum(len(names) for _folder, _dirs, names in os.walk(top))


@dataclass(frozen=True)
class Run:
    """One restore: its wall time (perf_counter), CPU time, and the daemon's processes meanwhile.

    ``began`` and ``ended`` are ``time.monotonic()``, the clock of the
    kernel's times in ``children``.
    """

    wall: float
    cpu: float
    began: float
    ended: float
    children: tuple[Child, ...]

    def extract(self) -> Child:
        """The daemon's ``borg extract`` (there must be one, and only one)."""
        found = [c for c in self.children if step_name(c.argv) == "borg extract"]
        if len(found) != 1 or found[0].exited is None:
            steps = [step_name(c.argv) for c in self.children]
            raise AssertionError(f"expected one finished borg extract in the daemon, saw {steps}")
        return found[0]

    def before(self) -> float:
        """From the command's start to the daemon's fork of borg."""
        return self.extract().forked - self.began

    def borg(self) -> float:
        extract = self.extract()
        assert extract.exited is not None
        return extract.exited - extract.forked

    def after(self) -> float:
        """From borg's exit to the command's."""
        extract = self.extract()
        assert extract.exited is not None
        return self.ended - extract.exited


@dataclass
class Runs:
    coffre: list[Run] = field(default_factory=list)
    bare: list[Run] = field(default_factory=list)

    def wall(self, side: str) -> float:
        return median([r.wall for r in (self.coffre if side == "coffre" else self.bare)])

    def cpu(self, side: str) -> float:
        return median([r.cpu for r in (self.coffre if side == "coffre" else self.bare)])


def _run_on_terminal(
    args: Sequence[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with its stderr on a pseudo-terminal (read all along, as a terminal would)."""
    master, slave = pty.openpty()
    shown: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal's other end exited
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=drain, name="pty-drain", daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            list(args),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=900,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    stderr = b"".join(shown).decode(errors="replace")
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, stderr)


class RestoreBench:
    """The practice, its daemon and archive, and the two ways of restoring from it."""

    def __init__(self, root: Path, borg: str) -> None:
        self.root = root
        self.borg = borg
        self.coffre_binary = str(Path(borg).parent / "coffre")
        self.practice = BenchPractice(
            root / "practice",
            timezone=TIMEZONE,
            prefix=PREFIX,
            daily=far_from_now(ZoneInfo(TIMEZONE)),
        )
        self.config = coffre_config.load(self.practice.config)
        self.out = root / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.repository = self.practice.repository()
        self.archive = ""
        # What a person types: the share's path as borg stores it, its folders stripped.
        relative = PurePosixPath(self.practice.share).relative_to("/")
        self.stored_share = str(relative)
        self.strip = len(relative.parts)
        # coffre's borg gets these (BorgEnvironment): the bare side gets the same.
        own = BorgEnvironment(borg, Path("/nonexistent"), Path("/nonexistent")).build()
        person = root / "person-borg"
        person.mkdir()
        self.bare_env = {
            "PATH": own["PATH"],
            "LANG": own["LANG"],
            "TZ": own["TZ"],
            "HOME": str(person),
            "BORG_BASE_DIR": str(person),
            "BORG_PASSPHRASE": PASSPHRASE,
        }
        self.running: RunningDaemon | None = None
        self._rounds = 0

    # --- set-up ---------------------------------------------------------------

    def set_up(self, files: int) -> share.ShareStats:
        """Fill the share, add the big file, start the daemon, make the one archive."""
        stats = share.fill(self.practice.share, files)
        big = self.practice.share / BIG_FILE
        big.parent.mkdir(parents=True, exist_ok=True)
        big.write_bytes(random.Random(3).randbytes(BIG_SIZE))
        self.running = start_daemon(self.practice)
        self._wait_idle()
        self.practice.coffre("target", "init", "local", check=True)
        result = self.practice.coffre("backup", "--wait", check=True, timeout=3600)
        found = _ARCHIVE_DONE.search(result.stderr)
        if found is None:
            raise AssertionError(f"coffre backup said:\n{result.stderr}")
        self.archive = found.group(1)
        self._wait_idle()
        return share.ShareStats(stats.files + 1, stats.folders, stats.size + BIG_SIZE)

    def _wait_idle(self) -> None:
        def idle() -> bool:
            final: dict[str, Any] = {}
            for event in client.request(
                self.config.paths.control_socket, {"op": "status"}, timeout=30
            ):
                final = event
            status = final["status"]
            return status["running"] is None and not status["queued"]

        wait_for(idle, timeout=120, what="the daemon to be idle")

    def close(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    @property
    def daemon_pid(self) -> int:
        assert self.running is not None, "the daemon is not started"
        return self.running.daemon.process.pid

    # --- one run of each side -----------------------------------------------------

    def fresh(self, side: str) -> Path:
        """A new empty folder for one run's output (same filesystem for both sides)."""
        self._rounds += 1
        folder = self.out / f"{side}-{self._rounds:03d}"
        folder.mkdir()
        return folder

    @contextlib.contextmanager
    def _traced(self) -> Iterator[list[Child]]:
        """The daemon's processes started meanwhile; nothing left to write back before."""
        os.sync()
        trace = ProcessTrace(self.daemon_pid)
        children: list[Child] = []
        try:
            yield children
        finally:
            children += trace.close()
        if trace.lost:
            raise AssertionError("the proc connector dropped events: the breakdown is partial")

    def coffre(self, case: Case, out: Path, *, terminal: bool = False) -> Run:
        args = [self.coffre_binary, "restore", case.path, "--to", str(out)]
        with self._traced() as children:
            watch = Stopwatch(self.daemon_pid)
            began = time.monotonic()
            start = time.perf_counter()
            if terminal:
                result = _run_on_terminal(args, self.practice.env)
            else:
                result = subprocess.run(
                    args, env=self.practice.env, capture_output=True, text=True, timeout=900
                )
            wall = time.perf_counter() - start
            ended = time.monotonic()
            cpu = watch.stop().cpu
        if result.returncode != 0:
            raise AssertionError(
                f"coffre restore exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        restored = _RESTORED.search(result.stdout)
        if restored is None:
            raise AssertionError(f"coffre restore said:\n{result.stdout}\n{result.stderr}")
        done = Run(wall, cpu, began, ended, tuple(children))
        # One borg extract (or the breakdown is wrong), with --list on a terminal only
        # (items counted as they are written) and never --progress (items read twice).
        argv = done.extract().argv
        if ("--list" in argv) != terminal or "--progress" in argv:
            raise AssertionError(f"borg extract ran as {done.extract().argv} (terminal {terminal})")
        return done

    def bare(self, case: Case, out: Path) -> Run:
        args = [self.borg, "extract", f"{self.repository}::{self.archive}"]
        if case.stored is not None:
            args.append(f"pp:{case.stored}")
        args.append(f"--strip-components={self.strip}")
        with self._traced() as children:
            watch = Stopwatch()
            began = time.monotonic()
            start = time.perf_counter()
            result = subprocess.run(
                args, env=self.bare_env, cwd=out, capture_output=True, text=True, timeout=900
            )
            wall = time.perf_counter() - start
            ended = time.monotonic()
            cpu = watch.stop().cpu
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stderr}")
        if children:
            steps = [step_name(c.argv) for c in children]
            raise AssertionError(f"the daemon started processes during a bare run: {steps}")
        return Run(wall, cpu, began, ended, ())

    # --- what the runs wrote ------------------------------------------------------

    def check_output(self, case: Case, out: Path, expected: Tree) -> None:
        """Cheap check of a run's output (after its timing): the right count of files."""
        leftovers = [p.name for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
        if leftovers:
            raise AssertionError(f"coffre left its staging folder in {out}: {leftovers}")
        if case.stored is not None:
            size = (out / BIG_FILE).stat().st_size
            if size != BIG_SIZE or count_files(out) != 1:
                raise AssertionError(f"{out} does not hold the one file restored ({size} bytes)")
        elif count_files(out) != expected.files:
            raise AssertionError(f"{out} holds {count_files(out)} files, not {expected.files}")


def measure(bench: RestoreBench, case: Case, expected: Tree) -> Runs:
    """A warm-up of each side (checked), then ``case.reps`` of each in alternation."""
    runs = Runs()
    kept: list[Path] = []
    if case.keep_outputs:
        # Blocks are 4 KiB: a file of 1 to 8 KiB takes one or two.
        need = 2 * (1 + case.reps) * (expected.size + expected.files * 4096)
        free = shutil.disk_usage(bench.out).free
        if free < need + 2**30:
            raise SystemExit(
                f"{case.name}: its outputs need {need / 1e9:.1f} GB (kept until its end) and "
                f"1 GB to spare; {bench.out} has {free / 1e9:.1f} GB free (see --dir)"
            )
    print(f"{case.name}: `coffre restore {case.path}` vs bare borg extract", flush=True)
    try:
        for rep in range(1 + case.reps):
            warmup = rep == 0
            label = "warm-up" if warmup else f"rep {rep}"
            order = ["coffre", "bare"] if rep % 2 == 0 else ["bare", "coffre"]
            outputs: dict[str, Path] = {}
            for side in order:
                out = bench.fresh(side)
                if side == "coffre":
                    done = bench.coffre(case, out)
                    detail = (
                        f"daemon: before borg {done.before():.2f} s, borg extract "
                        f"{done.borg():.2f} s, after {done.after():.2f} s"
                    )
                else:
                    done = bench.bare(case, out)
                    detail = "borg extract alone"
                bench.check_output(case, out, expected)
                print(
                    f"  {label:<7} {side:<6} {done.wall:6.2f} s (CPU {done.cpu:5.2f} s; {detail})",
                    flush=True,
                )
                if warmup:
                    outputs[side] = out
                else:
                    (runs.coffre if side == "coffre" else runs.bare).append(done)
                    _dispose(out, kept, case)
            if warmup:
                same_output(case, outputs, expected)
                for out in outputs.values():
                    _dispose(out, kept, case)
    finally:
        for out in kept:
            shutil.rmtree(out, ignore_errors=True)
    return runs


def _dispose(out: Path, kept: list[Path], case: Case) -> None:
    """Delete a run's output now, or keep it to the case's end (see Case.keep_outputs)."""
    if case.keep_outputs:
        kept.append(out)
    else:
        shutil.rmtree(out)


def same_output(case: Case, outputs: Mapping[str, Path], expected: Tree) -> None:
    """Both sides wrote what the share holds, byte for byte; say so."""
    if case.stored is not None:
        # ``expected`` is the big file's: its digest is the sha256 of its bytes.
        got = {side: sha256(out / BIG_FILE) for side, out in outputs.items()}
        if set(got.values()) != {expected.digest}:
            raise AssertionError(f"{case.name}: the file restored differs: {got}, {expected}")
        print(
            f"  checked: both sides wrote {BIG_FILE}, {BIG_SIZE} bytes, the share's "
            f"(sha256 {expected.digest[:16]}...)"
        )
        return
    trees = {side: tree(out) for side, out in outputs.items()}
    for side, found in trees.items():
        if found != expected:
            raise AssertionError(f"{case.name}: {side} wrote {found}, the share holds {expected}")
    print(
        f"  checked: both sides wrote the share's {expected.files} files, {expected.size} bytes, "
        f"same names and contents (sha256 of the tree {expected.digest[:16]}...)"
    )


def print_breakdown(case: Case, runs: Runs, cli_start: float) -> None:
    coffre = runs.coffre
    rows = [
        ("command's start to the daemon's fork of borg", median([r.before() for r in coffre])),
        ("borg extract, in the daemon", median([r.borg() for r in coffre])),
        ("borg's exit to the command's end", median([r.after() for r in coffre])),
        ("whole command", runs.wall("coffre")),
    ]
    print(f"{case.name}: coffre's run, step by step (medians over {len(coffre)} runs):")
    for name, seconds in rows:
        print(f"  {name:<46} {seconds:6.3f} s")
    extract = median([r.borg() for r in coffre])
    outside = median([r.wall - r.borg() for r in coffre])
    bare = runs.wall("bare")
    print(
        f"  coffre outside its borg extract: {outside:.3f} s (median); the CLI's start-up "
        f"alone (`coffre --version`, median of {VERSION_RUNS}): {cli_start:.3f} s; coffre's "
        f"borg extract vs the bare command: {extract:.3f} s vs {bare:.3f} s "
        f"({extract - bare:+.3f} s)"
    )
    started = sorted({step_name(c.argv) for r in coffre for c in r.children})
    print(
        f"  CPU medians: coffre {runs.cpu('coffre'):.2f} s (CLI, daemon, borg), "
        f"bare {runs.cpu('bare'):.2f} s; processes under the daemon: {', '.join(started)} "
        "(borg runs `ldconfig -p` itself, the bare one too)"
    )


def figure(case: Case, runs: Runs) -> Figure:
    ours, theirs = runs.wall("coffre"), runs.wall("bare")
    ratio = ours / theirs
    return Figure(
        case.label,
        f"{ours:.2f} s vs {theirs:.2f} s, ratio {ratio:.2f}",
        f"ratio <= {case.target:.2f}",
        ratio <= case.target,
    )


def cli_start_up(coffre_binary: str, env: Mapping[str, str]) -> float:
    """The median wall time of ``coffre --version``: the CLI's start-up alone."""
    walls = []
    for _ in range(1 + VERSION_RUNS):
        start = time.perf_counter()
        run([coffre_binary, "--version"], env)
        walls.append(time.perf_counter() - start)
    return median(walls[1:])


def benchmark(
    root: Path,
    borg: str,
    *,
    files: int = share.FILES,
    reps_one: int = REPS_ONE,
    reps_full: int = REPS_FULL,
) -> list[Figure]:
    """The whole benchmark under ``root``: set-up, both cases, report; the figures for the table."""
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    bench = RestoreBench(root, borg)
    try:
        began = time.monotonic()
        stats = bench.set_up(files)
        print(
            f"restore: share of {stats.files} files ({files} small ones and {BIG_FILE}, "
            f"{BIG_SIZE} random bytes), {stats.size / 1e6:.0f} MB, backed up into one archive "
            f"{bench.archive} in {time.monotonic() - began:.0f} s",
            flush=True,
        )
        whole = tree(bench.practice.share)
        one = Tree(1, BIG_SIZE, sha256(bench.practice.share / BIG_FILE))
        cases = [
            (
                Case(
                    "one file",
                    f"(g) restore of one {BIG_SIZE // 10**6} MB file / bare borg extract, wall",
                    str(BIG_FILE),
                    f"{bench.stored_share}/{BIG_FILE}",
                    reps_one,
                    TARGET_ONE,
                ),
                one,
            ),
            (
                Case(
                    "whole share",
                    "(g) restore of the whole share / bare borg extract, wall",
                    ".",
                    None,
                    reps_full,
                    TARGET_FULL,
                    keep_outputs=True,
                ),
                whole,
            ),
        ]
        cli_start = cli_start_up(bench.coffre_binary, bench.practice.env)
        results = []
        for case, expected in cases:
            runs = measure(bench, case, expected)
            results.append((case, runs))
            if case.stored is not None:
                terminal = []
                for _ in range(REPS_TTY):
                    out = bench.fresh("coffre-tty")
                    terminal.append(bench.coffre(case, out, terminal=True))
                    bench.check_output(case, out, expected)
                    shutil.rmtree(out)
                on_tty = median([r.wall for r in terminal])
                print(
                    f"  from a terminal (borg --list: items counted as written), {REPS_TTY} "
                    f"runs: coffre median {on_tty:.2f} s (borg extract "
                    f"{median([r.borg() for r in terminal]):.2f} s), ratio to bare "
                    f"{on_tty / runs.wall('bare'):.2f}",
                    flush=True,
                )
        print()
        for case, runs in results:
            print_breakdown(case, runs, cli_start)
        print(f"restore: took {time.monotonic() - started:.0f} s")
        return [figure(case, runs) for case, runs in results]
    finally:
        bench.close()
