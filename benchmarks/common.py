"""What the benchmarks share: borg runs, snapshots of repositories, a counting wrapper."""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.integration.harness import PASSPHRASE, Practice

from coffre.borg import argv as borg_argv
from coffre.core.model import Archive

#: coffre's defaults, which every side of a comparison uses.
COMPRESSION = "zstd,3"
CHECKPOINT_INTERVAL = 1800
TIMEZONE = "Europe/Paris"
PREFIX = "cabinet"

VENV_BIN = Path(sys.executable).parent


def venv_binary(name: str) -> str:
    """``name`` from the project's virtualenv; exits with what to install when missing."""
    path = VENV_BIN / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: `make bench` installs it (pip install -e '.[bench]')")
    return str(path)


def use_box_checkpoint_interval(config: Path) -> None:
    """Turn the harness's 10 s checkpoint interval in ``config`` into coffre's default.

    Raises AssertionError when the harness no longer writes that line.
    """
    text = config.read_text(encoding="utf-8")
    patched = text.replace(
        "\ncheckpoint_interval = 10\n", f"\ncheckpoint_interval = {CHECKPOINT_INTERVAL}\n"
    )
    if patched == text:
        raise AssertionError("the harness's config no longer sets checkpoint_interval = 10")
    config.write_text(patched, encoding="utf-8")


class BenchPractice(Practice):
    """The harness's practice, with coffre's default checkpoint interval.

    The harness sets 10 s so that tests see checkpoints; a night here must
    run as on a box, where a checkpoint every 10 s would cost every side.
    """

    def write_config(self) -> None:
        super().write_config()
        use_box_checkpoint_interval(self.config)


