"""Restores from a USB disk (real udevd, loop device) and from an offsite host (real sshd)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffre.core.restore_plan import folder_name
from tests.integration.harness import Practice, fill_share, running_daemon, wait_for
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host, running_host
from tests.integration.usb import LoopDisk, ensure_udevd, mounted, settle
from tests.parts import binary

FILE = "dossier-2/patient-00002.txt"
FOLDER = "dossier-5"


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def picked(at_backup: dict[str, str]) -> dict[str, str]:
    """What a restore of FILE and FOLDER must bring back, by path under the restore folder."""
    return {k: v for k, v in at_backup.items() if k == FILE or k.startswith(FOLDER + "/")}


def _disks(practice: Practice) -> dict[str, dict[str, object]]:
    out = practice.coffre("disk", "list", "--json", check=True).stdout
    return {d["name"]: d for d in json.loads(out)}


def _enroll_and_wait(practice: Practice, disk: LoopDisk) -> None:
    """Enroll ``disk`` as disque-a; return once its first backup is done and it is off."""
    device = disk.plug()
    settle()
    practice.coffre("disk", "enroll", device, "--name", "disque-a", check=True)
    wait_for(
        lambda: bool(_disks(practice)["disque-a"]["safe_to_remove"]),
        timeout=120,
        what="first backup of the disk",
    )


@pytest.fixture
def usb_practice(tmp_path: Path) -> Iterator[tuple[Practice, LoopDisk]]:
    ensure_udevd()
    practice = Practice(tmp_path)
    fill_share(practice.share, files=40)
    disk = LoopDisk(tmp_path / "disque-a.img")
    try:
        yield practice, disk
    finally:
        disk.unplug()


def test_restore_from_a_usb_disk_waits_for_it_then_powers_it_off(
    usb_practice: tuple[Practice, LoopDisk],
) -> None:
    practice, disk = usb_practice
    for _ in running_daemon(practice):
        _enroll_and_wait(practice, disk)
        assert not disk.attached()
        first_backup = _disks(practice)["disque-a"]["last_backup"]
        at_backup = digest(practice.share)
        for path in (practice.share / FOLDER).iterdir():
            path.write_bytes(b"encrypted by ransomware")

        restore = subprocess.Popen(
            [binary("coffre"), "restore", "--target", "disque-a", FILE, FOLDER],
            env=practice.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert restore.stderr is not None and restore.stdout is not None
        asked = restore.stderr.readline()
        assert "plug in disk disque-a" in asked, asked
        disk.plug()
        out = restore.stdout.read()
        err = restore.stderr.read()
        assert restore.wait(timeout=120) == 0, err
        assert "disk disque-a: safe to remove" in err
        archive = out.split("from archive ", 1)[1].split(" ", 1)[0]
        restored = practice.share / "_restaurations" / folder_name(archive)
        assert digest(restored) == picked(at_backup)
        # Mounted for the job only, powered off after it.
        assert not disk.attached()
        assert not mounted(practice.root / "run" / "mnt" / "disque-a")
        row = _disks(practice)["disque-a"]
        assert row["safe_to_remove"] is True and row["present"] is False
        # The plug served the restore: no backup job of its own ran on the disk.
        assert row["last_backup"] == first_backup


def test_restore_from_an_absent_disk_without_waiting_names_it(
    usb_practice: tuple[Practice, LoopDisk],
) -> None:
    practice, disk = usb_practice
    for _ in running_daemon(practice):
        _enroll_and_wait(practice, disk)
        # No target named, the only copy is on the disk that is away: a clear refusal.
        result = practice.coffre("restore", FILE)
        assert result.returncode == 2, result.stderr
        assert "no available target holds an archive" in result.stderr
        assert "disque-a (not available)" in result.stderr


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    yield from running_host(tmp_path, "hds1")


def test_restore_from_an_offsite_host_byte_identical(host: Host, tmp_path: Path) -> None:
    practice = OffsitePractice(tmp_path / "box", targets=(), hosts={"hds1": host})
    fill_share(practice.share, files=40)
    for _ in running_daemon(practice):
        enroll(practice, "hds1", host)
        practice.coffre("backup", "--wait", check=True)
        at_backup = digest(practice.share)
        (practice.share / FILE).unlink()
        result = practice.coffre("restore", FILE, FOLDER, check=True)  # the only target
        archive = result.stdout.split("from archive ", 1)[1].split(" ", 1)[0]
        assert " of hds1:" in result.stdout
        assert digest(practice.share / "_restaurations" / folder_name(archive)) == picked(at_backup)
        # The host saw the restore's reads, not a write: append-only history unchanged.
        listed = [a["name"] for a in host.archives(tmp_path / "admin")]
        assert listed == [archive]


def test_without_a_target_the_local_copy_is_preferred(host: Host, tmp_path: Path) -> None:
    practice = OffsitePractice(tmp_path / "box", hosts={"hds1": host})
    fill_share(practice.share, files=10)
    for _ in running_daemon(practice):
        practice.coffre("target", "init", "local", check=True)
        enroll(practice, "hds1", host)
        practice.coffre("backup", "--wait", check=True)
        host.stop()  # the network is down: a local restore must not care
        result = practice.coffre("restore", FILE, "--json", check=True)
        assert json.loads(result.stdout)["target"] == "local"
        dated = practice.coffre("restore", FILE, "--date", "2001-01-01")
        assert dated.returncode == 2 and "an archive of 2001-01-01" in dated.stderr
