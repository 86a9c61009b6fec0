"""Rotating USB disks with a real udevd and loop devices over ext4 images."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.harness import Practice, daemon_running, fill_share, scan_bytes, wait_for
from tests.integration.usb import (
    LoopDisk,
    PullableDir,
    ensure_udevd,
    faketime_env,
    mounted,
    mounts_of,
    settle,
)


@pytest.fixture
def practice(tmp_path: Path) -> Iterator[Practice]:
    ensure_udevd()
    p = Practice(tmp_path)
    fill_share(p.share, files=30)
    disks: list[LoopDisk] = []
    p.disks = disks  # type: ignore[attr-defined]
    yield p
    for disk in disks:
        disk.unplug()


def _disk(practice: Practice, name: str, **kwargs: Any) -> LoopDisk:
    disk = LoopDisk(practice.root / f"{name}.img", **kwargs)
    practice.disks.append(disk)  # type: ignore[attr-defined]
    return disk


def _disks(practice: Practice) -> dict[str, dict[str, Any]]:
    out = practice.coffre("disk", "list", "--json", check=True).stdout
    return {d["name"]: d for d in json.loads(out)}


def _wait_safe(
    practice: Practice, name: str, timeout: float = 120, *, after: str | None = None
) -> dict[str, Any]:
    """Wait until disk ``name`` is safe to remove (seen again since ``after``, a last_seen)."""

    def safe() -> bool:
        disk = _disks(practice)[name]
        again = after is None or disk["last_seen"] != after
        return again and bool(disk["safe_to_remove"]) and not disk["busy"]

    wait_for(safe, timeout=timeout, what=f"disk {name} safe to remove")
    return _disks(practice)[name]


def _archives_on(practice: Practice, disk: LoopDisk) -> list[str]:
    """List the archives of a disk's repository (mounting its image read-only, as support)."""
    view = practice.root / "inspect"
    view.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop,ro,noload", str(disk.image), str(view)], check=True)
    try:
        listed = practice.borg("list", "--json", "--bypass-lock", str(view / "coffre")).stdout
        return sorted(a["name"] for a in json.loads(listed)["archives"])
    finally:
        subprocess.run(["umount", str(view)], check=True)


def _expect_restore_points(practice: Practice, disk: LoopDisk, days: list[int]) -> None:
    """The disk holds J, J-1, J-2 of its own last three days and M, M-1 of its own months."""
    paris = ZoneInfo("Europe/Paris")
    start = datetime.now(UTC)
    dates = sorted({(start + timedelta(days=d)).astimezone(paris).date() for d in days})
    expected = set(dates[-3:])
    months = sorted({(d.year, d.month) for d in dates})[-2:]
    expected |= {min(d for d in dates if (d.year, d.month) == m) for m in months}
    names = [n for n in _archives_on(practice, disk) if ".checkpoint" not in n]
    # cabinet-YYYY-MM-DDTHH:MM:SS: the local date is in the name.
    found = {date.fromisoformat(n.removeprefix("cabinet-")[:10]) for n in names}
    assert found == expected, (sorted(found), sorted(expected))
    assert len(names) == len(expected)


def _enrolled_today(practice: Practice, disk: LoopDisk, name: str) -> list[str]:
    """Enroll ``disk`` through a daemon (its first backup made), stop; its archives."""
    with daemon_running(practice):
        _enroll(practice, disk, name)
        _wait_safe(practice, name)
    return _archives_on(practice, disk)


def _grow_share(practice: Practice, files: int, megabytes: int) -> None:
    """Add incompressible files (scans) to the share: a long backup."""
    big = practice.share / "imagerie"
    big.mkdir(exist_ok=True)
    for i in range(files):
        (big / f"scan-{i}.dcm").write_bytes(scan_bytes(megabytes * 1024 * 1024))


def _wait_failed(practice: Practice, name: str, timeout: float) -> dict[str, Any]:
    """Wait until the job on disk ``name`` ended failed; its last failure."""

    def failed() -> bool:
        row = _disks(practice)[name]
        return row["last_failure"] is not None and not row["busy"]

    wait_for(failed, timeout=timeout, what=f"the job on {name} to fail")
    failure: dict[str, Any] = _disks(practice)[name]["last_failure"]
    return failure


