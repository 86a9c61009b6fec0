"""Restores, finds, browsing and key escrow from a local target, with the real borg and daemon."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest

from coffre.core.restore_plan import STAGING_PREFIX, folder_name
from coffre.storage.audit import MSG_AUDIT
from coffre.storage.staging_mark import StagingMark
from coffre.support.staging import TREE, claim
from tests.integration import journal
from tests.integration.harness import (
    Daemon,
    Practice,
    daemon_running,
    fill_share,
    scan_bytes,
    wait_for,
)
from tests.integration.terminal import on_a_terminal
from tests.integration.usb import faketime_env
from tests.parts import binary


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by path relative to it."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def audit_lines(practice: Practice) -> list[dict[str, object]]:
    log = practice.state_dir / "audit.log"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path)
    fill_share(p.share, files=30)
    (p.share / "Patients" / "DUPONT Jean").mkdir(parents=True)
    (p.share / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf").write_bytes(os.urandom(30_000))
    (p.share / "Patients" / "MARTIN Léa").mkdir(parents=True)
    (p.share / "Patients" / "MARTIN Léa" / "bilan.odt").write_bytes(os.urandom(5_000))
    # The share as the practice has it: group-shared, setgid (packaging/samba).
    p.share.chmod(0o2770)
    return p


@pytest.fixture
def backed_up(practice: Practice, daemon: Daemon) -> tuple[str, dict[str, str]]:
    """One archive of the share; its name and the share's digest at backup time."""
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    archive = practice.status()["targets"]["local"]["last_success"]["archive"]
    return str(archive), digest(practice.share)


