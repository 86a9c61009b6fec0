"""Long uploads: a cut resumes from its checkpoint; the main lane never waits on the network."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from coffre.guard.canaries import NAMES as CANARIES
from tests.integration.harness import running_daemon, scan_bytes, wait_for
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host, running_host
from tests.integration.usb import LoopDisk, ensure_udevd, settle

#: An upload window covering every minute of the week.
ALWAYS = '[[target.upload_window]]\nfrom = "00:00"\nto = "24:00"\nlimit_kbps = {limit}\n'
MB = 1 << 20


def _random_share(share: Path, files: int, size: int = MB) -> int:
    """``files`` incompressible files: what is sent is what is stored."""
    for i in range(files):
        path = share / f"dossier-{i % 4}" / f"image-{i:03d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(scan_bytes(size))
    return files * size


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    yield from running_host(tmp_path, "hds1")


def _more_transactions(host: Host, before: int) -> bool:
    return len(host.transactions()) > before


def _practice(tmp_path: Path, host: Host, limit: int, files: int) -> tuple[OffsitePractice, int]:
    practice = OffsitePractice(
        tmp_path / "box",
        hosts={"hds1": host},
        offsite_extra={"hds1": "retry_for = 10\n" + ALWAYS.format(limit=limit)},
    )
    return practice, _random_share(practice.share, files)


def test_a_cut_upload_is_retried_and_resumes_from_its_checkpoint(
    tmp_path: Path, host: Host
) -> None:
    practice, data = _practice(tmp_path, host, limit=1500, files=24)
    for daemon in running_daemon(practice):
        practice.coffre("target", "init", "local", check=True)
        enroll(practice, "hds1", host)
        before = len(host.transactions())
        with ThreadPoolExecutor(1) as client:
            backup = client.submit(practice.job_events, {"op": "backup", "wait": True})
            # The first checkpoint of the upload is committed on the host...
            wait_for(partial(_more_transactions, host, before), timeout=120, what="a checkpoint")
            # ...then the link is cut (sshd and the session die), and comes back.
            host.kill()
            host.start()
            events = backup.result(timeout=300)
        assert events[-1]["ok"] is True, (events[-1], daemon.logs())
        done = {e["target"]: e for e in events if e["event"] == "target_done"}
        assert done["local"]["ok"] and done["hds1"]["ok"]
        # Once cut, the upload was tried again (the same job, not the next night's).
        assert [e for e in events if e["event"] == "retry_wait" and e["targets"] == ["hds1"]]
        status = practice.status()["targets"]
        failure = status["hds1"]["last_failure"]
        assert failure is not None and failure["error_kind"] == "connection_closed", failure
        # The checkpoint's chunks were not sent again: the final archive added
        # well under the share's size, and what was sent in all is about the share.
        final = status["hds1"]["last_success"]
        assert final["deduplicated_size"] < 0.8 * data, (final, data)
        assert status["hds1"]["offsite"]["bytes_sent"] < 1.5 * data
        assert status["local"]["last_failure"] is None
        # The share's 24 files and the guard's canaries, planted before the first backup.
        assert status["local"]["last_success"]["nfiles"] == 24 + len(CANARIES)


def _main_lane_runs_during_an_upload(
    practice: OffsitePractice, action: Callable[[], None], usual: float
) -> float:
    """Start a long upload, run ``action`` (main lane) during it; returns how long it took.

    The action must end within ``usual`` seconds, while the upload still runs;
    the upload must then complete. The USB version of this passes a disk
    plugged in as ``action``.
    """
    practice.coffre("backup", "--target", "hds1", check=True)
    wait_for(
        lambda: (practice.status()["uploading"] or {}).get("counters", {}).get("nfiles", 0) > 0,
        timeout=60,
        what="the upload to be under way",
    )
    began = time.monotonic()
    action()
    took = time.monotonic() - began
    assert took < usual, f"the main-lane job took {took:.1f} s during an upload"
    assert practice.status()["uploading"] is not None, "the upload ended before the main job"
    wait_for(
        lambda: practice.status()["targets"]["hds1"]["last_success"] is not None,
        timeout=300,
        what="the upload to complete",
    )
    return took


def test_a_local_backup_asked_during_a_long_upload_runs_at_once(tmp_path: Path, host: Host) -> None:
    practice, _ = _practice(tmp_path, host, limit=400, files=12)
    for daemon in running_daemon(practice):
        practice.coffre("target", "init", "local", check=True)
        enroll(practice, "hds1", host)

        def local_backup() -> None:
            practice.coffre("backup", "--target", "local", "--wait", check=True)

        _main_lane_runs_during_an_upload(practice, local_backup, usual=20)
        status = practice.status()["targets"]
        assert status["local"]["last_success"] is not None
        assert status["hds1"]["last_failure"] is None, daemon.logs()


def test_a_usb_disk_plugged_in_during_a_long_upload_is_safe_to_remove_in_its_usual_time(
    tmp_path: Path, host: Host
) -> None:
    ensure_udevd()
    practice, _ = _practice(tmp_path, host, limit=400, files=12)
    disk = LoopDisk(tmp_path / "disque-a.img")
    try:
        for daemon in running_daemon(practice):
            practice.coffre("target", "init", "local", check=True)
            enroll(practice, "hds1", host)
            device = disk.plug()
            settle()
            practice.coffre("disk", "enroll", device, "--name", "disque-a", check=True)
            wait_for(partial(_safe_to_remove, practice, None), timeout=120, what="the first job")

            def plug_and_wait() -> None:
                seen = _disk_row(practice)["last_seen"]
                disk.plug()
                wait_for(partial(_safe_to_remove, practice, seen), timeout=120, what="safe")

            # Its usual time, with no upload going on...
            began = time.monotonic()
            plug_and_wait()
            usual = time.monotonic() - began
            # ...and during a long, throttled upload: about the same.
            took = _main_lane_runs_during_an_upload(practice, plug_and_wait, usual=2 * usual + 5)
            assert not disk.attached()
            assert practice.status()["targets"]["hds1"]["last_failure"] is None, daemon.logs()
            print(f"safe to remove in {usual:.1f} s alone, {took:.1f} s during the upload")
    finally:
        disk.unplug()


def _disk_row(practice: OffsitePractice) -> dict[str, object]:
    rows = json.loads(practice.coffre("disk", "list", "--json", check=True).stdout)
    row: dict[str, object] = rows[0]
    return row


def _safe_to_remove(practice: OffsitePractice, seen_before: object) -> bool:
    row = _disk_row(practice)
    return bool(row["safe_to_remove"]) and not row["busy"] and row["last_seen"] != seen_before