def _enroll(practice: Practice, disk: LoopDisk, name: str) -> None:
    device = disk.plug()
    settle()
    result = practice.coffre("disk", "enroll", device, "--name", name, check=True)
    assert f"disk {name} enrolled" in result.stdout


def test_plugging_an_enrolled_disk_backs_it_up_and_makes_it_safe_to_remove(
    practice: Practice,
) -> None:
    disk = _disk(practice, "a")
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        _enroll(practice, disk, "disque-a")
        state = _wait_safe(practice, "disque-a")
        assert not disk.attached(), "the loop device must be detached (powered off)"
        assert state["last_backup"] is not None
        assert not mounted(practice.root / "run" / "mnt" / "disque-a")
        # Plugged again the same day: no second archive, still checked and powered off.
        disk.plug()
        _wait_safe(practice, "disque-a", after=state["last_seen"])
        assert not disk.attached()
        status = practice.status()
        assert status["disks"][0]["name"] == "disque-a"
    names = _archives_on(practice, disk)
    assert len(names) == 1 and names[0].startswith("cabinet-")


def test_a_disk_is_said_safe_to_remove_only_once_its_device_is_gone(
    practice: Practice,
) -> None:
    """Another process holding the device (udev probing it) defers the kernel's detach."""
    disk = _disk(practice, "a")
    device = disk.plug()
    settle()
    holder = os.open(device, os.O_RDONLY)
    try:
        with daemon_running(practice):
            practice.coffre("disk", "enroll", device, "--name", "disque-a", check=True)
            autoclear = Path("/sys/block") / Path(device).name / "loop" / "autoclear"
            # The daemon asked for the detach (the kernel defers it while we hold the device).
            wait_for(lambda: _read(autoclear) == "1", timeout=120, what="the detach asked")
            row = _disks(practice)["disque-a"]
            assert row["busy"] and not row["safe_to_remove"]
            os.close(holder)
            holder = -1
            _wait_safe(practice, "disque-a")
            assert not disk.attached()
    finally:
        if holder >= 0:
            os.close(holder)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def test_an_unknown_disk_is_never_mounted_and_its_bytes_stay_the_same(
    practice: Practice,
) -> None:
    stranger = _disk(practice, "stranger", label="COFFRE-FAUX")
    before = stranger.digest()
    with daemon_running(practice) as daemon:
        device = stranger.plug()
        seen_mounted = False

        def logged() -> bool:
            nonlocal seen_mounted
            seen_mounted = seen_mounted or bool(mounts_of(device))
            return f"unknown disk at {device}" in daemon.logs()

        wait_for(logged, timeout=30, what="the daemon to notice the unknown disk")
        assert not seen_mounted and not mounts_of(device)
        assert _disks(practice) == {}
    stranger.unplug()
    assert stranger.digest() == before


def test_a_disk_with_an_enrolled_uuid_but_another_repository_is_refused_untouched(
    practice: Practice,
) -> None:
    genuine = _disk(practice, "genuine")
    # An impostor: same filesystem UUID, a repository of its own. Forged before
    # the daemon watches: the loop device `mount -o loop` sets up would be, to
    # it, disque-a plugged in and mounted by someone else.
    impostor = _disk(practice, "impostor", fs_uuid=genuine.fs_uuid)
    view = practice.root / "forge"
    view.mkdir()
    subprocess.run(["mount", "-o", "loop", str(impostor.image), str(view)], check=True)
    practice.borg("init", "--encryption=repokey-blake2", str(view / "coffre"))
    subprocess.run(["umount", str(view)], check=True)
    settle()
    before = impostor.digest()
    with daemon_running(practice) as daemon:
        _enroll(practice, genuine, "disque-a")
        _wait_safe(practice, "disque-a")
        impostor.plug()

        def refused() -> bool:
            disk = _disks(practice)["disque-a"]
            return disk["last_failure"] is not None and not disk["busy"]

        wait_for(refused, timeout=60, what="the refusal")
        failure = _disks(practice)["disque-a"]["last_failure"]
        assert failure["kind"] == "repository_mismatch"
        assert "nothing was written" in failure["message"]
        assert impostor.attached(), "an impostor is not powered off: it is left untouched"
        assert not mounts_of(str(impostor.device))
        impostor.unplug()
    assert impostor.digest() == before
    assert "but coffre created" in daemon.logs()


