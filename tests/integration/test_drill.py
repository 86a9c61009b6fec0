"""Restore drills with the real borg and daemon: a sound archive, an edit since the backup,
a byte flipped in a file's chunk in the repository, a USB disk, the audit line."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Daemon, Practice, fill_share, running_daemon, wait_for
from tests.integration.usb import LoopDisk, ensure_udevd, settle
from tests.parts import binary

#: Every file of the small test share is in the sample: the drills below read them all.
ALL_FILES = "\n[drills]\nfiles = 2000\nmib = 1000\n"
DAMAGED = "Patients/DUPONT Jean/ordonnance 2026.pdf"
#: The files _make_share writes.
SHARE_FILES = 32


def _make_share(practice: Practice) -> None:
    fill_share(practice.share, files=30)
    folder = practice.share / "Patients" / "DUPONT Jean"
    folder.mkdir(parents=True)
    # Random bytes: a chunk of its own, shared with no other file.
    (folder / "ordonnance 2026.pdf").write_bytes(os.urandom(300_000))
    (practice.share / "agenda.db").write_bytes(os.urandom(50_000))


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path, extra=ALL_FILES)
    _make_share(p)
    return p


@pytest.fixture
def backed_up(practice: Practice, daemon: Daemon) -> str:
    """The share backed up once to the local target; the archive's name."""
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    return str(practice.status()["targets"]["local"]["last_success"]["archive"])


def _drill(practice: Practice, *args: str) -> tuple[int, dict[str, Any], str]:
    """``coffre drill --json ARGS``: its exit code, the outcome per target, stderr."""
    result = practice.coffre("drill", "--json", *args, timeout=600)
    return result.returncode, json.loads(result.stdout or "{}"), result.stderr


def _audit(practice: Practice, op: str) -> list[dict[str, Any]]:
    log = practice.state_dir / "audit.log"
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["op"] == op]


def test_a_drill_of_a_sound_archive_compares_every_file_and_is_audited(
    practice: Practice, backed_up: str
) -> None:
    code, answer, err = _drill(practice, "--target", "local")
    assert code == 0, err
    local = answer["targets"]["local"]
    # The audit: asked (who, every path read) before, the outcome after.
    asked, done = _audit(practice, "drill")
    assert (asked["outcome"], done["outcome"]) == ("asked", "ok")
    assert asked["person"]["uid"] == os.getuid() and "pid" in asked["person"]
    assert asked["target"] == "local" and asked["archive"] == backed_up
    files = len(asked["paths"])
    assert files >= SHARE_FILES  # the whole (small) archive is the sample
    assert local["ok"] and local["archive"] == backed_up
    assert local["nfiles"] == files and local["by_bytes"] == files and local["by_hash"] == 0
    assert local["throughput"] > 0 and local["extract_seconds"] > 0
    assert str(practice.share / DAMAGED).lstrip("/") in asked["paths"]
    # Nothing left in the scratch folder; state has the drill, in counts.
    assert list((practice.root / "cache" / "drills").iterdir()) == []
    record = _recorded(practice)
    assert record["outcome"] == "ok" and record["files"] == files and record["mismatches"] == 0


def test_a_file_edited_after_the_backup_is_no_false_alarm(
    practice: Practice, backed_up: str
) -> None:
    (practice.share / "agenda.db").write_bytes(b"edited this morning")
    (practice.share / "dossier-1" / "patient-00001.txt").unlink()
    # Same size and content, times moved on (a copy over it from a workstation).
    note = practice.share / "dossier-2" / "patient-00002.txt"
    note.write_bytes(note.read_bytes())
    code, answer, err = _drill(practice, "--target", "local")
    assert code == 0, err
    local = answer["targets"]["local"]
    assert local["ok"] and local["mismatches"] == 0
    assert local["by_hash"] == 3, local  # judged by borg's XXH64 of the archive's chunks
    assert local["by_bytes"] == local["nfiles"] - 3


_FIND_CHUNK = """
import sys
from borg.archive import Archive
from borg.helpers import Manifest
from borg.logger import setup_logging
from borg.repository import Repository

setup_logging()

path, archive_name, wanted = sys.argv[1:4]
with Repository(path, exclusive=True) as repository:
    manifest, key = Manifest.load(repository, (Manifest.Operation.READ,))
    archive = Archive(repository, key, manifest, archive_name)
    item = next(i for i in archive.iter_items() if i.path == wanted)
    chunk = item.chunks[0].id
    repository.get(chunk)  # the index is loaded
    segment, offset = repository.index[chunk]
    print(repository.io.segment_filename(segment), offset)
"""

