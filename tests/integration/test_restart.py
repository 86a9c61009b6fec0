"""What a restart of the daemon keeps: status tells what the repository holds at once."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import (
    Daemon,
    Practice,
    daemon_running,
    fill_share,
    scan_bytes,
    wait_for,
)


def test_status_lists_the_archives_after_a_restart_that_cut_a_backup(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    fill_share(practice.share, files=20)
    daemon = Daemon(practice).ready()
    try:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        [first] = practice.archive_names()
        big = practice.share / "imagerie"
        big.mkdir()
        for i in range(10):
            (big / f"scan-{i}.dcm").write_bytes(scan_bytes(50 * 1024 * 1024))
        practice.coffre("backup", check=True)  # queued, not waited for

        def reading() -> bool:
            running = practice.status()["running"]
            return bool(running and running["counters"].get("original_size"))

        wait_for(reading, timeout=60, what="borg create reading the share")
    finally:
        assert daemon.stop(timeout=90) == 0  # as `systemctl stop`: borg checkpoints and stops

    with daemon_running(practice):
        local = practice.status()["targets"]["local"]
        assert local["last_attempt"]["outcome"] == "interrupted"  # no backup since
        assert local["listed"], "status says 'not listed yet' of a repository with archives"
        assert first in [a["name"] for a in local["archives"]]
        assert local["slots"], "restore points unknown"
        shown = practice.coffre("status", check=True).stdout
        # The list kept is stale (a checkpoint may be missing): the next job
        # reading the repository asks borg again.
        assert practice.coffre("find", "no-such-file").returncode == 5
        listed = [a["name"] for a in practice.status()["targets"]["local"]["archives"]]
        assert sorted(listed) == practice.archive_names()
        assert any(".checkpoint" in name for name in listed)
    assert "not listed yet" not in shown
    assert first in shown