def test_a_disk_already_plugged_in_when_the_daemon_starts_is_handled(
    practice: Practice,
) -> None:
    disk = _disk(practice, "a")
    with daemon_running(practice):
        _enroll(practice, disk, "disque-a")
        first = _wait_safe(practice, "disque-a")
    (practice.share / "nouveau.txt").write_text("ajouté pendant que le démon dormait\n")
    disk.plug()
    settle()
    # The next morning the box starts with the disk already in: no event comes.
    with daemon_running(practice, env=faketime_env(1)):
        _wait_safe(practice, "disque-a", after=first["last_seen"])
        assert not disk.attached()
    assert len(_archives_on(practice, disk)) == 2


def test_a_disk_pulled_out_mid_backup_fails_cleanly_and_recovers_on_the_next_plug(
    practice: Practice,
) -> None:
    cable = PullableDir(practice.root / "usb-store", practice.root / "usb-view")
    cable.connect()
    disk = _disk(practice, "a")
    try:
        # The image lives behind the FUSE "cable"; the loop device reads it through it.
        stored = practice.root / "usb-store" / "a.img"
        disk.image.rename(stored)
        disk.image = practice.root / "usb-view" / "a.img"
        first = _enrolled_today(practice, disk, "disque-a")
        _grow_share(practice, files=4, megabytes=40)
        # The next day, the disk is plugged in again and its backup starts.
        with daemon_running(practice, env=faketime_env(1)):
            disk.plug()

            def reading() -> bool:
                running = practice.status()["running"]
                return bool(running and running["counters"].get("original_size"))

            wait_for(reading, timeout=60, what="borg create on the disk")
            cable.pull()

            failure = _wait_failed(practice, "disque-a", timeout=120)
            assert failure["kind"] == "io_error", failure
            row = _disks(practice)["disque-a"]
            assert not row["safe_to_remove"]
            assert not mounted(practice.root / "run" / "mnt" / "disque-a")
            # Plug it back: the cable is mended, the dead loop device went with the disk.
            disk.unplug()
            cable.close()
            cable.connect()
            disk.plug()
            _wait_safe(practice, "disque-a", timeout=300)
            assert _disks(practice)["disque-a"]["last_failure"] is None
        names = _archives_on(practice, disk)
        assert set(first) <= set(names)
        assert len([n for n in names if ".checkpoint" not in n]) == len(first) + 1
        check = practice.root / "check"
        check.mkdir()
        subprocess.run(["mount", "-o", "loop", str(disk.image), str(check)], check=True)
        try:
            practice.borg("check", str(check / "coffre"))
        finally:
            subprocess.run(["umount", str(check)], check=True)
    finally:
        disk.unplug()
        cable.close()


def _check_disk(practice: Practice, disk: LoopDisk) -> None:
    view = practice.root / f"check-{disk.image.stem}"
    view.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(disk.image), str(view)], check=True)
    try:
        practice.borg("check", str(view / "coffre"))
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_full_disk_ends_cleanly_keeps_its_archives_and_says_disk_full(
    practice: Practice,
) -> None:
    # Big enough for borg's own free-space margin (a segment, 500 MiB), too
    # small for the night's data: borg runs out of space mid-create.
    disk = _disk(practice, "small", size_mb=768)
    first = _enrolled_today(practice, disk, "petit")
    _grow_share(practice, files=9, megabytes=100)
    with daemon_running(practice, env=faketime_env(1)) as tomorrow:
        disk.plug()
        failure = _wait_failed(practice, "petit", timeout=300)
        assert failure["kind"] == "no_space"
        assert "disk petit is full" in failure["message"]
        assert "even after retention" in failure["message"]
        assert "trying once more" in tomorrow.logs()
        assert not mounted(practice.root / "run" / "mnt" / "petit")
    disk.unplug()
    names = [n for n in _archives_on(practice, disk) if ".checkpoint" not in n]
    assert names == [n for n in first if ".checkpoint" not in n]
    _check_disk(practice, disk)