def test_restore_a_file_and_a_folder_into_restaurations_byte_identical(
    practice: Practice, backed_up: tuple[str, dict[str, str]]
) -> None:
    archive, at_backup = backed_up
    # The practice loses a folder and damages a file after the backup.
    (practice.share / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf").write_bytes(b"ransom")
    for lost in (practice.share / "dossier-3").iterdir():
        lost.unlink()
    result = practice.coffre(
        "restore", "Patients/DUPONT Jean/ordonnance 2026.pdf", "dossier-3", check=True
    )
    out = practice.share / "_restaurations" / folder_name(archive)
    assert f"from archive {archive} of local" in result.stdout
    assert str(out / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf") in result.stdout
    assert str(out / "dossier-3") in result.stdout
    restored = digest(out)
    expected = {
        k: v
        for k, v in at_backup.items()
        if k.startswith("dossier-3/") or k == "Patients/DUPONT Jean/ordonnance 2026.pdf"
    }
    assert restored == expected and len(expected) > 2
    # The damaged file itself is untouched: restores never write over the share's files.
    assert (practice.share / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf").read_bytes() == (
        b"ransom"
    )
    # Folders coffre made are the share's (SMB users must open them); no staging left over.
    for folder in (out.parent, out, out / "Patients", out / "Patients" / "DUPONT Jean"):
        assert folder.stat().st_mode & 0o7777 == 0o2770, folder
    assert not [p for p in out.iterdir() if p.name.startswith(".coffre")]


def test_no_overwrite_without_the_flag_and_nothing_written(
    practice: Practice, backed_up: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    _, at_backup = backed_up
    elsewhere = tmp_path / "ailleurs"
    practice.coffre("restore", "dossier-1", "--to", str(elsewhere), check=True)
    victim = elsewhere / "dossier-1" / "patient-00001.txt"
    victim.write_bytes(b"changed since")
    before = digest(elsewhere)
    again = practice.coffre("restore", "dossier-1", "Patients", "--to", str(elsewhere))
    assert again.returncode == 6, again.stderr
    assert "exist already" in again.stderr and "patient-00001.txt" in again.stderr
    assert "--overwrite" in again.stderr
    assert digest(elsewhere) == before  # not even Patients/ was added
    forced = practice.coffre(
        "restore", "dossier-1", "--to", str(elsewhere), "--overwrite", check=True
    )
    assert "restored" in forced.stdout
    assert victim.read_bytes() != b"changed since"
    assert (
        hashlib.sha256(victim.read_bytes()).hexdigest() == at_backup["dossier-1/patient-00001.txt"]
    )


def test_a_path_in_no_archive_is_a_clear_error_with_its_exit_code(
    practice: Practice, backed_up: tuple[str, dict[str, str]]
) -> None:
    archive, _ = backed_up
    result = practice.coffre("restore", "Patients/DURAND Paul", "dossier-2")
    assert result.returncode == 5, result.stderr
    assert f"not in archive {archive}" in result.stderr
    assert "DURAND Paul" in result.stderr and "coffre find" in result.stderr
    # dossier-2 existed but nothing at all was written: all or nothing.
    assert not (practice.share / "_restaurations" / folder_name(archive) / "dossier-2").exists()
    outside = practice.coffre("restore", "/etc/passwd")
    assert outside.returncode == 2 and "not in what coffre backs up" in outside.stderr


def test_a_destination_that_cannot_be_written_is_a_clear_error(
    practice: Practice, backed_up: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_bytes(b"x")
    result = practice.coffre("restore", "dossier-1", "--to", str(a_file / "sub"))
    assert result.returncode == 1, result.stderr
    assert f"{a_file} is a file, not a folder" in result.stderr
    assert "nothing was written" in result.stderr
    assert a_file.read_bytes() == b"x"


@pytest.mark.parametrize(
    ("room", "paths"),
    [
        # borg 1.4 warns about each file it cannot write, leaves it truncated, goes on.
        ("256k", ["Radios", "dossier-1"]),
        # borg 1.4 stops with an error on ENOSPC in a file's final truncate.
        ("64k", ["Patients", "dossier-1", "dossier-2"]),
    ],
)
def test_a_restore_that_fills_its_destination_writes_nothing_and_says_so(
    practice: Practice, daemon: Daemon, tmp_path: Path, room: str, paths: list[str]
) -> None:
    (practice.share / "Radios").mkdir()
    for i in range(3):
        (practice.share / "Radios" / f"radio-{i}.dcm").write_bytes(scan_bytes(200_000))
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    small = tmp_path / "petit"
    small.mkdir()
    mount = [binary("mount"), "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(small)]
    subprocess.run(mount, check=True)
    try:
        result = practice.coffre("restore", *paths, "--to", str(small))
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"no space left where the restore goes ({small})" in result.stderr
        assert "restore elsewhere with --to DIR" in result.stderr
        assert list(small.iterdir()) == []
    finally:
        subprocess.run([binary("umount"), small], check=True)
    last = audit_lines(practice)[-1]
    assert (last["op"], last["outcome"]) == ("restore", "failed: destination")


def _left_by_a_killed_restore(practice: Practice, parent: Path) -> Path:
    """A staging folder as coffre makes it, its restore killed after borg began writing."""
    mark = StagingMark.of_box(practice.state_dir)
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.ExitStack() as held:  # closing it drops the lock, as a death does
            staging = claim(fd, PurePosixPath(parent), mark, held)
            (parent / staging.name / TREE / "Patients").mkdir()
            (parent / staging.name / TREE / "Patients" / "x.pdf").write_bytes(b"half a file")
    finally:
        os.close(fd)
    return parent / staging.name


def test_what_a_killed_restore_extracted_is_removed_at_start_and_never_backed_up(
    practice: Practice,
) -> None:
    share = practice.share
    restaurations = share / "_restaurations"
    stale = [
        _left_by_a_killed_restore(practice, restaurations / "cabinet-a"),
        _left_by_a_killed_restore(practice, share),  # coffre recover stages in the share itself
    ]
    running = _left_by_a_killed_restore(practice, restaurations / "cabinet-b")
    (restaurations / "cabinet-b" / "kept.pdf").write_bytes(b"restored earlier")
    # A workstation user's folder with a staging folder's name, in both places.
    users = [
        share / f"{STAGING_PREFIX}mes-notes",
        restaurations / "cabinet-b" / f"{STAGING_PREFIX}x",
    ]
    for folder in users:
        folder.mkdir()
        (folder / "lettre-importante.odt").write_bytes(b"written by a user")
        os.chown(folder, 1234, 1234)
        folder.chmod(0o2770)
    # A restore still running (a `coffre recover` beside the daemon) holds its folder.
    holder = os.open(running, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with daemon_running(practice) as daemon:
            assert not any(staging.exists() for staging in stale)
            assert not (restaurations / "cabinet-a").exists()  # made for that restore only
            assert (running / TREE / "Patients" / "x.pdf").exists()
            assert (restaurations / "cabinet-b" / "kept.pdf").read_bytes() == b"restored earlier"
            for folder in users:
                assert (folder / "lettre-importante.odt").read_bytes() == b"written by a user"
            assert daemon.logs().count("what a restore cut short had extracted") == 2
            practice.coffre("target", "init", "local", check=True)
            practice.coffre("backup", "--wait", check=True)
    finally:
        os.close(holder)
    (archive,) = practice.archive_names()
    listed = practice.borg("list", "--short", f"{practice.repository()}::{archive}").stdout
    assert "kept.pdf" in listed
    assert "half a file" not in listed and f"{running.name}" not in listed  # a running restore
    for folder in users:  # backed up, files and all
        assert f"{folder.relative_to('/')}/lettre-importante.odt" in listed


def test_a_restore_that_cannot_be_recorded_is_refused_and_restores_nothing(
    journald: None, practice: Practice
) -> None:
    with daemon_running(practice, log_target="journal") as daemon:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        log = practice.state_dir / "audit.log"
        assert not log.exists()  # nothing was read yet
        log.mkdir()  # the log cannot be opened for writing (EISDIR): as a full disk would
        result = practice.coffre("restore", "Patients")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"cannot record this restore in the audit log {log}" in result.stderr
        assert "nothing was done" in result.stderr
        assert not (practice.share / "_restaurations").exists()
        # The journal keeps the attempt: an audit entry that has no place in the chain.
        attempts = journal.wait_for_entries(MSG_AUDIT, daemon.process.pid)
    assert [(e["COFFRE_AUDIT_OP"], "COFFRE_AUDIT_SEQ" in e) for e in attempts] == [
        ("restore", False)
    ]


def test_a_restore_runs_while_another_target_is_backed_up_and_waits_for_its_own(
    tmp_path: Path,
) -> None:
    """Support does not wait behind a long backup of another target (a USB disk's first)."""
    # lock_wait: long enough to outlast the restore; borg polls a held lock every lock_wait/60.
    practice = Practice(tmp_path, targets=("local", "disque"), lock_wait=120)
    fill_share(practice.share, files=10)
    with contextlib.ExitStack() as stack:
        daemon = Daemon(practice).ready()
        stack.callback(daemon.stop)
        for target in practice.targets:
            practice.coffre("target", "init", target, check=True)
        practice.coffre("backup", "--wait", "--target", "local", check=True)
        # The other target's repository is held: its backup runs, stuck, for as long as we say.
        holder = subprocess.Popen(
            [binary("borg"), "with-lock", str(practice.repository("disque")), "cat"],
            env=practice.borg_env,
            stdin=subprocess.PIPE,
        )
        stack.callback(holder.kill)
        wait_for(lambda: _locked(practice.repository("disque")), what="the held lock")
        practice.coffre("backup", "--target", "disque", check=True)  # queued, not followed
        wait_for(lambda: _backing_up(practice, "disque"), what="the stuck backup")

        restored = practice.coffre("restore", "dossier-1", "--target", "local", timeout=120)
        assert restored.returncode == 0, restored.stderr
        assert _backing_up(practice, "disque"), "the backup must still be stuck meanwhile"
        # A read of the very target being backed up waits for it, and says so.
        find = subprocess.Popen(
            [binary("coffre"), "find", "patient", "--target", "disque"],
            env=practice.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.callback(find.kill)
        assert find.stderr is not None
        assert find.stderr.readline().startswith("waiting for the backup of disque")

        assert holder.stdin is not None
        holder.stdin.close()  # the lock is let go: the backup, then the find, go on
        assert find.wait(timeout=300) == 0
        wait_for(
            lambda: practice.status()["targets"]["disque"]["last_success"] is not None,
            what="the backup's end",
        )
    (restored_into,) = (practice.share / "_restaurations").iterdir()
    assert (restored_into / "dossier-1").is_dir()


def _locked(repository: Path) -> bool:
    return (repository / "lock.exclusive").exists()


def _backing_up(practice: Practice, target: str) -> bool:
    """The daemon's main lane runs a backup of ``target``, which has not ended yet."""
    running = practice.status()["running"]
    return running is not None and (running["kind"], running["current_target"]) == (
        "backup",
        target,
    )


def test_find_lists_matching_paths_newest_first_with_size_and_time(
    practice: Practice, backed_up: tuple[str, dict[str, str]]
) -> None:
    first, _ = backed_up
    (practice.share / "Patients" / "DUPONT Jean" / "radio.jpg").write_bytes(b"x" * 1234)
    practice.coffre("backup", "--wait", check=True)
    second = practice.status()["targets"]["local"]["last_success"]["archive"]
    found = practice.coffre("find", "dupont", "--json", check=True)
    hits = json.loads(found.stdout)["hits"]
    archives = [h["archive"] for h in hits]
    assert archives == sorted(archives, reverse=True) and archives[0] == second
    radio = [h for h in hits if h["path"].endswith("radio.jpg")]
    assert len(radio) == 1 and radio[0]["archive"] == second and radio[0]["size"] == 1234
    assert {h["archive"] for h in hits if h["path"].endswith("ordonnance 2026.pdf")} == {
        first,
        second,
    }
    glob = practice.coffre("find", "Patients/*/*.odt", check=True)
    assert "bilan.odt" in glob.stdout and "ordonnance" not in glob.stdout
    nothing = practice.coffre("find", "durand")
    assert nothing.returncode == 5 and "nothing matches" in nothing.stderr


def test_find_keeps_archives_of_the_same_second_apart_newest_first(practice: Practice) -> None:
    # The wall clock stands still (libfaketime, absolute time): both backups
    # get the same second, as two quick ones do by chance, and borg's times tie.
    frozen = {**faketime_env(0), "FAKETIME": "2026-12-05 10:00:00"}
    with daemon_running(practice, env=frozen):
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        first = practice.status()["targets"]["local"]["last_success"]["archive"]
        (practice.share / "Patients" / "DUPONT Jean" / "radio.jpg").write_bytes(b"x" * 1234)
        practice.coffre("backup", "--wait", check=True)
        second = practice.status()["targets"]["local"]["last_success"]["archive"]
        assert second == f"{first}-2"
        hits = json.loads(practice.coffre("find", "dupont", "--json", check=True).stdout)["hits"]
        assert len({h["archive_time"] for h in hits}) == 1
        shown = practice.coffre("find", "dupont", check=True).stdout
    archives = [h["archive"] for h in hits]
    # Grouped by archive, the newer one first, each group in path order.
    assert archives == sorted(archives, key=[second, first].index)
    for name in (first, second):
        paths = [h["path"] for h in hits if h["archive"] == name]
        assert paths == sorted(paths)
    headers = [line for line in shown.splitlines() if not line.startswith(" ")]
    assert [h.split(" (")[0] for h in headers] == [second, first]


def test_find_gives_times_in_the_boxs_timezone_as_archive_names_do(practice: Practice) -> None:
    # Nouméa is UTC+11 all year: a time printed in UTC would be visibly off.
    practice.timezone = "Pacific/Noumea"
    practice.write_config()
    scan = practice.share / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf"
    at_noon_utc = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
    os.utime(scan, (at_noon_utc, at_noon_utc))
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        archive = practice.status()["targets"]["local"]["last_success"]["archive"]
        found = json.loads(practice.coffre("find", "ordonnance", "--json", check=True).stdout)
        shown = practice.coffre("find", "ordonnance", check=True).stdout
    [hit] = found["hits"]
    assert hit["mtime"] == "2026-06-15T23:00:00+11:00"
    made = datetime.fromisoformat(hit["archive_time"])
    assert made.utcoffset() == timedelta(hours=11)
    # The archive's name carries the box's local time of its making.
    assert archive == f"{practice.prefix}-{made:%Y-%m-%dT%H:%M:%S}"
    assert f"{archive} (local, made {made:%Y-%m-%d %H:%M:%S})" in shown
    assert "2026-06-15 23:00:00" in shown


def test_every_operation_is_audited_and_verify_catches_edits(
    practice: Practice, backed_up: tuple[str, dict[str, str]]
) -> None:
    practice.env["SUDO_USER"] = "support-lea"
    practice.env["SSH_CONNECTION"] = "192.0.2.7 52100 192.0.2.1 22"
    practice.coffre("find", "dupont", check=True)
    practice.coffre("restore", "dossier-0", check=True)
    practice.coffre("restore", "nowhere")
    practice.coffre("key", "export", "--paper", check=True)
    lines = audit_lines(practice)
    done = [(line["op"], line["outcome"]) for line in lines if line["outcome"] != "asked"]
    assert done == [
        ("find", "ok"),
        ("restore", "ok"),
        ("restore", "failed: not_in_archive"),
        ("key_export", "ok"),
    ]
    restore = next(line for line in lines if line["op"] == "restore" and line["outcome"] == "ok")
    person = restore["person"]
    assert isinstance(person, dict)
    assert person["user"] == "support-lea" and person["ssh"].startswith("192.0.2.7 ")
    assert person["uid"] == os.getuid()
    assert restore["target"] == "local" and restore["paths"] == ["dossier-0"]
    assert str(restore["archive"]).startswith("cabinet-")
    assert practice.coffre("audit", "verify", check=True).stdout.startswith("audit log intact")
    listing = practice.coffre("audit", check=True).stdout
    assert "support-lea" in listing and "restore" in listing

    log = practice.state_dir / "audit.log"
    original = log.read_bytes()
    rows = original.splitlines(keepends=True)
    log.write_bytes(b"".join([*rows[:2], rows[2].replace(b"dossier-0", b"dossier-9"), *rows[3:]]))
    edited = practice.coffre("audit", "verify")
    assert edited.returncode == 1 and "line 3" in edited.stdout + edited.stderr
    log.write_bytes(b"".join(rows[:4] + rows[5:]))
    removed = practice.coffre("audit", "verify")
    assert removed.returncode == 1 and "removed" in removed.stdout + removed.stderr
    log.write_bytes(original)
    assert practice.coffre("audit", "verify").returncode == 0


def test_status_warns_until_the_key_is_exported_and_the_sheet_holds_the_key(
    practice: Practice, backed_up: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    assert "was never exported" in practice.coffre("status", check=True).stdout
    sheet = practice.coffre("key", "export", "--paper", check=True).stdout
    assert "BORG PAPER KEY v1" in sheet and "coffre recover" in sheet
    assert "was never exported" not in practice.coffre("status", check=True).stdout
    # The sheet is borg's own: borg's paper import takes it back, line by line.
    escrow = practice.status()["key_escrow"]
    assert [e["target"] for e in escrow] == ["local"] and escrow[0]["exported_at"]
    own = practice.borg("key", "export", "--paper", str(practice.repository())).stdout
    assert own.strip().splitlines()[-1] in sheet


def test_browse_mounts_read_only_and_unmounts_when_the_command_ends(
    practice: Practice, backed_up: tuple[str, dict[str, str]]
) -> None:
    archive, at_backup = backed_up
    browse = _browse(practice, "--archive", archive)
    try:
        assert browse.stdout is not None and browse.stdin is not None
        mountpoint = Path(browse.stdout.readline().strip())
        assert mountpoint.is_relative_to(practice.root / "run")
        inside = mountpoint / str(practice.share).lstrip("/")
        file = inside / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf"
        assert (
            hashlib.sha256(file.read_bytes()).hexdigest()
            == at_backup["Patients/DUPONT Jean/ordonnance 2026.pdf"]
        )
        with pytest.raises(OSError):
            (inside / "new.txt").write_text("no")
        browse.stdin.close()
        assert browse.wait(timeout=60) == 0
    finally:
        if browse.poll() is None:
            browse.kill()
    wait_for(lambda: not _mounted(mountpoint), what="browse mount gone")
    wait_for(lambda: audit_lines(practice)[-1]["outcome"] != "asked", what="browse's audit line")
    ops = [(line["op"], line["outcome"]) for line in audit_lines(practice)]
    assert ops[-2:] == [("browse", "asked"), ("browse", "ok")]


def test_browse_from_a_script_without_input_holds_the_mount_until_stopped(
    practice: Practice, backed_up: tuple[str, dict[str, str]], daemon: Daemon
) -> None:
    archive, at_backup = backed_up
    browse = _browse(practice, "--archive", archive, stdin=subprocess.DEVNULL)
    try:
        assert browse.stdout is not None and browse.stderr is not None
        mountpoint = Path(browse.stdout.readline().strip())
        # /dev/null ended at once: it no longer ends the browse within the second.
        file = mountpoint / str(practice.share).lstrip("/") / "Patients" / "DUPONT Jean"
        for _ in range(3):
            digest_now = hashlib.sha256((file / "ordonnance 2026.pdf").read_bytes()).hexdigest()
            assert digest_now == at_backup["Patients/DUPONT Jean/ordonnance 2026.pdf"]
        assert browse.poll() is None and _mounted(mountpoint)
        browse.send_signal(signal.SIGTERM)
        assert browse.wait(timeout=60) == 0
        # The command exits once the daemon has unmounted: a script may go on at once.
        assert not _mounted(mountpoint)
        said = browse.stderr.read()
        assert "this command is stopped (SIGTERM, SIGINT, SIGHUP)" in said
        assert re.search(r"unmounted \(SIGTERM\) after \d+ s", said), said
    finally:
        if browse.poll() is None:
            browse.kill()


def test_browse_for_seconds_unmounts_by_itself_and_logs_how_long_it_was_mounted(
    practice: Practice, backed_up: tuple[str, dict[str, str]], daemon: Daemon
) -> None:
    browse = _browse(practice, "--for", "2", stdin=subprocess.DEVNULL)
    try:
        assert browse.stdout is not None and browse.stderr is not None
        mountpoint = Path(browse.stdout.readline().strip())
        assert _mounted(mountpoint)
        assert browse.wait(timeout=60) == 0
        assert not _mounted(mountpoint)
        said = browse.stderr.read()
        held = re.search(r"unmounted \(--for 2 s over\) after (\d+) s", said)
        assert held is not None and int(held[1]) >= 2, said
    finally:
        if browse.poll() is None:
            browse.kill()
    # Counted from the mount, not from the stop ("stopped after 0.0s" after 41 s).
    mounted = re.findall(r"browse of local: unmounted after ([\d.]+)s mounted", daemon.logs())
    assert len(mounted) == 1 and 2.0 <= float(mounted[0]) < 30, daemon.logs()
    for ran in re.findall(r"borg mount stopped .* having run ([\d.]+)s", daemon.logs()):
        assert float(ran) >= 2.0


def test_browse_ends_by_itself_when_nobody_uses_it(tmp_path: Path) -> None:
    practice = Practice(tmp_path, extra="\n[restore]\nbrowse_idle = 1\n")
    fill_share(practice.share, files=5)
    daemon = Daemon(practice).ready()
    browse: subprocess.Popen[str] | None = None
    try:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        browse = _browse(practice)
        assert browse.stdout is not None and browse.stderr is not None
        mountpoint = Path(browse.stdout.readline().strip())
        assert _mounted(mountpoint)
        # Its input stays open: only the idle timeout can end it.
        assert browse.wait(timeout=60) == 0
        assert "unmounted (idle)" in browse.stderr.read()
        assert not _mounted(mountpoint)
    finally:
        if browse is not None and browse.poll() is None:
            browse.kill()
        daemon.stop()


@pytest.fixture
def namespaced(practice: Practice) -> Iterator[Daemon]:
    """A backed-up practice whose daemon has a mount namespace of its own, as systemd
    gives the unit: its mounts are not seen from the shell support logs in to."""
    practice.extra = "\n[restore]\nbrowse_idle = 1\n"
    practice.write_config()
    unshare = [binary("unshare"), "--mount", "--propagation", "private"]
    with daemon_running(practice, wrap=unshare) as daemon:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        yield daemon


def test_browse_on_a_terminal_opens_a_shell_in_the_daemons_mount_namespace(
    practice: Practice, namespaced: Daemon
) -> None:
    """The shell enters the daemon's namespace, lands in the mount, and the mount stays
    while the shell works in it, well past the idle timeout."""
    file = "Patients/DUPONT Jean/ordonnance 2026.pdf"
    expected = hashlib.sha256((practice.share / file).read_bytes()).hexdigest()
    mountpoint = practice.root / "run" / "browse" / "local"
    shell = {**practice.env, "SHELL": "/bin/sh", "PS1": "$ "}
    with on_a_terminal([binary("coffre"), "browse"], shell) as (browse, terminal):
        terminal.read_until(b"type `exit` to leave")
        assert _mounted(mountpoint, pid=namespaced.process.pid)
        assert not _mounted(mountpoint)
        # Without --archive the folder holds one folder per archive (one here).
        inside = f'./*/"{str(practice.share).lstrip("/")}/{file}"'
        terminal.write(f"pwd; sleep 3; sha256sum {inside}; echo DONE-$((20+22))\n")
        said = terminal.read_until(b"DONE-42")
        assert f"{mountpoint}\r\n".encode() in said  # pwd
        assert expected.encode() in said
        terminal.write("exit\n")
        assert browse.wait(timeout=60) == 0
    wait_for(lambda: not _mounted(mountpoint, pid=namespaced.process.pid), what="unmounted")
    wait_for(lambda: audit_lines(practice)[-1]["outcome"] != "asked", what="browse's audit line")
    ops = [(line["op"], line["outcome"]) for line in audit_lines(practice)]
    assert ops[-2:] == [("browse", "asked"), ("browse", "ok")]


def test_browse_from_a_script_prints_a_command_that_shows_the_archives(
    practice: Practice, namespaced: Daemon
) -> None:
    browse = _browse(practice)
    try:
        assert browse.stdout is not None and browse.stderr is not None
        mountpoint = browse.stdout.readline().strip()
        hint = next(line for line in browse.stderr if line.startswith("to look inside: "))
        command = shlex.split(hint.removeprefix("to look inside: "))
        assert command[0] == "sudo" and command[-1] == mountpoint
        shown = subprocess.run(command[1:], capture_output=True, text=True, check=True)
        (archive,) = shown.stdout.split()
        assert archive == practice.status()["targets"]["local"]["last_success"]["archive"]
        assert browse.stdin is not None
        browse.stdin.close()
        assert browse.wait(timeout=60) == 0
    finally:
        if browse.poll() is None:
            browse.kill()


def _browse(practice: Practice, *args: str, stdin: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """``coffre browse`` run as a script would: pipes, no terminal. ``stdin=DEVNULL``: as a
    script's background job runs it (input from /dev/null)."""
    return subprocess.Popen(
        [binary("coffre"), "browse", *args],
        env=practice.env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _mounted(path: Path, *, pid: int | str = "self") -> bool:
    """Whether ``path`` is a mount point in the mount namespace of process ``pid``."""
    target = str(path).replace(" ", "\\040")
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8") as mounts:
        return any(line.split()[4] == target for line in mounts)


def test_a_daemon_stopping_during_a_browse_leaves_no_mount_behind(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    fill_share(practice.share, files=5)
    daemon = Daemon(practice).ready()
    browse: subprocess.Popen[str] | None = None
    try:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        browse = _browse(practice)
        assert browse.stdout is not None
        mountpoint = Path(browse.stdout.readline().strip())
        assert _mounted(mountpoint)
        assert daemon.stop() == 0
        assert not _mounted(mountpoint)
        assert browse.wait(timeout=60) == 0
    finally:
        if browse is not None and browse.poll() is None:
            browse.kill()
        if daemon.process.poll() is None:
            daemon.stop()
    last = audit_lines(practice)[-1]
    assert (last["op"], last["outcome"]) == ("browse", "failed: cancelled")
