"""Offsite targets against two real sshd hosts: enrollment, nightly, refusals, history, secrecy."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import (
    PASSPHRASE,
    Daemon,
    daemon_running,
    fill_share,
)
from tests.integration.offsite_practice import OffsitePractice, enroll
from tests.integration.sshd import Host
from tests.parts import binary

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLLBACK = REPO_ROOT / "packaging" / "hds" / "coffre-hds-rollback"


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[dict[str, Host]]:
    started = {name: Host(tmp_path, name).start() for name in ("hds1", "hds2")}
    try:
        yield started
    finally:
        for host in started.values():
            host.stop()


@pytest.fixture
def practice(tmp_path: Path, hosts: dict[str, Host]) -> OffsitePractice:
    p = OffsitePractice(tmp_path / "box", hosts=hosts)
    fill_share(p.share, files=30)
    return p


def _enrolled(practice: OffsitePractice) -> None:
    practice.coffre("target", "init", "local", check=True)
    for name, host in practice.hosts.items():
        enroll(practice, name, host)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_nightly_run_lands_an_archive_on_both_hosts(
    practice: OffsitePractice, daemon: Daemon, tmp_path: Path
) -> None:
    _enrolled(practice)
    backup = practice.coffre("backup", "--wait", check=True)
    for name in ("local", "hds1", "hds2"):
        assert f"{name}: ok, archive cabinet-" in backup.stderr, backup.stderr
    status = practice.status()["targets"]
    for name, host in practice.hosts.items():
        archive = status[name]["last_success"]["archive"]
        listed = [a["name"] for a in host.archives(tmp_path / f"admin-{name}")]
        assert listed == [archive]
        offsite = status[name]["offsite"]
        assert offsite["reachable"] is True and offsite["last_error_kind"] is None
        assert offsite["bytes_sent"] >= status[name]["last_success"]["deduplicated_size"] > 0
    text = practice.coffre("status", check=True).stdout
    assert "host: reachable" in text and "sent: " in text


def _box_borg(practice: OffsitePractice, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """borg run with the box's own key and pins, as ransomware on the box could."""
    ssh_dir = practice.state_dir / "ssh"
    rsh = (
        f"ssh -F none -i {ssh_dir / f'{name}_ed25519'} -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={ssh_dir / f'known_hosts_{name}'}"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(practice.root / "attacker"),
        "BORG_BASE_DIR": str(practice.root / "attacker"),
        "BORG_RSH": rsh,
        "BORG_PASSPHRASE": PASSPHRASE,
        "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "YES",
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
    }
    return subprocess.run(
        [binary("borg"), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_box_key_cannot_erase_history(
    practice: OffsitePractice, daemon: Daemon, tmp_path: Path
) -> None:
    _enrolled(practice)
    practice.coffre("backup", "--wait", check=True)
    host = practice.hosts["hds1"]
    archive = practice.status()["targets"]["hds1"]["last_success"]["archive"]
    good = host.transactions()[-1]

    # Whoever holds the box deletes the archive, and tries to delete the repository.
    deleted = _box_borg(practice, "hds1", "delete", f"{host.url}::{archive}")
    assert deleted.returncode == 0, deleted.stderr
    whole = _box_borg(practice, "hds1", "delete", host.url)
    assert whole.returncode != 0
    assert host.archives(tmp_path / "admin-before") == []
    assert host.transactions()[-1] > good

    # The host's operator rolls the repository back to the last good transaction.
    listed = subprocess.run(
        [binary("python"), str(ROLLBACK), str(host.repo)], capture_output=True, text=True
    )
    assert listed.returncode == 0 and str(good) in listed.stdout, listed.stderr
    rolled = subprocess.run(
        [
            binary("python"),
            str(ROLLBACK),
            str(host.repo),
            "--to",
            str(good),
            "--yes",
            "--borg",
            binary("borg"),
        ],
        capture_output=True,
        text=True,
    )
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    admin = tmp_path / "admin-after"
    assert [a["name"] for a in host.archives(admin)] == [archive]

    # A file restored from it, through the host, is the one of the share.
    restore = tmp_path / "restore"
    restore.mkdir()
    some = sorted(p for p in practice.share.rglob("*") if p.is_file())[3]
    inside = str(some).lstrip("/")
    host.admin_borg(admin, "extract", f"{host.url}::{archive}", inside, cwd=restore)
    assert _digest(restore / inside) == _digest(some)

    # The box goes on backing up there (its own borg state never saw the deletion).
    practice.coffre("backup", "--wait", "--target", "hds1", check=True)
    assert len(host.archives(admin)) == 2


def test_a_host_key_mismatch_is_refused_before_anything_is_sent(
    practice: OffsitePractice, daemon: Daemon
) -> None:
    _enrolled(practice)
    intercepted = practice.hosts["hds2"]
    intercepted.new_host_key()  # someone else answers at hds2's address
    files_before = intercepted.files()
    log_before = len(intercepted.sshd_log())

    backup = practice.coffre("backup", "--wait")
    assert backup.returncode == 1
    assert "hds1: ok, archive" in backup.stderr and "local: ok" in backup.stderr
    assert "host key mismatch (possible interception): not sending anything" in backup.stderr
    assert intercepted.fingerprint() in backup.stderr  # what it showed, to tell the operator
    status = practice.status()["targets"]
    assert status["hds2"]["last_failure"]["error_kind"] == "host_key_mismatch"
    assert status["hds2"]["offsite"]["reachable"] is True
    assert status["hds1"]["last_failure"] is None
    # Nothing reached the host: no login, no byte written in its repository.
    assert intercepted.files() == files_before
    assert "Accepted publickey" not in intercepted.sshd_log()[log_before:]

    # Enrolling again shows the new key and refuses to go on without the operator's word.
    again = practice.coffre("offsite", "enroll", "hds2")
    assert again.returncode == 1 and "NOT the pinned host key" in again.stdout


def test_without_enrollment_or_authorization_jobs_refuse_clearly(
    practice: OffsitePractice, daemon: Daemon
) -> None:
    practice.coffre("target", "init", "local", check=True)
    not_enrolled = practice.coffre("backup", "--wait", "--target", "hds1")
    assert not_enrolled.returncode == 1
    assert "target hds1 is not enrolled" in not_enrolled.stderr
    assert "coffre offsite enroll hds1" in not_enrolled.stderr
    assert practice.hosts["hds1"].files() == {}

    # Pinned, but the host's operator has not installed the box's key yet.
    host = practice.hosts["hds2"]
    fingerprint = host.fingerprint()
    pinned = practice.coffre("offsite", "enroll", "hds2", "--accept-host-key", fingerprint)
    assert pinned.returncode == 1 and "refused the box's SSH key" in pinned.stdout
    refused = practice.coffre("target", "init", "hds2")
    assert refused.returncode == 1 and "refused the box's SSH key" in refused.stderr
    status = practice.status()["targets"]["hds2"]
    assert status["last_failure"]["error_kind"] == "auth_refused"
    assert status["offsite"]["reachable"] is True

    # A fingerprint that is not the host's pins nothing.
    wrong = practice.coffre("offsite", "enroll", "hds1", "--accept-host-key", "SHA256:" + "A" * 43)
    assert wrong.returncode == 2 and "nothing was pinned" in wrong.stderr


def test_an_unreachable_host_fails_alone_as_unreachable(practice: OffsitePractice) -> None:
    # Retried for a minute only, every second then 2, 4...: the run ends within the test.
    practice.offsite_extra = {"hds1": "retry_for = 1"}
    practice.write_config()
    with daemon_running(practice):
        _enrolled(practice)
        practice.hosts["hds1"].stop()
        events = practice.job_events({"op": "backup", "wait": True})
        result = events[-1]
        assert result["event"] == "result" and result["ok"] is False, result
        assert result["targets"]["hds1"]["error"]["kind"] == "unreachable"
        done = {e["target"]: e for e in events if e["event"] == "target_done"}
        assert done["hds2"]["ok"] and done["hds2"]["archive"].startswith("cabinet-")
        assert done["local"]["ok"]
        # Tried again and again during its minute of retries, hds1 alone.
        retries = [e["targets"] for e in events if e["event"] == "retry_wait"]
        assert len(retries) >= 3 and all(t == ["hds1"] for t in retries), retries
        status = practice.status()["targets"]
        assert status["hds1"]["last_failure"]["error_kind"] == "unreachable"
        assert status["hds1"]["offsite"]["reachable"] is False
        text = practice.coffre("status", check=True).stdout
        assert "host: UNREACHABLE" in text


def test_nothing_stored_on_the_host_is_in_the_clear(
    practice: OffsitePractice, daemon: Daemon
) -> None:
    marker = "ZEBULON-MARQUEUR-7f3a9c"
    (practice.share / "compte-rendu.txt").write_text(
        f"patient {marker}, diagnostic confidentiel\n" * 200, encoding="utf-8"
    )
    (practice.share / f"dossier-{marker}.txt").write_text("x", encoding="utf-8")
    _enrolled(practice)
    practice.coffre("backup", "--wait", check=True)
    for host in practice.hosts.values():
        stored = [p for p in host.repo.rglob("*") if p.is_file()]
        assert any(p.stat().st_size > 10_000 for p in stored)
        for path in stored:
            assert marker.encode() not in path.read_bytes(), path
