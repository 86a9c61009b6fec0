"""A share user racing a restore with links: root never writes outside the share.

Issue 16 found that a workstation user looping ``renameat2(RENAME_EXCHANGE)``
between a folder under ``_restaurations/<archive>/`` and a symbolic link to a
root-only folder won 4 races out of 16 against a restore: root wrote archive
content through the link. Here the attacker is a real process running as
another user (uid 1234, not root), swapping in a tight loop while the real
daemon restores 400 files with the real borg, 200 times.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffre.core.restore_plan import folder_name
from tests.integration.harness import Daemon, Practice, daemon_running, note_text, wait_for
from tests.integration.test_restore import digest

ATTEMPTS = int(os.environ.get("RACE_ATTEMPTS", "200"))
FILES = 400
USER = 1234  # a workstation account: not root

# The attacker: swaps "dossier" and "lien" in the folder it was given, forever.
SWAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = int(sys.argv[1])
assert os.geteuid() != 0
swaps = 0
def report(*_):
    sys.stdout.write(f"{swaps}\\n"); sys.stdout.flush(); os._exit(0)
import signal
signal.signal(signal.SIGTERM, report)
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    if libc.renameat2(fd, b"dossier", fd, b"lien", 2) == 0:
        swaps += 1
"""


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path)
    import random

    rng = random.Random(16)
    (p.share / "dossier" / "sous-dossier").mkdir(parents=True)
    for i in range(FILES):
        where = p.share / "dossier" / ("sous-dossier" if i % 2 else "")
        (where / f"courrier-{i:03d}.txt").write_bytes(note_text(rng, 300))
    # The share as a workstation user sees it: theirs to rename in.
    for folder in (p.share, p.share / "dossier", p.share / "dossier" / "sous-dossier"):
        os.chown(folder, USER, USER)
        folder.chmod(0o2770)
    return p


@pytest.fixture
def backed_up(practice: Practice) -> Iterator[tuple[Daemon, str]]:
    with daemon_running(practice) as daemon:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        (archive,) = practice.archive_names()
        yield daemon, archive


def _reset(folder: Path, secret: Path) -> None:
    """The archive's folder as the attacker prepares it: their folder, and a link beside it."""
    for entry in list(folder.iterdir()) if folder.exists() else []:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dossier").mkdir()
    os.chown(folder / "dossier", USER, USER)
    (folder / "lien").symlink_to(secret)
    os.lchown(folder / "lien", USER, USER)


def _pause(swapper: subprocess.Popen[str]) -> None:
    """Stop the attacker and wait until it is stopped (SIGSTOP lands a few swaps later)."""
    swapper.send_signal(signal.SIGSTOP)

    def stopped() -> bool:
        fields = Path(f"/proc/{swapper.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] == "T"

    wait_for(stopped, timeout=10, what="the attacker stopped")


def _real_folder(folder: Path) -> Path:
    """Whichever of the two names is the folder now (the attacker swapped them)."""
    (real,) = [p for p in (folder / "dossier", folder / "lien") if not p.is_symlink()]
    return real


def test_a_user_swapping_a_folder_and_a_link_never_makes_root_write_outside_the_share(
    practice: Practice, backed_up: tuple[Daemon, str], tmp_path: Path
) -> None:
    _, archive = backed_up
    expected = digest(practice.share / "dossier")
    secret = tmp_path / "root-only"  # stands for the repositories, /etc...
    secret.mkdir(mode=0o700)
    folder = practice.share / "_restaurations" / folder_name(archive)
    _reset(folder, secret)  # the first restore makes _restaurations: made here, as the user would
    os.chown(folder, USER, USER)
    folder.chmod(0o2770)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    swapper = subprocess.Popen(
        # The interpreter itself, not the venv's link to it: the checkout may be
        # readable by root only (CI clones into a 0700 folder).
        [os.path.realpath(sys.executable), "-c", SWAPPER, str(fd)],
        cwd="/",
        user=USER,
        group=USER,
        pass_fds=[fd],
        stdout=subprocess.PIPE,
        text=True,
    )
    outcomes: Counter[str] = Counter()
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n"
        _pause(swapper)
        for attempt in range(ATTEMPTS):
            _reset(folder, secret)
            swapper.send_signal(signal.SIGCONT)
            result = practice.coffre("restore", "dossier", "--archive", archive)
            _pause(swapper)
            assert list(secret.iterdir()) == [], f"attempt {attempt}: root wrote through the link"
            real = _real_folder(folder)
            if result.returncode == 0:
                assert digest(real) == expected, f"attempt {attempt}: restored, but not whole"
                outcomes["restored"] += 1
            else:
                assert "a restore never writes through one" in result.stderr, result.stderr
                assert f"{folder}/" in result.stderr, result.stderr  # named, with its path
                assert digest(real) == {}, f"attempt {attempt}: refused, yet files were left"
                outcomes["refused"] += 1
            assert sorted(p.name for p in folder.iterdir()) == ["dossier", "lien"]
    finally:
        swapper.send_signal(signal.SIGCONT)
        swapper.terminate()
        swaps, _ = swapper.communicate(timeout=30)
        os.close(fd)
    print(f"\n{ATTEMPTS} attempts: {dict(outcomes)}; {int(swaps)} swaps by the user")
    assert outcomes["restored"] + outcomes["refused"] == ATTEMPTS
    # Both outcomes happened: the race was live during the restores, not won by luck.
    assert outcomes["restored"] > 0 and outcomes["refused"] > 0
    assert int(swaps) > ATTEMPTS * 100


def test_to_through_a_link_in_the_share_is_refused_by_name(
    practice: Practice, backed_up: tuple[Daemon, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "x"
    elsewhere.mkdir()
    (practice.share / "ici").symlink_to(elsewhere)
    result = practice.coffre("restore", "dossier", "--to", str(practice.share / "ici"))
    assert result.returncode == 1
    assert f"{practice.share / 'ici'} is a symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == []
    deeper = practice.coffre("restore", "dossier", "--to", str(practice.share / "ici" / "sous"))
    assert (
        deeper.returncode == 1 and f"{practice.share / 'ici'} is a symbolic link" in deeper.stderr
    )
    assert list(elsewhere.iterdir()) == []