#: A PUT entry's header in a segment: crc32, size, tag, then the 32-byte id (borg 1.x LoggedIO).
_HEADER = 4 + 4 + 1 + 32


def _flip_a_byte_of(practice: Practice, archive: str, stored: str) -> None:
    """Flip one byte inside the data of ``stored``'s first chunk, found with the index."""
    found = subprocess.run(
        [sys.executable, "-c", _FIND_CHUNK, str(practice.repository()), archive, stored],
        env=practice.borg_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    segment, offset = found.stdout.split()
    with open(segment, "r+b") as data:
        data.seek(int(offset) + 4)
        size = int.from_bytes(data.read(4), "little")
        where = int(offset) + _HEADER + (size - _HEADER) // 2
        data.seek(where)
        byte = data.read(1)
        data.seek(where)
        data.write(bytes([byte[0] ^ 0x01]))


def test_a_byte_flipped_in_a_chunk_of_a_file_is_found_and_the_file_named(
    practice: Practice, backed_up: str, daemon: Daemon
) -> None:
    stored = str(practice.share / DAMAGED).lstrip("/")
    _flip_a_byte_of(practice, backed_up, stored)
    code, answer, err = _drill(practice, "--target", "local")
    assert code == 1, err
    local = answer["targets"]["local"]
    assert not local["ok"]
    message = local["error"]["message"]
    assert "ordonnance 2026.pdf" in message, message
    # In the journal (names escaped, on the box); counts only in state and the metrics.
    assert "ordonnance 2026.pdf" in daemon.logs()
    asked, done = _audit(practice, "drill")
    assert stored in asked["paths"]
    # borg stops at the damaged chunk; the drill names that file and reads the rest back.
    assert done["outcome"] == "mismatch", done
    record = _recorded(practice)
    assert record["outcome"] == "mismatch" and record["mismatches"] == 1, record
    assert record["files"] == len(asked["paths"])
    assert f"{len(asked['paths']) - 1} compared with the share" in message
    assert "ordonnance" not in json.dumps(record)


def _recorded(practice: Practice) -> dict[str, Any]:
    """The local target's last drill as state keeps it (read-only)."""
    uri = f"file:{practice.state_dir / 'state.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'drill.local'").fetchone()
    assert row is not None, "no drill recorded"
    loaded: dict[str, Any] = json.loads(row[0])
    return loaded


# --- a USB disk --------------------------------------------------------------------------


def _disks(practice: Practice) -> dict[str, dict[str, object]]:
    out = practice.coffre("disk", "list", "--json", check=True).stdout
    return {d["name"]: d for d in json.loads(out)}


@pytest.fixture
def usb_practice(tmp_path: Path) -> Iterator[tuple[Practice, LoopDisk]]:
    ensure_udevd()
    practice = Practice(tmp_path, extra=ALL_FILES)
    _make_share(practice)
    disk = LoopDisk(tmp_path / "disque-a.img")
    try:
        yield practice, disk
    finally:
        disk.unplug()


def test_a_drill_on_a_usb_disk_waits_for_it_reads_it_back_and_powers_it_off(
    usb_practice: tuple[Practice, LoopDisk],
) -> None:
    practice, disk = usb_practice
    for _ in running_daemon(practice):
        device = disk.plug()
        settle()
        practice.coffre("disk", "enroll", device, "--name", "disque-a", check=True)
        wait_for(
            lambda: bool(_disks(practice)["disque-a"]["safe_to_remove"]),
            timeout=120,
            what="first backup of the disk",
        )
        drill = subprocess.Popen(
            [binary("coffre"), "drill", "--json", "--target", "disque-a"],
            env=practice.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert drill.stderr is not None and drill.stdout is not None
        waiting = ""
        while "plug in disk disque-a" not in waiting:
            line = drill.stderr.readline()
            assert line, "coffre drill ended without asking for the disk"
            waiting += line
        disk.plug()
        out, err = drill.communicate(timeout=300)
        assert drill.returncode == 0, err
        outcome = json.loads(out)["targets"]["disque-a"]
        assert outcome["ok"] and outcome["nfiles"] >= SHARE_FILES
        assert outcome["mismatches"] == 0
        wait_for(lambda: not disk.attached(), timeout=60, what="the disk powered off")
        assert _disks(practice)["disque-a"]["safe_to_remove"] is True