def borg_env(base: Path, **extra: str) -> dict[str, str]:
    """The environment of borg typed by hand: its own base dir, the passphrase exported."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "LANG": "C.UTF-8",
        "TZ": TIMEZONE,
        "BORG_BASE_DIR": str(base),
        "BORG_PASSPHRASE": PASSPHRASE,
        **extra,
    }


def run(
    args: Sequence[str], env: Mapping[str, str], *, what: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; raise with its output when it fails."""
    result = subprocess.run(list(args), env=dict(env), capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        command = what or shlex.join(args)
        output = f"{result.stdout}\n{result.stderr}"
        raise AssertionError(f"{command} exited {result.returncode}\n{output}")
    return result


@dataclass(frozen=True)
class Night:
    """What a night cost: wall time, and CPU time (user + system) of every process in it.

    The CPU time does not depend on what else the machine runs at the time;
    the wall time does (a shared machine makes it noisy).
    """

    wall: float
    cpu: float


class Stopwatch:
    """Measures a :class:`Night` of processes this one waits for, and of a daemon's.

    The CPU time of the children this process waited for (and of theirs)
    comes from getrusage; a daemon's own, and that of the borg processes it
    waited for, from its /proc/PID/stat (utime, stime, cutime, cstime).
    """

    def __init__(self, daemon_pid: int | None = None) -> None:
        self._daemon_pid = daemon_pid
        self._wall = time.monotonic()
        self._cpu = self._cpu_now()

    def _cpu_now(self) -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = children.ru_utime + children.ru_stime
        if self._daemon_pid is not None:
            stat = Path(f"/proc/{self._daemon_pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            # Fields 14 to 17 of proc(5): utime stime cutime cstime, in clock ticks.
            ticks = sum(int(f) for f in fields[11:15])
            total += ticks / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> Night:
        return Night(wall=time.monotonic() - self._wall, cpu=self._cpu_now() - self._cpu)


def make_history(
    borg: str, env: Mapping[str, str], repo: Path, share: Path, archives: Sequence[Archive]
) -> None:
    """``borg create --timestamp`` each archive, oldest first, with coffre's options."""
    for archive in sorted(archives):
        args = borg_argv.create(
            str(repo),
            archive.name,
            [str(share)],
            compression=COMPRESSION,
            checkpoint_interval=CHECKPOINT_INTERVAL,
            timestamp=archive.time,
            progress=False,
        )
        run([borg, *args], env)


def archive_names(borg: str, env: Mapping[str, str], repo: Path) -> set[str]:
    """The names of the archives in ``repo``, as borg lists them."""
    listed = json.loads(run([borg, "list", "--json", str(repo)], env).stdout)
    return {str(a["name"]) for a in listed["archives"]}


class Snapshot:
    """Copies of directories, to put a side back exactly as it was before a night.

    Each night changes the repository, borg's caches (chunks and files) and
    its security dir (the manifest's timestamp): all are saved and restored
    together, or borg would resync its cache or refuse a "replayed" manifest.
    """

    def __init__(self, saved: Path, live: Mapping[str, Path]) -> None:
        self._saved = saved
        self._live = dict(live)

    def take(self) -> None:
        shutil.rmtree(self._saved, ignore_errors=True)
        self._saved.mkdir(parents=True)
        for name, path in self._live.items():
            _copy(path, self._saved / name)

    def restore(self, names: Sequence[str] | None = None) -> None:
        for name in names if names is not None else list(self._live):
            path = self._live[name]
            if path.is_dir():
                shutil.rmtree(path)
            _copy(self._saved / name, path)
        # The copy's dirty pages must not be written back during the night.
        os.sync()


def _copy(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, symlinks=True)
    else:
        shutil.copy2(source, destination)


@dataclass(frozen=True)
class BorgCall:
    """One borg process of a night, seen by the counting wrapper."""

    command: str
    seconds: float
    argv: str


class Wrapper:
    """A ``borg`` that logs each call (argv, start, end) and runs the real one.

    Used only in a dry pass: it costs a shell and two ``date`` per call.
    """

    def __init__(self, directory: Path, real_borg: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "borg"
        self.log = directory / "calls.log"
        self.path.write_text(
            "#!/bin/sh\n"
            "start=$(date +%s.%N)\n"
            f'{shlex.quote(real_borg)} "$@"\n'
            "rc=$?\n"
            "end=$(date +%s.%N)\n"
            f'printf \'%s %s %s\\n\' "$start" "$end" "$*" >> {shlex.quote(str(self.log))}\n'
            "exit $rc\n",
            encoding="utf-8",
        )
        self.path.chmod(0o755)

    def calls(self) -> list[BorgCall]:
        """The calls logged since the last call of this method."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        self.log.unlink()
        calls = []
        for line in lines:
            start, end, args = line.split(" ", 2)
            calls.append(BorgCall(_command(args.split()), float(end) - float(start), args))
        return calls


def _command(words: Sequence[str]) -> str:
    """borg's subcommand in its argv (``--version`` when there is none)."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("--lock-wait", "--remote-path", "--umask"):
            skip = True
        elif not word.startswith("-"):
            return word
    return next((w for w in words if w.startswith("-")), "?")


class Side(Protocol):
    """One way of doing a night's backup and retention, measured against the others."""

    name: str

    def reset(self) -> None:
        """Put the repository (and caches, state) back as before the night."""

    def night(self) -> Night:
        """Do the night's work; return what it cost."""

    def check(self) -> str:
        """Verify the night did its work; describe what it deleted."""

    def count(self, wrapper: Wrapper) -> tuple[list[BorgCall], Night]:
        """One night through the counting wrapper: its borg calls and wall time."""


@dataclass(frozen=True)
class Figure:
    """A line of the result table."""

    label: str
    measured: str
    target: str
    ok: bool


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(figures: Sequence[Figure]) -> None:
    rows = [("figure", "measured", "target", "verdict")]
    rows += [(f.label, f.measured, f.target, "PASS" if f.ok else "FAIL") for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def describe_calls(calls: Sequence[BorgCall], night: Night) -> str:
    inside = sum(c.seconds for c in calls)
    each = ", ".join(f"{c.command} {c.seconds:.2f} s" for c in calls)
    return (
        f"{len(calls)} borg call(s): {each}; outside borg {night.wall - inside:.2f} s "
        f"(wall {night.wall:.2f} s, CPU {night.cpu:.2f} s)"
    )


def compile_like_the_package() -> None:
    """Write coffre's bytecode, as the package's postinst does (``compileall``).

    A development shell may set PYTHONDONTWRITEBYTECODE: every ``coffre``
    command would then compile its modules from source, some 40 ms the box
    never spends, and the CLI's start-up would be timed with it. borg's own
    modules were compiled by pip at install.
    """
    import compileall

    import coffre

    compileall.compile_dir(str(Path(coffre.__file__).parent), quiet=1)