def test_two_disks_swapped_over_weeks_each_keep_their_own_restore_points(
    practice: Practice,
) -> None:
    a, b = _disk(practice, "a"), _disk(practice, "b")
    with daemon_running(practice):
        _enroll(practice, a, "disque-a")
        _wait_safe(practice, "disque-a")
        _enroll(practice, b, "disque-b")
        _wait_safe(practice, "disque-b")
    # Days (after today) each disk is plugged in: A then B, a week each, over
    # two months; A stays in too long at the end (a swap is due).
    plan = [
        (1, a, "disque-a"),
        (2, a, "disque-a"),
        (9, b, "disque-b"),
        (10, b, "disque-b"),
        (17, a, "disque-a"),
        (33, b, "disque-b"),
        (34, b, "disque-b"),
        (35, b, "disque-b"),
        (36, b, "disque-b"),
        (40, a, "disque-a"),
        (41, a, "disque-a"),
        (50, a, "disque-a"),
    ]
    for day, disk, name in plan:
        (practice.share / "agenda.db").write_text(f"jour {day}\n")
        with daemon_running(practice, env=faketime_env(day)):
            before = _disks(practice)[name]["last_seen"]
            disk.plug()
            _wait_safe(practice, name, after=before)
            if day == 50:
                assert _disks(practice)["disque-a"]["swap_due"] is True
                assert _disks(practice)["disque-b"]["swap_due"] is False
    for disk, name in ((a, "disque-a"), (b, "disque-b")):
        days = [0] + [d for d, _, n in plan if n == name]
        _expect_restore_points(practice, disk, days)
        _check_disk(practice, disk)


def test_a_disk_backs_up_once_a_day_and_asking_for_an_absent_one_says_plug_it_in(
    practice: Practice,
) -> None:
    disk = _disk(practice, "a")
    with daemon_running(practice):
        _enroll(practice, disk, "disque-a")
        _wait_safe(practice, "disque-a")
        absent = practice.coffre("backup", "--target", "disque-a", "--wait")
        assert absent.returncode == 1
        assert "disk disque-a is not plugged in" in absent.stderr
        assert "plug it in" in absent.stderr
        before = _disks(practice)["disque-a"]["last_seen"]
        disk.plug()
        _wait_safe(practice, "disque-a", after=before)
        archives = json.loads(
            practice.coffre("archives", "--target", "disque-a", "--json", check=True).stdout
        )
        assert len(archives["disque-a"]["archives"]) == 1


def test_enroll_never_formats_without_both_flags_and_forget_touches_nothing(
    practice: Practice,
) -> None:
    blank = practice.root / "blank.img"
    with blank.open("wb") as f:
        f.truncate(1024 * 1024 * 1024)
    disk = LoopDisk(blank)
    practice.disks.append(disk)  # type: ignore[attr-defined]
    with daemon_running(practice):
        device = disk.plug()
        settle()
        refused = practice.coffre("disk", "enroll", device, "--name", "vierge")
        assert refused.returncode != 0
        assert "has no filesystem" in refused.stderr and "--format --yes" in refused.stderr
        half = practice.coffre("disk", "enroll", device, "--name", "vierge", "--format")
        assert half.returncode == 2 and "add --yes" in half.stderr
        assert disk.fs_uuid == "", "nothing may be written without --yes"
        done = practice.coffre(
            "disk", "enroll", device, "--name", "vierge", "--format", "--yes", check=True
        )
        assert "disk vierge formatted and enrolled" in done.stdout
        _wait_safe(practice, "vierge")
        label = subprocess.run(
            ["blkid", "-p", "-o", "value", "-s", "LABEL", str(blank)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert label == "COFFRE-VIERGE"
        before = disk.digest()
        forgot = practice.coffre("disk", "forget", "vierge", check=True)
        assert "nothing on it was touched" in forgot.stdout
        assert _disks(practice) == {}
        assert disk.digest() == before
        # A disk mounted elsewhere is never taken.
        again = disk.plug()
        settle()
        view = practice.root / "elsewhere"
        view.mkdir()
        subprocess.run(["mount", again, str(view)], check=True)
        try:
            busy = practice.coffre("disk", "enroll", again, "--name", "autre")
            assert busy.returncode != 0 and "is mounted at" in busy.stderr
        finally:
            subprocess.run(["umount", str(view)], check=True)
