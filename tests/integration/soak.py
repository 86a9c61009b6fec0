"""A chaos soak: random faults against a running ``coffre daemon`` with its real parts.

One box (a local target, an offsite HDS host behind a real sshd, a USB disk on a
loop device behind a bindfs "cable", metrics and LEDs of its own, its state on a
small tmpfs) runs a real daemon. Each cycle changes the share (its sha256
manifest is kept), injects one or two faults drawn from a seeded RNG, runs a
backup with a bounded ``--wait``, and checks the invariants:

- within one job, every target either succeeded, with a new archive borg lists,
  or shows its failure in status (the attempt's error kind, or ``problems``),
  in metrics (``coffre_last_attempt_success`` 0 or ``coffre_health{state="failure"}``
  1) and on the LEDs (red): never "ok" with nothing done;
- no lane hangs: every ``coffre backup --wait`` returns within its bound;
- once the fault is healed, the next backup succeeds without any other help;
- no stray mount under the practice, no loop device over its images, the daemon
  answering;
- every archive reported successful lists and extracts byte-identical to the
  share's manifest at that backup, then and at the end unless retention may
  delete it (``coffre.core.retention.plan`` on what is left says so).

The soak plays systemd's part for the bare daemon: after a SIGKILL it runs
``coffre leds stopped`` (the unit's ``ExecStopPost=``) and starts the daemon again.

Run it with ``make soak`` (``SOAK_CYCLES=``, ``SOAK_SEED=``) or
``python -m tests.integration.soak --cycles N --seed S``; the short soak of
``make test`` is ``tests/integration/test_soak.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coffre.config.loader import load
from coffre.core import retention
from coffre.core.model import Archive
from coffre.jobs.lanes import RETRIABLE
from tests.integration.harness import Daemon, fill_share, note_text
from tests.integration.observing import ObservedPractice, parse
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host
from tests.integration.usb import LoopDisk, PullableDir, ensure_udevd, mounts_of, settle
from tests.parts import binary, faketime_from_file

#: Every fault the soak knows.
FAULTS = (
    "borg_kill",
    "daemon_kill",
    "sshd_kill",
    "passphrase_gone",
    "state_full",
    "usb_pull",
    "clock_jump",
)
#: Faults set up before the job (held while it runs); the others strike mid-job.
BEFORE_JOB = frozenset({"passphrase_gone", "state_full", "clock_jump"})
#: Faults that stop the backup before borg runs: a mid-job fault would find no job.
BLOCKING = frozenset({"passphrase_gone", "state_full"})
#: Never together: two faults on the local backup, or a daemon killed during the local
#: backup and an upload (which comes after it) to cut.
EXCLUSIVE = (frozenset({"borg_kill", "daemon_kill"}), frozenset({"daemon_kill", "sshd_kill"}))

#: The short soak of ``make test``: every fault but the clock's, which needs the
#: daemon under libfaketime throughout (the long run does that).
SHORT_FAULTS = tuple(f for f in FAULTS if f != "clock_jump")

#: Days the clock jumps forward (a month's change now and then).
JUMPS = (1, 1, 2, 6, 17, 31)
DISK = "disque-a"
#: The unit's watchdog, shorter: the daemon ticks (and pings) every 2 s.
WATCHDOG_USEC = 4_000_000
#: What the daemon logs when it queues a nightly run (a missed one too).
NIGHTLY_QUEUED = "nightly run due at"
HOST = "hds1"
LOCAL = "local"
#: The bound of any one job (a hung lane is one that exceeds it).
JOB_BOUND = 240.0
#: The bound for what status, metrics and the LEDs take to agree.
SHOW_BOUND = 60.0
STOPPED = {"green": "off", "amber": "off", "red": "blink 1000/1000"}
MB = 1 << 20


class InvariantBroken(AssertionError):
    """An invariant of the soak does not hold: a bug of coffre (or of the soak)."""


def poll(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.1) -> None:
    """Poll ``condition`` until true (``every`` seconds apart); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise InvariantBroken(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _say(line: str) -> None:
    print(line, flush=True)


# --- the practice ---------------------------------------------------------------


@dataclass
class SoakPractice(ObservedPractice, OffsitePractice):
    """Metrics port and LED directory (observing), an offsite host (offsite_practice)."""

    def write_config(self) -> None:
        super().write_config()
        # ObservedPractice waits 300 s for a lock; a soak wants a stuck lock to show.
        text = self.config.read_text(encoding="utf-8")
        self.config.write_text(text.replace("\nlock_wait = 300\n", "\nlock_wait = 30\n"))


def manifest(share: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``share``."""
    return {
        str(p.relative_to(share)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(share.rglob("*"))
        if p.is_file()
    }


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _open_files(pid: int) -> list[str]:
    """What process ``pid`` has open (the targets of /proc/PID/fd)."""
    found = []
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                found.append(str(fd.readlink()))
    return found


def _lines_of(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


# --- the record -------------------------------------------------------------------


@dataclass
class Reported:
    """An archive coffre reported made, and what the share held then.

    The share changes between cycles while the daemon is idle, but the daemon may
    start a job of its own (a nightly run after a clock jump, a retry) during the
    change: an archive whose time (the job's start) is not after the change may
    hold, file by file, either version (``previous`` or ``files``), never anything else.
    """

    target: str
    name: str
    cycle: int
    time: datetime
    files: dict[str, str]
    previous: dict[str, str]
    changed_at: datetime

    @property
    def straddles(self) -> bool:
        return self.time <= self.changed_at

    def differences(self, got: dict[str, str]) -> str:
        """What in ``got`` (an extraction's manifest) the share never held; "" if none:
        byte-identical to the share after the change, or (an archive that straddles it)
        file by file to one version or the other."""
        if got == self.files:
            return ""
        if not self.straddles:
            missing = sorted(set(self.files) - set(got))[:5]
            extra = sorted(set(got) - set(self.files))[:5]
            changed = sorted(k for k in got if self.files.get(k) not in (None, got[k]))[:5]
            return f"missing {missing}, extra {extra}, changed {changed}"
        either = [k for k in got if got[k] not in (self.files.get(k), self.previous.get(k))]
        kept = [k for k in self.files if self.previous.get(k) == self.files[k] and k not in got]
        if either or kept:
            return f"in neither version {sorted(either)[:5]}, unchanged but missing {kept[:5]}"
        return ""


@dataclass
class Summary:
    seed: int
    cycles: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    verified: int = 0
    duration: float = 0.0
    error: str = ""

    def check(self, name: str) -> None:
        self.checks[name] += 1

    def render(self) -> str:
        lines = [
            f"soak: seed {self.seed}, {self.cycles} cycle(s) in {self.duration:.0f} s"
            + (f" — FAILED: {self.error}" if self.error else " — all invariants held"),
            "faults injected (by kind):",
        ]
        for kind in FAULTS:
            if self.faults[kind]:
                outs = ", ".join(
                    f"{outcome} {n}"
                    for (k, outcome), n in sorted(self.outcomes.items())
                    if k == kind
                )
                lines.append(f"  {kind:<16} {self.faults[kind]:>3}   ({outs})")
        lines.append("invariant checks passed:")
        for name, n in sorted(self.checks.items()):
            lines.append(f"  {name:<44} {n:>4}")
        lines.append(f"archive extractions compared byte for byte: {self.verified}")
        return "\n".join(lines)


# --- the soak -----------------------------------------------------------------------


class Soak:
    """The box, its daemon and the faults; a context manager that always cleans up."""

    def __init__(
        self,
        root: Path,
        *,
        seed: int,
        faults: Sequence[str] = FAULTS,
        say: Callable[[str], None] = _say,
    ) -> None:
        self.root = root
        self.rng = random.Random(seed)  # the share's contents
        self.draws = random.Random(seed)  # the faults: a seed replays the same ones
        self.faults = tuple(faults)
        self.clock = "clock_jump" in self.faults
        self.say = say
        self.summary = Summary(seed=seed)
        self.stack = contextlib.ExitStack()
        self.daemon: Daemon | None = None
        self.days = 0
        self.clock_file = root / "faketime"
        self.reported: dict[tuple[str, str], Reported] = {}
        self.listed: dict[str, set[str]] = {LOCAL: set(), HOST: set(), DISK: set()}
        self.big = 0
        self.last_stderr = ""
        self.pings = 0
        self.disk_outcome = ""
        self.before: dict[str, str | None] = {}
        self.files: dict[str, str] = {}
        self.previous: dict[str, str] = {}
        self.changed_at = datetime.fromtimestamp(0, UTC)

    # --- life -------------------------------------------------------------------

    def __enter__(self) -> Soak:
        try:
            self._setup()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
        self._sweep()

    def _setup(self) -> None:
        ensure_udevd()
        self.host = Host(self.root, HOST)
        self.host.start()
        self.stack.callback(self.host.stop)
        self.practice = SoakPractice(
            self.root / "box",
            hosts={HOST: self.host},
            offsite_extra={
                HOST: "retry_for = 0\n"
                '[[target.upload_window]]\nfrom = "00:00"\nto = "24:00"\nlimit_kbps = 3000\n'
            },
        )
        self.admin_base = self.root / "admin-borg"
        state = self.practice.state_dir
        state.mkdir(parents=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(state)], check=True
        )
        self.stack.callback(subprocess.run, ["umount", "--lazy", str(state)], check=False)
        fill_share(self.practice.share, files=40)
        self._grow_share()
        # The USB disk: its image behind a FUSE "cable" the soak can pull.
        self.cable = PullableDir(self.root / "usb-store", self.root / "usb-view")
        self.cable.connect()
        self.stack.callback(self.cable.close)
        LoopDisk(self.root / "usb-store" / "a.img", size_mb=1024)
        self.disk = LoopDisk(self.root / "usb-view" / "a.img")
        self.stack.callback(self.disk.unplug)
        self.clock_file.write_text("+0d\n")
        self.stack.callback(self._stop_daemon)
        self._start_daemon()
        self.practice.coffre("target", "init", LOCAL, check=True)
        enroll(self.practice, HOST, self.host)
        device = self.disk.plug()
        settle()
        self.practice.coffre("disk", "enroll", device, "--name", DISK, check=True)
        self._wait_disk_safe(None)
        self.files = manifest(self.practice.share)
        self.cycle = 0
        result = self._backup()
        if result.returncode != 0:
            raise InvariantBroken(f"the first backup failed: {result.stderr}")
        self._record_cycle()

    def _start_daemon(self) -> None:
        env: dict[str, str] = {}
        if self.clock:
            env = faketime_from_file(self.clock_file)
        # A watchdog as the unit's: the daemon pings it only while every lane lives.
        self.daemon = Daemon(self.practice, env=env, watchdog_usec=WATCHDOG_USEC).ready()
        self.pings = 0

    def _stop_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()

    def _sweep(self) -> None:
        """What a failed run may have left: mounts under the root, loop devices over its images."""
        for mountpoint in sorted(self._mounts(), reverse=True):
            subprocess.run(["umount", "--lazy", mountpoint], check=False)
        for device in self._loops():
            subprocess.run([binary("losetup"), "--detach", device], check=False)

    def _mounts(self) -> list[str]:
        prefix = str(self.root) + "/"
        return [
            line.split()[4]
            for line in _lines_of(Path("/proc/self/mountinfo"))
            if line.split()[4].startswith(prefix)
        ]

    def _loops(self) -> list[str]:
        out = subprocess.run(
            [binary("losetup"), "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        prefix = str(self.root) + "/"
        return [line.split()[0] for line in out.splitlines() if prefix in line]

    # --- the run ------------------------------------------------------------------

    def run(self, cycles: int) -> Summary:
        began = time.monotonic()
        try:
            for cycle in range(1, cycles + 1):
                self.cycle = cycle
                self._one_cycle()
                self.summary.cycles = cycle
            self._final_check()
        except Exception as error:
            self.summary.error = f"cycle {self.cycle}: {error}"
            if self.daemon is not None:
                tail = "\n".join(self.daemon.logs().splitlines()[-60:])
                self.say(f"--- the daemon's log, last lines ---\n{tail}")
            raise
        finally:
            self.summary.duration = time.monotonic() - began
        return self.summary

    def _draw(self) -> list[str]:
        return draw(self.draws, self.faults)

    def _one_cycle(self) -> None:
        self._wait_idle()
        self._change_share()
        faults = self._draw()
        self.say(f"cycle {self.cycle}: {' + '.join(faults)}")
        for fault in faults:
            self.summary.faults[fault] += 1
        before = self.before = self._attempts()
        held: list[Callable[[], None]] = []
        # The clock first: the nightly run it makes due runs on a sound box, alone.
        for fault in sorted(faults, key=lambda f: f != "clock_jump"):
            if fault in BEFORE_JOB:
                held.append(self._inject_before(fault))
        struck: dict[str, bool] = {}
        killed = mid_disk = False
        if "usb_pull" in faults:
            # Alone on the main lane: the disk's job, then the backup asked.
            struck["usb_pull"] = self._pull_disk()
        elif "daemon_kill" in faults and self.draws.random() < 0.35:
            # The daemon dies with a disk mounted for its job, not mid-backup.
            struck["daemon_kill"] = mid_disk = self._kill_daemon_mid_disk_job()
        client = self._start_backup()
        # The job backs the local target up, then uploads: faults strike in that order.
        if "borg_kill" in faults:
            struck["borg_kill"] = self._kill_borg()
        if "daemon_kill" in faults and not mid_disk:
            struck["daemon_kill"] = killed = self._kill_daemon()
        if "sshd_kill" in faults:
            struck["sshd_kill"] = self._cut_host()
        rc = self._client_returns(client)
        if killed:
            self._play_systemd()
        outcomes = self._check_job(rc, before, faults)
        for fault in faults:
            if fault in struck and not struck[fault]:
                self.summary.outcomes[(fault, "missed (job ended first)")] += 1
            elif fault == "usb_pull":
                self.summary.outcomes[(fault, f"disk job {self.disk_outcome}")] += 1
            elif fault == "daemon_kill" and mid_disk:
                outcome = f"mid-disk-job, after restart: disk job {self.disk_outcome}"
                self.summary.outcomes[(fault, outcome)] += 1
            else:
                self.summary.outcomes[(fault, outcomes)] += 1
        for heal in reversed(held):
            heal()
        if "sshd_kill" in faults and self.host.process is None:
            self.host.start()
        if "usb_pull" in faults:
            self._plug_back()
        self._recover(before)
        self._record_cycle()

    # --- the share ----------------------------------------------------------------

    def _grow_share(self) -> None:
        """Add a few incompressible files (scans), dropping the oldest: jobs last a while."""
        scans = self.practice.share / "imagerie"
        scans.mkdir(exist_ok=True)
        for _ in range(3):
            self.big += 1
            (scans / f"scan-{self.big:04d}.dcm").write_bytes(
                bytes(128) + b"DICM" + self.rng.randbytes(3 * MB)
            )
        for old in sorted(scans.iterdir())[:-9]:
            old.unlink()

    def _change_share(self) -> None:
        share = self.practice.share
        # The practice's notes; the guard's witness files at the top stay untouched,
        # as the README asks of a practice.
        files = sorted(
            p for p in share.rglob("*.txt") if p.is_file() and not p.name.startswith("!COFFRE")
        )
        for path in self.rng.sample(files, min(3, len(files))):
            path.write_bytes(note_text(self.rng, self.rng.randint(100, 5000)))
        (share / "agenda" / f"cycle-{self.cycle:03d}.db").parent.mkdir(exist_ok=True)
        (share / "agenda" / f"cycle-{self.cycle:03d}.db").write_text(f"cycle {self.cycle}\n")
        if self.cycle > 3:
            (share / "agenda" / f"cycle-{self.cycle - 3:03d}.db").unlink(missing_ok=True)
        self._grow_share()
        self.previous, self.files = self.files, manifest(share)
        self.changed_at = self._now() + timedelta(seconds=1)

    def _now(self) -> datetime:
        """The daemon's clock (libfaketime's offset applied)."""
        return datetime.now(UTC) + timedelta(days=self.days)

    # --- faults -----------------------------------------------------------------------

    def _inject_before(self, fault: str) -> Callable[[], None]:
        """Set up ``fault``; returns what heals it."""
        practice = self.practice
        if fault == "passphrase_gone":
            away = practice.root / "passphrase.away"
            practice.passphrase.rename(away)

            def back() -> None:
                away.rename(practice.passphrase)

            return back
        if fault == "state_full":
            filler = practice.state_dir / "filler"
            with open(filler, "wb") as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            return lambda: filler.unlink()
        if fault == "clock_jump":
            jump = self.draws.choice(JUMPS)
            self.days += jump
            assert self.daemon is not None
            daemon = self.daemon
            nightlies = daemon.logs().count(NIGHTLY_QUEUED)
            self.clock_file.write_text(f"+{self.days}d\n")
            self.say(f"  the clock jumps {jump} day(s) forward (+{self.days} d in all)")
            # Whole days always pass the nightly time: the daemon's next tick (half the
            # watchdog's period) queues the missed run; it runs before the job asked.
            poll(
                lambda: daemon.logs().count(NIGHTLY_QUEUED) > nightlies,
                timeout=60,
                what="the nightly run missed by the jump to be queued",
            )
            self.summary.check("a clock jump's missed nightly run is queued")
            self._wait_idle()
            return lambda: None
        raise AssertionError(fault)

    def _borg_children(self, verb: str, repository: str) -> list[int]:
        assert self.daemon is not None
        return [
            pid
            for pid in self.daemon.children()
            if verb in (line := _cmdline(pid)) and any(repository in part for part in line)
        ]

    def _kill_borg(self) -> bool:
        """SIGKILL the local backup's ``borg create`` while it reads the share."""
        pids = self._reading()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if pids:
            self.say(f"  borg create {pids} killed mid-backup")
        return bool(pids)

    def _kill_daemon(self) -> bool:
        """SIGKILL the daemon while the local backup's borg reads the share."""
        struck = bool(self._reading())
        assert self.daemon is not None
        self.daemon.kill()
        self.say("  daemon killed" + (" mid-backup" if struck else " (no borg running)"))
        return True

    def _reading(self) -> list[int]:
        """The local backup's ``borg create`` once it has a file of the share (or a
        segment of the repository) open; [] if the job ended before."""
        repository = str(self.practice.repository(LOCAL))
        inside = (str(self.practice.share) + "/", repository + "/data/")
        began = time.monotonic()
        seen, looked = False, began
        while time.monotonic() < began + JOB_BOUND:
            pids = self._borg_children("create", repository)
            for pid in pids:
                if any(target.startswith(inside) for target in _open_files(pid)):
                    return [pid]
            seen = seen or bool(pids)
            if seen and not pids:
                return []  # borg came and went between two looks
            if not seen and time.monotonic() - looked > 2:
                looked = time.monotonic()
                status = self.practice.status()
                attempt = status["targets"][LOCAL]["last_attempt"]
                if _started(attempt) != self.before[LOCAL] and status["running"] is None:
                    return []  # the local backup ended (or failed) before borg ran
            time.sleep(0.005)
        raise InvariantBroken("the local backup's borg never read the share")

    def _cut_host(self) -> bool:
        """Kill the HDS host's sshd (and its sessions) mid-upload; it comes back later."""
        deadline = time.monotonic() + JOB_BOUND
        while time.monotonic() < deadline:
            status = self.practice.status()
            uploading = status["uploading"]
            if uploading and uploading.get("counters", {}).get("nfiles", 0) > 0:
                self.host.kill()
                self.say("  sshd killed mid-upload")
                return True
            attempt = status["targets"][HOST]["last_attempt"]
            if _started(attempt) != self.before[HOST] and attempt["outcome"] != "running":
                return False  # the upload ended between two looks
            time.sleep(0.1)
        raise InvariantBroken("the upload never started")

    def _pull_disk(self) -> bool:
        """Plug the disk in; pull its cable (kill bindfs) once the daemon has it mounted;
        check how the disk's job ended."""
        before = self._disk_row()
        device = self.disk.plug()
        deadline = time.monotonic() + JOB_BOUND
        struck = False
        while time.monotonic() < deadline:
            if mounts_of(device):
                self.cable.pull()
                self.say(f"  disk pulled while mounted at {mounts_of(device)}")
                struck = True
                break
            if not self.disk.attached():
                break  # the job ended (powered off) between two looks
            time.sleep(0.01)
        else:
            raise InvariantBroken("the plugged disk was never mounted")
        self.disk_outcome = self._disk_job_shown(before)
        return struck

    def _disk_job_shown(self, before: dict[str, Any]) -> str:
        """The disk's job ended: ok, or its failure shows in `disk list`, metrics, LEDs."""
        result = ""
        seen: list[str] = []

        def ended() -> bool:
            nonlocal result
            row = self._disk_row()
            if row["busy"] or row["last_seen"] == before["last_seen"]:
                return False
            failure = row["last_failure"]
            if failure is None or failure == before["last_failure"]:
                result = "ok"
                return True
            series = parse(self.practice.scrape())
            in_metrics = (
                series.get(("coffre_last_attempt_success", frozenset({("target", DISK)}))) == 0
                or series.get(("coffre_health", frozenset({("state", "failure")}))) == 1
            )
            lights = self.practice.lights()
            result = f"failed ({failure['kind']})"
            seen[:] = [f"failure {failure}, metrics ok={in_metrics}, lights {lights}"]
            return bool(failure["kind"]) and in_metrics and lights["red"] != "off"

        try:
            poll(ended, timeout=JOB_BOUND, what="the disk's job to end, visibly", every=0.3)
        except InvariantBroken as error:
            raise InvariantBroken(f"{error}: {' '.join(seen)}") from None
        if result == "ok":
            self.summary.check("a disk job ended ok")
        else:
            self.summary.check("a failed disk job shows in disk list, metrics and LEDs")
        return result

    def _kill_daemon_mid_disk_job(self) -> bool:
        """Plug the disk in, SIGKILL the daemon while the disk is mounted for its job,
        start it again (as systemd) with the disk still in: it must end safe to remove,
        or its failure show, and nothing stay mounted."""
        before = self._disk_row()
        device = self.disk.plug()
        deadline = time.monotonic() + JOB_BOUND
        while not mounts_of(device):
            if not self.disk.attached() or time.monotonic() > deadline:
                self.disk_outcome = self._disk_job_shown(before)
                return False  # the job ended (powered off) between two looks
            time.sleep(0.01)
        assert self.daemon is not None
        self.daemon.kill()
        self.say(f"  daemon killed while the disk was mounted at {mounts_of(device)}")
        self._play_systemd()
        self.disk_outcome = self._disk_job_shown(before)
        row = self._disk_row()
        if not row["safe_to_remove"]:
            self.say(f"  the disk is not safe to remove after the restart: {row}")
            seen = row["last_seen"]
            self.disk.unplug()
            poll(lambda: not self.disk.attached(), timeout=60, what="the loop device to go")
            self.disk.plug()
            self._wait_disk_safe(seen)
            if self._disk_row()["last_failure"] is not None:
                raise InvariantBroken(f"the disk plugged again failed: {self._disk_row()}")
            self.summary.check("disk plugged back: its job ends safe to remove")
        return True

    def _plug_back(self) -> None:
        """Mend the cable, plug the disk in again: its job must end safe to remove."""
        seen = self._disk_row()["last_seen"]
        self.disk.unplug()
        poll(lambda: not self.disk.attached(), timeout=60, what="the dead loop device to go")
        self.cable.close()
        self.cable.connect()
        self.disk.plug()
        self._wait_disk_safe(seen)
        row = self._disk_row()
        if row["last_failure"] is not None:
            raise InvariantBroken(f"the disk plugged back failed again: {row['last_failure']}")
        self.summary.check("disk plugged back: its job ends safe to remove")

    def _play_systemd(self) -> None:
        """What the unit does after a SIGKILL: ExecStopPost (lights), then start again."""
        self.practice.coffre("leds", "stopped", check=True)
        if self.practice.lights() != STOPPED:
            raise InvariantBroken(f"lights after the daemon died: {self.practice.lights()}")
        self.summary.check("lights say 'no daemon' once it died")
        self._start_daemon()
        self.summary.check("daemon restarts after a SIGKILL")

    # --- jobs ---------------------------------------------------------------------------

    def _start_backup(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [binary("coffre"), "backup", "--wait"],
            env=self.practice.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _client_returns(self, client: subprocess.Popen[str]) -> int:
        try:
            _, stderr = client.communicate(timeout=JOB_BOUND)
        except subprocess.TimeoutExpired:
            client.kill()
            client.communicate()
            raise InvariantBroken(
                f"a hung lane: `coffre backup --wait` after {JOB_BOUND:.0f} s"
            ) from None
        self.summary.check("`coffre backup --wait` returns (no hung lane)")
        self.last_stderr = stderr
        return client.returncode

    def _backup(self) -> subprocess.CompletedProcess[str]:
        client = self._start_backup()
        rc = self._client_returns(client)
        return subprocess.CompletedProcess(client.args, rc, "", self.last_stderr)

    def _attempts(self) -> dict[str, str | None]:
        targets = self.practice.status()["targets"]
        return {name: _started(targets[name]["last_attempt"]) for name in (LOCAL, HOST)}

    def _check_job(self, rc: int, before: dict[str, str | None], faults: list[str]) -> str:
        """The invariants once the faulty job ended; "ok" or "failed (kinds)"."""
        kinds: list[str] = []
        for target in (LOCAL, HOST):
            status = self.practice.status()
            attempt = status["targets"][target]["last_attempt"]
            if attempt is None or _started(attempt) == before[target]:
                if rc == 0:
                    raise InvariantBroken(f"`backup --wait` said ok, {target} made no attempt")
                if f"{target}: FAILED" in self.last_stderr:
                    # Failed before state could record the run (a full state disk):
                    # the box's problems must say so.
                    kinds.append(f"{target} {self._shown(target, recorded=False)}")
                continue
            poll(
                functools.partial(self._ended, target),
                timeout=JOB_BOUND,
                what=f"the attempt on {target} to end",
            )
            kind = self._shown(target)
            if kind != "ok":
                kinds.append(f"{target} {kind}")
        if rc == 0 and kinds:
            raise InvariantBroken(f"`backup --wait` exited 0 but {kinds}")
        if rc != 0 and not kinds and "daemon_kill" not in faults:
            raise InvariantBroken(
                f"`backup --wait` exited {rc}, no failure shown:\n{self.last_stderr}"
            )
        return f"failed visibly [{', '.join(kinds)}]" if kinds else "succeeded anyway"

    def _ended(self, target: str) -> bool:
        return bool(
            self.practice.status()["targets"][target]["last_attempt"]["outcome"] != "running"
        )

    def _shown(self, target: str, *, recorded: bool = True) -> str:
        """Check ``target``'s last attempt is a success with a new archive, or a visible
        failure; returns "ok" or the failure's kind. Not ``recorded`` (state could not
        record the run), the failure must show in the box's problems."""
        result = ""

        def settled() -> bool:
            nonlocal result
            status = self.practice.status()
            attempt = status["targets"][target]["last_attempt"]
            if not recorded:
                problems = [p for p in status["problems"] if target in p]
                series = parse(self.practice.scrape())
                in_metrics = series.get(("coffre_health", frozenset({("state", "failure")}))) == 1
                result = "unrecorded, in problems"
                return bool(problems) and in_metrics and self.practice.lights()["red"] != "off"
            if attempt["outcome"] == "success":
                name = attempt["archive"]
                listed = self._list(target)
                if not name or name not in listed or name in self.listed[target]:
                    raise InvariantBroken(
                        f"{target}: 'success' without a new archive ({name!r}; listed {listed})"
                    )
                result = "ok"
                return True
            in_status = bool(attempt["error_kind"]) or bool(status["problems"])
            series = parse(self.practice.scrape())
            in_metrics = (
                series.get(("coffre_last_attempt_success", frozenset({("target", target)}))) == 0
                or series.get(("coffre_health", frozenset({("state", "failure")}))) == 1
            )
            lights = self.practice.lights()
            # By design (coffre.core.health), an offsite link cut is retried by the network
            # lane and turns the lights only once the copy is late: status and metrics.
            by_design = target == HOST and attempt["error_kind"] in RETRIABLE
            red = lights["red"] != "off" or by_design
            result = str(attempt["error_kind"] or attempt["outcome"])
            seen[:] = [
                f"attempt {attempt['outcome']} ({attempt['error_kind']}), "
                f"problems {status['problems']}, metrics ok={in_metrics}, lights {lights}"
            ]
            return in_status and in_metrics and red

        seen: list[str] = []
        try:
            poll(settled, timeout=SHOW_BOUND, what=f"{target}'s failure to show", every=0.3)
        except InvariantBroken as error:
            raise InvariantBroken(f"{error}: {' '.join(seen)}") from None
        if result == "ok":
            self.summary.check("an 'ok' attempt made a new archive borg lists")
        elif target == HOST and result in RETRIABLE:
            self.summary.check("an offsite cut shows in status and metrics")
        else:
            self.summary.check("a failed attempt shows in status, metrics and LEDs")
        return result

    def _recover(self, before: dict[str, str | None]) -> None:
        """Healed, the next backup succeeds, each target with a new archive."""
        self._wait_idle()
        result = self._backup()
        if result.returncode != 0:
            raise InvariantBroken(f"the backup after the fault was healed failed:\n{result.stderr}")
        for target in (LOCAL, HOST):
            if self._shown(target) != "ok":
                raise InvariantBroken(f"{target}: not ok after healing")
        self.summary.check("the next backup succeeds once healed")

    def _idle(self) -> bool:
        status = self.practice.status()
        busy_disk = any(d.get("busy") for d in status.get("disks", []))
        return (
            status["running"] is None
            and status["uploading"] is None
            and not status["queued"]
            and not busy_disk
        )

    def _wait_idle(self) -> None:
        poll(self._idle, timeout=JOB_BOUND, what="the daemon to be idle", every=0.3)

    def _disk_row(self) -> dict[str, Any]:
        rows = json.loads(self.practice.coffre("disk", "list", "--json", check=True).stdout)
        for row in rows:
            if row["name"] == DISK:
                found: dict[str, Any] = row
                return found
        raise InvariantBroken(f"disk {DISK} not listed: {rows}")

    def _wait_disk_safe(self, seen: object) -> None:
        def safe() -> bool:
            row = self._disk_row()
            return bool(row["safe_to_remove"]) and not row["busy"] and row["last_seen"] != seen

        poll(safe, timeout=JOB_BOUND, what=f"disk {DISK} safe to remove", every=0.3)

    # --- archives --------------------------------------------------------------------------

    def _borg_json(self, target: str, *args: str) -> dict[str, Any]:
        """``borg ARGS REPOSITORY --json`` by hand on ``target``'s repository, as support."""
        if target == LOCAL:
            out = self.practice.borg(*args, str(self.practice.repository(LOCAL))).stdout
        elif target == HOST:
            out = self.host.admin_borg(self.admin_base, *args, self.host.url).stdout
        else:
            raise AssertionError(target)
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    def _archives(self, target: str) -> list[Archive]:
        listed = self._borg_json(target, "list", "--json", "--lock-wait", "60")
        return [
            Archive(
                time=datetime.fromisoformat(a["time"]).replace(tzinfo=UTC),
                name=a["name"],
                id=a["id"],
            )
            for a in listed["archives"]
        ]

    def _list(self, target: str) -> set[str]:
        return set(self._times(target))

    def _times(self, target: str) -> dict[str, datetime]:
        """The archives of ``target`` (the disk's as state knows them), with their times."""
        if target == DISK:
            out = self.practice.coffre("archives", "--target", DISK, "--json", check=True).stdout
            return {
                a["name"]: datetime.fromisoformat(a["time"])
                for a in json.loads(out)[DISK]["archives"]
            }
        return {a.name: a.time for a in self._archives(target)}

    def _extract(self, target: str, name: str, into: Path) -> None:
        into.mkdir(parents=True)
        if target == LOCAL:
            repository = str(self.practice.repository(LOCAL))
            subprocess.run(
                [binary("borg"), "extract", "--lock-wait", "60", f"{repository}::{name}"],
                env=self.practice.borg_env,
                cwd=into,
                check=True,
                capture_output=True,
                timeout=600,
            )
        elif target == HOST:
            self.host.admin_borg(
                self.admin_base,
                "extract",
                "--lock-wait",
                "60",
                f"{self.host.url}::{name}",
                cwd=into,
            )
        else:
            raise AssertionError(target)

    def _verify(self, target: str, name: str) -> None:
        """Extract archive ``name`` of ``target``; compare with the share's manifest then."""
        reported = self.reported[(target, name)]
        into = self.root / "extract" / f"{target}-{time.monotonic_ns()}"
        try:
            self._extract(target, name, into)
            share = into / str(self.practice.share).lstrip("/")
            got = manifest(share) if share.exists() else {}
            wrong = reported.differences(got)
            if not wrong and got != reported.files:
                self.summary.check("(of which begun mid-change: file by file)")
            if wrong:
                raise InvariantBroken(
                    f"{target}::{name} (cycle {reported.cycle}) differs from the share: {wrong}"
                )
        finally:
            shutil.rmtree(into, ignore_errors=True)
        self.summary.verified += 1

    def _record_cycle(self) -> None:
        """Idle again: new archives are this cycle's; verify them; no stray mount, no loop."""
        self._wait_idle()
        for target in (LOCAL, HOST, DISK):
            times = self._times(target)
            now = {n for n in times if ".checkpoint" not in n}
            for name in sorted(now - self.listed[target]):
                self.reported[(target, name)] = Reported(
                    target,
                    name,
                    self.cycle,
                    times[name],
                    self.files,
                    self.previous,
                    self.changed_at,
                )
                if target != DISK:
                    self._verify(target, name)
                    self.summary.check("a new archive extracts byte-identical")
            self.listed[target] |= now
        self._no_strays()
        assert self.daemon is not None
        if self.daemon.process.poll() is not None:
            raise InvariantBroken(f"the daemon exited {self.daemon.process.returncode}")
        self.practice.coffre("status", check=True)
        self.summary.check("the daemon still serves")
        notify = self.daemon.notify

        def pinged() -> bool:
            notify.drain()
            return sum(m.get("WATCHDOG") == "1" for m in notify.messages) > self.pings

        poll(pinged, timeout=WATCHDOG_USEC / 1e6, what="a watchdog ping (every lane alive)")
        self.pings = sum(m.get("WATCHDOG") == "1" for m in notify.messages)
        self.summary.check("the watchdog is still pinged")

    def _no_strays(self) -> None:
        ours = {str(self.practice.state_dir), str(self.cable.view)}

        def clean() -> bool:
            return not (set(self._mounts()) - ours) and not self._loops()

        try:
            poll(clean, timeout=60, what="no stray mount nor loop device")
        except InvariantBroken:
            raise InvariantBroken(
                f"strays: mounts {sorted(set(self._mounts()) - ours)}, loops {self._loops()}"
            ) from None
        self.summary.check("no stray mount nor loop device")

    def _final_check(self) -> None:
        """Every reported archive retention keeps lists and extracts byte-identical."""
        self._wait_idle()
        tz = ZoneInfo(self.practice.timezone)
        for target in (LOCAL, HOST):
            archives = self._archives(target)
            names = {a.name for a in archives}
            for (t, name), _ in sorted(self.reported.items()):
                if t != target:
                    continue
                if name in names:
                    self._verify(target, name)
                    self.summary.check("at the end: a kept archive extracts byte-identical")
                    continue
                gone = Archive(time=_time_of(name, tz), name=name)
                if self._kept([*archives, gone], name):
                    raise InvariantBroken(f"{target}::{name} is gone but retention keeps it")
                self.summary.check("at the end: a gone archive was retention's to delete")
        self._stop_daemon()
        self.daemon = None
        self._verify_disk(tz)

    def _kept(self, archives: list[Archive], name: str) -> bool:
        """Whether retention, given ``archives``, keeps archive ``name`` (coffre's own plan,
        with the policy of the practice's configuration)."""
        policy = load(self.practice.config, check_files=False).retention
        plan = retention.plan(
            archives,
            prefix=policy.prefix,
            daily=policy.daily,
            monthly=policy.monthly,
            tz=ZoneInfo(self.practice.timezone),
        )
        return any(k.archive.name == name for k in plan.keep)

    def _verify_disk(self, tz: ZoneInfo) -> None:
        """The daemon stopped, the disk's image is mounted read-only to check its archives."""
        view = self.root / "inspect"
        view.mkdir(exist_ok=True)
        image = self.root / "usb-store" / "a.img"
        subprocess.run(["mount", "-o", "loop,ro,noload", str(image), str(view)], check=True)
        try:
            repository = str(view / "coffre")
            listed = json.loads(
                self.practice.borg("list", "--json", "--bypass-lock", repository).stdout
            )
            archives = [
                Archive(datetime.fromisoformat(a["time"]).replace(tzinfo=UTC), a["name"], a["id"])
                for a in listed["archives"]
            ]
            names = {a.name for a in archives}
            for (t, name), reported in sorted(self.reported.items()):
                if t != DISK:
                    continue
                if name not in names:
                    gone = Archive(time=_time_of(name, tz), name=name)
                    if self._kept([*archives, gone], name):
                        raise InvariantBroken(f"{DISK}::{name} is gone but retention keeps it")
                    self.summary.check("at the end: a gone archive was retention's to delete")
                    continue
                into = self.root / "extract" / f"disk-{name}"
                into.mkdir(parents=True)
                try:
                    subprocess.run(
                        [binary("borg"), "extract", "--bypass-lock", f"{repository}::{name}"],
                        env=self.practice.borg_env,
                        cwd=into,
                        check=True,
                        capture_output=True,
                        timeout=600,
                    )
                    share = into / str(self.practice.share).lstrip("/")
                    wrong = reported.differences(manifest(share) if share.exists() else {})
                    if wrong:
                        raise InvariantBroken(f"{DISK}::{name} differs from the share: {wrong}")
                finally:
                    shutil.rmtree(into, ignore_errors=True)
                self.summary.verified += 1
                self.summary.check("at the end: a kept archive extracts byte-identical")
        finally:
            subprocess.run(["umount", str(view)], check=False)


def _started(attempt: dict[str, Any] | None) -> str | None:
    return None if attempt is None else str(attempt["started_at"])


def _time_of(name: str, tz: ZoneInfo) -> datetime:
    """An archive's time from its name (``cabinet-YYYY-MM-DDTHH:MM:SS[-n]``, local time)."""
    stamp = name.split("-", 1)[1][:19]
    return datetime.fromisoformat(stamp).replace(tzinfo=tz)


def draw(rng: random.Random, faults: Sequence[str]) -> list[str]:
    """One or two faults (compatible: both really strike) for a cycle."""
    first = rng.choice(faults)
    if rng.random() < 0.5:
        return [first]
    others = [f for f in faults if f != first and _compatible(first, f)]
    if not others:
        return [first]
    return [first, rng.choice(others)]


def _compatible(a: str, b: str) -> bool:
    """Whether faults ``a`` and ``b`` can strike the same cycle (both really happen)."""
    if frozenset({a, b}) in EXCLUSIVE:
        return False
    blocking = {a, b} & BLOCKING
    mid_job = {a, b} - BEFORE_JOB
    return not (blocking and mid_job)


@contextlib.contextmanager
def soak_root(keep: bool = False) -> Iterator[Path]:
    """A directory for one soak; removed afterwards unless ``keep`` (a failed run's logs)."""
    root = Path(tempfile.mkdtemp(prefix="coffre-soak-", dir="/var/tmp"))
    root.chmod(0o755)
    failed = True
    try:
        yield root
        failed = False
    finally:
        if failed or keep:
            print(f"soak files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def run_soak(root: Path, *, cycles: int, seed: int, faults: Sequence[str] = FAULTS) -> Summary:
    """Set the box up under ``root``, run ``cycles`` cycles, clean up whatever happens."""
    with Soak(root, seed=seed, faults=faults) as soak:
        try:
            soak.run(cycles)
        finally:
            print(soak.summary.render(), flush=True)
        return soak.summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the soak's files")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    print(
        f"soak: seed {seed} (replay: make soak SOAK_SEED={seed} SOAK_CYCLES={args.cycles})",
        flush=True,
    )
    try:
        with soak_root(keep=args.keep) as root:
            run_soak(root, cycles=args.cycles, seed=seed, faults=faults)
    except AssertionError as error:
        print(f"soak FAILED (seed {seed}): {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
