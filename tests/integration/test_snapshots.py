"""Backups read a read-only btrfs snapshot of the share: whole files, stable paths, room kept.

A real btrfs filesystem on a loop device (``btrfs_volume``) holds the share,
made a subvolume by the real ``coffre share setup``; the real daemon backs it
up with the real borg into repositories outside that filesystem. What the
practice sees through Samba (Previous Versions) is in test_samba.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.btrfs_volume import btrfs_volume
from tests.integration.harness import Daemon, Practice, daemon_running, wait_for
from tests.parts import binary, needs_root

pytestmark = pytest.mark.usefixtures("as_root")


@pytest.fixture
def as_root() -> None:
    needs_root("btrfs snapshots")


def practice_on(volume: Path, root: Path, **kwargs: Any) -> Practice:
    """A practice whose share is ``<volume>/cabinet/partage``, made a subvolume by
    ``coffre share setup``."""
    (volume / "cabinet").mkdir(mode=0o755)
    practice = Practice(root, share_at=volume / "cabinet" / "partage", **kwargs)
    practice.coffre("share", "setup", check=True)
    return practice


@pytest.fixture
def volume() -> Iterator[Path]:
    with btrfs_volume(768) as mounted:
        yield mounted


def versions(practice: Practice) -> list[str]:
    folder = practice.share.parent / ".coffre-versions" / practice.share.name
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("@GMT-"))


def views(practice: Practice) -> list[Path]:
    """The backup views shown now: a snapshot bind-mounted at the share's full path (the
    mount point stays, empty, once taken away)."""
    folder = practice.share.parent / ".coffre-versions" / ".vues"
    return sorted(p for p in folder.rglob(practice.share.name) if p.is_dir() and any(p.iterdir()))


def init(practice: Practice) -> None:
    practice.coffre("target", "init", "local", check=True)


def backup(practice: Practice, target: str = "local") -> None:
    practice.coffre("backup", "--wait", "--target", target, check=True)


def night(practice: Practice, target: str = "local") -> dict[str, int]:
    figures: dict[str, int] = practice.status()["guard"]["nights"][target]["figures"]
    return figures


def fill(share: Path, files: int) -> None:
    for i in range(files):
        folder = share / f"dossier-{i % 10}"
        folder.mkdir(exist_ok=True)
        (folder / f"note-{i}.txt").write_text(f"patient {i}\n" * 200, encoding="utf-8")


def test_an_unchanged_night_reads_a_snapshot_and_no_file_content(
    volume: Path, tmp_path: Path
) -> None:
    practice = practice_on(volume, tmp_path, quiescence="max_wait_seconds = 30\nquiet_seconds = 1")
    fill(practice.share, 300)
    with daemon_running(practice):
        init(practice)
        backup(practice)
        first = versions(practice)
        backup(practice)
        backup(practice)
        figures = night(practice)
        share = practice.status()["share"]
    # Each backup's snapshot stays a Previous Version (two in one second are one), and
    # none is left as a view once done.
    assert first and first[0] in versions(practice)
    assert views(practice) == []
    read = share["reads"]["local"]
    assert share["snapshots"] and read["method"] == "snapshot" and read["quiet"]
    # borg's files cache found every file: nothing added or modified, no new data
    # (borg never caches the files of a run's newest change time: a canary or two).
    assert figures["files"] >= 300
    assert figures["added"] + figures["modified"] <= 2, figures
    assert figures["new_bytes"] < 200_000, figures
    # The archive holds the share's own paths, and its comment says how it was read.
    archive = practice.archive_names()[-1]
    info = json.loads(practice.borg("info", "--json", f"{practice.repository()}::{archive}").stdout)
    assert info["archives"][0]["comment"].startswith(
        "coffre: read from a read-only btrfs snapshot taken "
    )
    listed = practice.borg("list", "--short", f"{practice.repository()}::{archive}").stdout
    assert f"{str(practice.share).lstrip('/')}/dossier-3/note-3.txt" in listed.splitlines()
    assert ".coffre-versions" not in listed


WRITER = textwrap.dedent(
    """
    import hashlib, os, sys, time
    path, size = sys.argv[1], int(sys.argv[2])
    n = 0
    while True:
        n += 1
        body = (b"version %08d " % n) * (size // 17)
        # In place, in chunks, as a practice's software rewrites its dump.
        with open(path, "r+b" if os.path.exists(path) else "wb") as out:
            for start in range(0, len(body), 1 << 16):
                out.write(body[start : start + (1 << 16)])
            out.write(hashlib.sha256(body).hexdigest().encode())
            out.truncate()
        print(n, flush=True)
        time.sleep(1.5)
    """
)


def whole(data: bytes) -> bool:
    body, footer = data[:-64], data[-64:]
    return hashlib.sha256(body).hexdigest().encode() == footer


def test_a_file_rewritten_in_a_loop_during_backups_is_archived_whole(
    volume: Path, tmp_path: Path
) -> None:
    practice = practice_on(volume, tmp_path, quiescence="max_wait_seconds = 60\nquiet_seconds = 1")
    fill(practice.share, 50)
    dump = practice.share / "export-logiciel.dat"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(dump), str(8 << 20)], stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout is not None
        writer.stdout.readline()  # a first version is there
        with daemon_running(practice):
            init(practice)
            for _ in range(3):
                backup(practice)
    finally:
        writer.kill()
        writer.wait()
    for archive in practice.archive_names():
        out = tmp_path / f"out-{archive}"
        out.mkdir()
        subprocess.run(
            [binary("borg"), "extract", f"{practice.repository()}::{archive}", str(dump)[1:]],
            env=practice.borg_env,
            cwd=out,
            check=True,
            capture_output=True,
            timeout=300,
        )
        data = (out / str(dump)[1:]).read_bytes()
        assert whole(data), f"{archive}: a torn version"


def test_a_killed_run_s_snapshot_is_gone_after_the_restart(volume: Path, tmp_path: Path) -> None:
    practice = practice_on(volume, tmp_path)
    big = practice.share / "imagerie"
    big.mkdir()
    # Incompressible and big enough that borg is still reading when the daemon is killed.
    for i in range(8):
        (big / f"scan-{i}.raw").write_bytes(os.urandom(32 << 20))
    daemon = Daemon(practice).ready()
    try:
        init(practice)
        practice.coffre("backup", "--target", "local", check=True)  # queued, not waited for
        wait_for(lambda: bool(views(practice)) and bool(daemon.children()), timeout=60)
        borg = daemon.children()
    finally:
        daemon.kill()
    for pid in borg:
        os.kill(pid, signal.SIGKILL)
    assert views(practice), "the view was there when the daemon was killed"
    with daemon_running(practice) as again:
        assert views(practice) == []
        assert "removed the snapshot a cut-short backup of local was reading" in again.logs()
        backup(practice)
    assert views(practice) == []


def test_a_full_filesystem_drops_the_oldest_previous_versions_and_the_backup_succeeds(
    volume: Path, tmp_path: Path
) -> None:
    practice = practice_on(volume, tmp_path, extra="[snapshots]\nmin_free_percent = 20\n")
    scan = practice.share / "scan.raw"
    with daemon_running(practice) as daemon:
        init(practice)
        for _ in range(2):
            # Each night's version alone holds the scan it saw: 200 MB each.
            scan.write_bytes(os.urandom(200 << 20))
            backup(practice)
        older = versions(practice)
        assert len(older) == 2
        # The practice then fills the filesystem to the last byte.
        scan.unlink()
        filler = practice.share / "remplissage.raw"
        with filler.open("wb", buffering=0) as out:
            try:
                while True:
                    out.write(os.urandom(8 << 20))
            except OSError:
                pass
        backup(practice)
        now = versions(practice)
        logs = daemon.logs()
        read = practice.status()["share"]["reads"]["local"]
    assert older[0] not in now, "the oldest version went first"
    assert len(now) >= 1 and now[-1] not in older, "the night still has its own snapshot"
    assert "removed" in logs and "Previous Version" in logs
    assert read["method"] == "snapshot"


def test_a_share_that_is_not_btrfs_is_read_live_after_a_quiet_wait_and_says_why(
    tmp_path: Path,
) -> None:
    practice = Practice(tmp_path / "p", quiescence="max_wait_seconds = 30\nquiet_seconds = 1")
    fill(practice.share, 20)
    with daemon_running(practice):
        init(practice)
        backup(practice)
        share = practice.status()["share"]
    assert not share["snapshots"] and "not on a btrfs filesystem" in share["why_not"]
    read = share["reads"]["local"]
    assert read["method"] == "live" and read["quiet"]
    archive = practice.archive_names()[-1]
    info = json.loads(practice.borg("info", "--json", f"{practice.repository()}::{archive}").stdout)
    assert "read from the live share" in info["archives"][0]["comment"]
