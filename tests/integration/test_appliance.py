"""coffre as it ships: the ``.deb`` installed in a box booted by systemd 252 as PID 1.

The box (:mod:`tests.integration.appliance`) is this machine's root under an
overlay, in namespaces of its own; one box serves the whole module. The
package goes in with ``dpkg -i``; the daemon runs under the shipped unit, its
sandbox exactly as shipped. What the tests change, and why:

- /etc/coffre/coffre.toml (the conffile, as a technician edits it): LEDs in a
  directory shaped like /sys/class/leds under /srv/coffre (the real LEDs are
  the host's, and /srv/coffre is writable for the unit as shipped), later an
  offsite target. Checkpoints keep their default interval (30 min): the only
  checkpoint of the stop test is the one borg writes when it is interrupted;
- a drop-in lowering WatchdogSec= (60 s -> 10 s) and RestartSec= (30 s -> 5 s):
  the same supervision, in test time (5 s leaves the "no daemon" lights
  visible between a crash and the restart). Nothing else of the unit is touched.
- /usr/sbin/policy-rc.d is removed from the box: this machine's image (built
  in a container) has one that forbids starting services; a box has none.

Needs root, the host's udevd (started when none runs), loop devices and sshd.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.appliance import Appliance, booted, build_deb
from tests.integration.harness import scan_bytes, wait_for
from tests.integration.observing import LED_NAMES, SAFE_TO_REMOVE, led_state, parse, value
from tests.integration.sshd import Host
from tests.integration.terminal import on_a_terminal
from tests.integration.usb import LoopDisk, ensure_udevd, settle
from tests.parts import binary, needs_root

REPO = Path(__file__).resolve().parents[2]
UNIT = "coffre.service"
#: What the LEDs show while no daemon runs (``coffre leds stopped``, ExecStopPost=).
STOPPED = {"green": "off", "amber": "off", "red": "blink 1000/1000"}
CONFIG = "/etc/coffre/coffre.toml"
SHARE = Path("/srv/coffre/partage")
LEDS = Path("/srv/coffre/leds")
#: The drop-in of the tests: shorter waits, nothing else (see the module's doc).
DROP_IN = """\
# Tests only: the shipped unit's supervision, in test time.
[Service]
WatchdogSec=10s
RestartSec=5s
"""


def _configure(box: Appliance, extra: str = "") -> None:
    """The packaged configuration, with the test's LEDs, plus ``extra``."""
    text = box.path(CONFIG).read_text(encoding="utf-8")
    text = text.replace('#sysfs_root = "/sys/class/leds"', f'sysfs_root = "{LEDS}"')
    assert f'sysfs_root = "{LEDS}"' in text
    # The share is quiet after 2 s without a change (30 s on a box): test time.
    text = text.replace("#quiet_seconds = 30", "quiet_seconds = 2")
    assert "\nquiet_seconds = 2" in text
    box.path(CONFIG).write_text(text + extra, encoding="utf-8")


def _fake_leds(box: Appliance) -> None:
    for name in LED_NAMES.values():
        led = box.path(LEDS / name)
        led.mkdir(parents=True, exist_ok=True)
        (led / "brightness").write_text("0\n")
        (led / "max_brightness").write_text("255\n")
        (led / "trigger").write_text("[none] timer\n")


def lights(box: Appliance) -> dict[str, str]:
    return {color: led_state(box.path(LEDS / name)) for color, name in LED_NAMES.items()}


def _active(box: Appliance) -> bool:
    shown = box.show(UNIT, "ActiveState", "SubState")
    if shown["ActiveState"] == "failed":
        raise AssertionError(f"{UNIT} failed:\n{box.journal()}")
    return shown["ActiveState"] == "active" and shown["SubState"] == "running"


def wait_active(box: Appliance, timeout: float = 120) -> None:
    wait_for(lambda: _active(box), timeout=timeout, what=f"{UNIT} active")


def status(box: Appliance) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(box.coffre("status", "--json").stdout)
    return loaded


@pytest.fixture(scope="module")
def box(built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    """A booted box with the package installed, configured for the tests, running."""
    needs_root("boots systemd in namespaces of its own")
    ensure_udevd()
    base = tmp_path_factory.mktemp("appliance")
    with booted(base) as appliance:
        # This machine's image forbids maintainer scripts to start services; a box does not.
        appliance.path("/usr/sbin/policy-rc.d").unlink(missing_ok=True)
        shutil.copyfile(built_deb, appliance.path("/var/tmp") / built_deb.name)
        installed = appliance.run("dpkg", "-i", f"/var/tmp/{built_deb.name}", timeout=600)
        assert "/etc/coffre/passphrase" in installed.stdout + installed.stderr
        # postinst started it, with the packaged configuration.
        wait_active(appliance)
        _fake_leds(appliance)
        _configure(appliance)
        drop_in = appliance.path("/etc/systemd/system/coffre.service.d/tests.conf")
        drop_in.parent.mkdir(parents=True)
        drop_in.write_text(DROP_IN, encoding="ascii")
        appliance.run("systemctl", "daemon-reload")
        appliance.run("systemctl", "restart", UNIT)
        wait_active(appliance)
        yield appliance


# --- start and supervision ---------------------------------------------------------


def test_ready_and_the_watchdog_is_pinged(box: Appliance) -> None:
    """Type=notify: active only after READY=1; the watchdog pinged by the daemon only."""
    shown = box.show(
        UNIT,
        "Type",
        "NotifyAccess",
        "WatchdogUSec",
        "MainPID",
        "ExecMainStartTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
        "WatchdogTimestampMonotonic",
        "FragmentPath",
        "DropInPaths",
    )
    assert shown["Type"] == "notify" and shown["NotifyAccess"] == "main"
    assert shown["FragmentPath"] == "/lib/systemd/system/coffre.service"
    # The unit as shipped, byte for byte; the tests' drop-in only shortens waits.
    shipped = (REPO / "systemd" / UNIT).read_bytes()
    assert box.path("/lib/systemd/system/coffre.service").read_bytes() == shipped
    assert shown["DropInPaths"] == "/etc/systemd/system/coffre.service.d/tests.conf"
    assert shown["WatchdogUSec"] == "10s"
    # Active once READY=1 came, which the daemon sends after its start.
    assert int(shown["ActiveEnterTimestampMonotonic"]) > int(
        shown["ExecMainStartTimestampMonotonic"]
    )
    first = int(shown["WatchdogTimestampMonotonic"])
    assert first > 0
    # Pinged again, every WatchdogSec/2, by the same process.
    wait_for(
        lambda: (
            int(box.show(UNIT, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > first
        ),
        timeout=30,
        what="a second watchdog ping",
    )
    assert box.show(UNIT, "MainPID")["MainPID"] == shown["MainPID"]
    assert "coffre daemon" in box.run("ps", "-o", "args=", "-p", shown["MainPID"]).stdout
    assert re.search(r"ready", box.journal(), re.IGNORECASE), box.journal()


def main_pid(box: Appliance) -> int:
    pid = int(box.show(UNIT, "MainPID")["MainPID"])
    assert pid > 0, box.show(UNIT, "ActiveState", "SubState", "Result")
    return pid


def in_daemon_namespace(box: Appliance, script: str) -> str:
    """``script`` run by sh in the daemon's mount namespace and root (as it sees files)."""
    pid = str(main_pid(box))
    return box.run(
        "nsenter", f"--target={pid}", "--mount", "--root", "--wd", "sh", "-c", script
    ).stdout


def test_run_is_read_only_for_the_daemon_but_run_coffre(box: Appliance) -> None:
    """ProtectSystem=strict and ReadOnlyPaths=/run: nothing of /run is writable but
    the runtime directory (systemd 252 alone leaves /run writable here)."""
    probe = (
        "for d in /run /run/systemd /run/lock /run/coffre /etc /usr /var/lib/coffre /srv/coffre; do"
        ' if touch "$d/.probe" 2>/dev/null; then rm "$d/.probe"; echo "$d rw";'
        ' else echo "$d ro"; fi;'
        " done"
    )
    seen = dict(line.split() for line in in_daemon_namespace(box, probe).splitlines())
    assert seen == {
        "/run": "ro",
        "/run/systemd": "ro",
        "/run/lock": "ro",
        "/run/coffre": "rw",
        "/etc": "ro",
        "/usr": "ro",
        "/var/lib/coffre": "rw",
        "/srv/coffre": "rw",
    }
    # The same probe outside the service: /run is writable there, the probe is fair.
    assert box.run("touch", "/run/.probe").returncode == 0
    # /dev/shm, shared by every other process of the box, is the service's own.
    box.run("touch", "/dev/shm/coffre-probe")
    try:
        assert in_daemon_namespace(box, "ls -A /dev/shm") == ""
    finally:
        box.run("rm", "-f", "/dev/shm/coffre-probe")


# --- backups ---------------------------------------------------------------------------


def _write_share(box: Appliance) -> dict[str, bytes]:
    files = {
        "Patients/DUPONT Jean/ordonnance 2026.pdf": b"%PDF-1.4 ordonnance\n" * 50,
        "Patients/MARTIN Lea/compte-rendu.odt": "séance de kiné\n".encode() * 80,
        "agenda.db": bytes(range(256)) * 40,
    }
    for name, data in files.items():
        path = box.path(SHARE / name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_target_init_and_a_backup(box: Appliance) -> None:
    _write_share(box)
    box.coffre("target", "init", "local")
    assert box.path("/srv/coffre/depots/local/config").is_file()
    backup = box.coffre("backup", "--wait")
    assert "local: ok, archive " in backup.stderr, backup.stderr
    last = status(box)["targets"]["local"]["last_success"]
    assert last["archive"] in backup.stderr
    # Where the unit says: state, borg's keys and security dirs, caches.
    assert box.path("/var/lib/coffre/state.db").is_file()
    assert list(box.path("/var/lib/coffre").glob("borg*"))
    assert list(box.path("/var/cache/coffre").iterdir())


def _listeners(box: Appliance, port: int) -> list[str]:
    """Socket inodes listening on 127.0.0.1:``port`` (the box shares the host's network)."""
    return box.run(
        "awk", f'$2 == "0100007F:{port:04X}" && $4 == "0A" {{print $10}}', "/proc/net/tcp"
    ).stdout.split()


def _served_by_the_daemon(box: Appliance, port: int) -> bool:
    fds = box.run("ls", "-l", f"/proc/{main_pid(box)}/fd").stdout
    return any(f"socket:[{inode}]" in fds for inode in _listeners(box, port))


def test_metrics_are_scraped_on_127_0_0_1_9851(box: Appliance) -> None:
    if not _served_by_the_daemon(box, 9851) and "cannot listen on 127.0.0.1:9851" in box.journal():
        # A daemon of another test on this machine held the port when the box's
        # started (the daemon goes on without metrics, and says so): once the port
        # is free, a restart must take it. Never the case in CI, where tests run
        # one after the other.
        wait_for(lambda: not _listeners(box, 9851), timeout=300, what="127.0.0.1:9851 free")
        box.run("systemctl", "restart", UNIT)
        wait_active(box)
    assert _served_by_the_daemon(box, 9851), box.journal()
    try:
        with urllib.request.urlopen("http://127.0.0.1:9851/metrics", timeout=10) as response:
            assert response.status == 200
            series = parse(response.read().decode("utf-8"))
    except OSError as exc:
        raise AssertionError(f"no metrics: {exc}\n{box.journal()}") from exc
    assert value(series, "coffre_up") == 1
    assert value(series, "coffre_last_attempt_success", target="local") == 1
    assert value(series, "coffre_last_success_timestamp_seconds", target="local") > 0


def test_a_restore_lands_in_the_share_and_a_tmp_destination_is_refused(box: Appliance) -> None:
    wanted = "Patients/DUPONT Jean/ordonnance 2026.pdf"
    original = box.path(SHARE / wanted).read_bytes()
    restored = box.coffre("restore", f"{SHARE}/{wanted}")
    assert "restored 1 file(s)" in restored.stdout + restored.stderr, restored
    copies = list(box.path(SHARE / "_restaurations").glob(f"*/{wanted}"))
    assert [c.read_bytes() for c in copies] == [original]

    # /tmp and /var/tmp are the unit's own (PrivateTmp=): nobody would see the file.
    for place in ("/tmp/ici", "/var/tmp/ici"):
        refused = box.coffre("restore", f"{SHARE}/{wanted}", "--to", place, check=False)
        said = refused.stdout + refused.stderr
        assert refused.returncode == 2, said
        assert "PrivateTmp" in said and "restore into the share" in said, said
        assert not box.path(place).exists()
    private = in_daemon_namespace(box, "ls -A /tmp /var/tmp")
    assert "ici" not in private, private


def test_browse_opens_a_shell_that_reads_the_files(box: Appliance) -> None:
    """On a terminal, as over SSH: the shell is in the daemon's mount namespace, in the
    mount, and reads the archived files."""
    wanted = "Patients/MARTIN Lea/compte-rendu.odt"
    expected = hashlib.sha256(box.path(SHARE / wanted).read_bytes()).hexdigest()
    shell = {"SHELL": "/bin/sh", "PS1": "$ ", "TERM": "dumb"}
    with on_a_terminal(box.command("coffre", "browse", env=shell)) as (browse, terminal):
        terminal.read_until(b"type `exit` to leave")
        inside = f'./*/"{str(SHARE).lstrip("/")}/{wanted}"'
        terminal.write(f"pwd; sha256sum {inside}; echo DONE-$((20+22))\n")
        said = terminal.read_until(b"DONE-42")
        assert b"/run/coffre/" in said, said
        assert expected.encode() in said, said
        terminal.write("exit\n")
        assert browse.wait(timeout=60) == 0
    wait_for(
        lambda: "fuse" not in in_daemon_namespace(box, "cat /proc/self/mounts"),
        timeout=60,
        what="the browse mount gone",
    )


# --- a USB disk, an offsite host -----------------------------------------------------------


def _disks(box: Appliance) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in json.loads(box.coffre("disk", "list", "--json").stdout)}


def test_a_usb_disk_is_enrolled_backed_up_powered_off_and_safe_to_remove(
    box: Appliance, tmp_path: Path
) -> None:
    """The host plugs a loop device; its udev events reach the sandboxed daemon."""
    disk = LoopDisk(tmp_path / "disque-a.img", size_mb=256, label="COFFRE-A")
    try:
        device = disk.plug()
        settle()
        enrolled = box.coffre("disk", "enroll", device, "--name", "disque-a")
        assert "disk disque-a enrolled" in enrolled.stdout, enrolled

        def safe() -> bool:
            row = _disks(box)["disque-a"]
            return bool(row["safe_to_remove"]) and not row["busy"] and row["last_backup"]

        wait_for(safe, timeout=300, what="disque-a backed up and safe to remove")
        assert not disk.attached(), "powered off (the loop device detached) before 'safe'"
        assert lights(box) == SAFE_TO_REMOVE
        # Plugged in again: the daemon hears it (udev), checks it and powers it off again.
        seen = _disks(box)["disque-a"]["last_seen"]
        disk.plug()
        wait_for(
            lambda: _disks(box)["disque-a"]["last_seen"] != seen and safe(),
            timeout=300,
            what="disque-a seen again and safe to remove",
        )
        assert not disk.attached()
        assert "/run/coffre/mnt" not in in_daemon_namespace(box, "cat /proc/self/mounts")
    finally:
        disk.unplug()


@pytest.fixture(scope="module")
def hds1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    host = Host(tmp_path_factory.mktemp("hds"), "hds1").start()
    try:
        yield host
    finally:
        host.stop()


def test_an_offsite_upload_to_a_loopback_sshd(box: Appliance, hds1: Host, tmp_path: Path) -> None:
    _configure(
        box,
        f'\n[[target]]\nname = "hds1"\nkind = "offsite"\nurl = "{hds1.url}"\n'
        "retry_delay = 1\nconnect_timeout = 5\n",
    )
    box.run("systemctl", "restart", UNIT)
    wait_active(box)
    first = json.loads(box.coffre("offsite", "enroll", "hds1", "--json").stdout)
    assert first["fingerprint"] == hds1.fingerprint()
    hds1.authorize(str(first["authorized_keys"]))
    second = box.coffre("offsite", "enroll", "hds1", "--accept-host-key", first["fingerprint"])
    assert "created at ssh://" in second.stdout, second
    # The pin is where the unit may write it.
    assert list(box.path("/var/lib/coffre/ssh").glob("*hds1*"))
    backup = box.coffre("backup", "--target", "hds1", "--wait")
    assert "hds1: ok, archive " in backup.stderr, backup.stderr
    archive = status(box)["targets"]["hds1"]["last_success"]["archive"]
    # The host's operator lists it (with the box's passphrase, as after a fire).
    env = {
        **hds1.admin_env(tmp_path),
        "BORG_PASSPHRASE": box.path("/etc/coffre/passphrase").read_text().strip(),
    }
    listed = subprocess.run(
        [binary("borg"), "list", "--json", hds1.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert [a["name"] for a in json.loads(listed.stdout)["archives"]] == [archive]


# --- stopping, crashing, hanging ----------------------------------------------------------


def _borg_list(box: Appliance) -> list[str]:
    """The local repository's archives, checkpoints too (borg as support runs it)."""
    listed = box.run(
        "/opt/coffre/bin/borg",
        "list",
        "--json",
        "--consider-checkpoints",
        "/srv/coffre/depots/local",
        env={
            "BORG_PASSCOMMAND": "cat /etc/coffre/passphrase",
            "BORG_BASE_DIR": "/var/tmp/support-borg",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        },
    ).stdout
    return [a["name"] for a in json.loads(listed)["archives"]]


def _repository_bytes(box: Appliance) -> int:
    data = box.path("/srv/coffre/depots/local/data")
    return sum(f.stat().st_size for f in data.rglob("*") if f.is_file())


def _scans(box: Appliance, folder: str, files: int, megabytes: int) -> int:
    """Incompressible files (scans) in the share: a backup that lasts; their total size."""
    directory = box.path(SHARE / folder)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (directory / f"scan-{i:03d}.dcm").write_bytes(scan_bytes(megabytes << 20))
    return files * megabytes << 20


def test_systemctl_stop_during_a_backup_checkpoints_and_the_next_backup_resumes(
    box: Appliance,
) -> None:
    size = _scans(box, "imagerie", files=40, megabytes=10)
    assert not [n for n in _borg_list(box) if ".checkpoint" in n]
    before = _repository_bytes(box)
    box.coffre("backup", "--target", "local")  # queued, not waited for
    # Stop once a good part of the scans went into the repository.
    wait_for(
        lambda: _repository_bytes(box) - before > size // 4,
        timeout=300,
        what="a quarter of the scans in the repository",
    )
    assert status(box)["running"]["kind"] == "backup"
    box.run("systemctl", "stop", UNIT, timeout=240)
    shown = box.show(UNIT, "ActiveState", "Result")
    assert shown == {"ActiveState": "inactive", "Result": "success"}, shown
    assert lights(box) == STOPPED  # ExecStopPost=, after a stop too
    # borg was interrupted (SIGINT, from the daemon) and wrote a checkpoint; the
    # interval's (30 min) cannot have come yet.
    checkpoints = [n for n in _borg_list(box) if ".checkpoint" in n]
    assert len(checkpoints) == 1, _borg_list(box)
    stored = _repository_bytes(box) - before

    box.run("systemctl", "start", UNIT)
    wait_active(box)
    box.coffre("backup", "--target", "local", "--wait")
    last = status(box)["targets"]["local"]["last_success"]
    # Resumed: what the checkpoint holds was not stored again.
    assert last["deduplicated_size"] < size - stored * 0.9, (last, size, stored)


def test_sigstop_of_the_daemon_makes_the_watchdog_restart_it(box: Appliance) -> None:
    wait_active(box)
    pid = main_pid(box)
    restarts = int(box.show(UNIT, "NRestarts")["NRestarts"])
    box.run("kill", "-STOP", str(pid))
    # WatchdogSec=10s (drop-in): systemd aborts it, then restarts it RestartSec later.
    wait_for(
        lambda: int(box.show(UNIT, "NRestarts")["NRestarts"]) > restarts,
        timeout=60,
        what="a restart by the watchdog",
    )
    wait_active(box)
    assert main_pid(box) != pid
    assert "Watchdog timeout" in box.journal(), box.journal()


def test_sigkill_restarts_the_daemon_and_the_lights_say_no_daemon_meanwhile(
    box: Appliance,
) -> None:
    wait_active(box)
    wait_for(lambda: lights(box) != STOPPED, timeout=60, what="the daemon's own lights")
    pid = main_pid(box)
    restarts = int(box.show(UNIT, "NRestarts")["NRestarts"])
    box.run("kill", "-KILL", str(pid))
    # ExecStopPost= shows "no daemon" (red, blinking slowly) until the restart...
    wait_for(lambda: lights(box) == STOPPED, timeout=30, what="the 'no daemon' lights")
    assert int(box.show(UNIT, "NRestarts")["NRestarts"]) == restarts
    # ...which comes RestartSec later; then the daemon shows the real state again.
    wait_for(
        lambda: int(box.show(UNIT, "NRestarts")["NRestarts"]) > restarts,
        timeout=60,
        what="the restart",
    )
    wait_active(box)
    assert main_pid(box) != pid
    wait_for(lambda: lights(box) != STOPPED, timeout=60, what="the daemon's own lights again")


# --- upgrade and purge ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def newer_deb(built_deb: Path) -> Path:
    return build_deb(REPO, revision=2)


def test_installing_a_newer_build_during_a_backup_keeps_everything(
    box: Appliance, newer_deb: Path
) -> None:
    config = box.path(CONFIG).read_bytes()
    passphrase = box.path("/etc/coffre/passphrase").read_bytes()
    archives = [n for n in _borg_list(box) if not n.endswith(".checkpoint")]
    last_success = status(box)["targets"]["local"]["last_success"]["archive"]
    size = _scans(box, "imagerie-2", files=30, megabytes=10)
    before = _repository_bytes(box)
    box.coffre("backup", "--target", "local")
    wait_for(
        lambda: _repository_bytes(box) - before > size // 10,
        timeout=300,
        what="the backup under way",
    )
    pid = main_pid(box)
    shutil.copyfile(newer_deb, box.path("/var/tmp") / newer_deb.name)
    box.run("dpkg", "-i", f"/var/tmp/{newer_deb.name}", timeout=600)
    version = box.run("dpkg-query", "-W", "-f=${Version}", "coffre").stdout
    assert version.endswith("-2"), version
    wait_active(box)
    assert main_pid(box) != pid  # stopped by prerm, started again by postinst
    assert box.show(UNIT, "UnitFileState")["UnitFileState"] == "enabled"
    assert box.path(CONFIG).read_bytes() == config
    assert box.path("/etc/coffre/passphrase").read_bytes() == passphrase
    assert status(box)["targets"]["local"]["last_success"]["archive"] == last_success
    assert set(archives) <= set(_borg_list(box))
    # And it goes on: the interrupted backup is made by the next one.
    box.coffre("backup", "--target", "local", "--wait")
    assert status(box)["targets"]["local"]["last_success"]["archive"] != last_success


def test_a_share_on_btrfs_is_backed_up_from_a_snapshot_under_the_shipped_unit(
    box: Appliance,
) -> None:
    """The unit's sandbox (ProtectSystem=strict, ReadWritePaths=/srv/coffre, its
    capabilities and system calls) lets the daemon snapshot the share, read it, and
    remove the view; Samba's smbstatus runs inside it too."""
    image, volume = "/var/tmp/partage-btrfs.img", Path("/srv/coffre/volume")
    with box.path(image).open("wb") as file:
        file.truncate(512 << 20)
    subprocess.run([binary("mkfs.btrfs"), "-q", str(box.path(image))], check=True)
    box.path(volume).mkdir(mode=0o755)
    box.run("mount", "-o", "loop", image, str(volume))
    shipped = box.path(CONFIG).read_text(encoding="utf-8")
    share = volume / "partage"
    since = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    try:
        box.path(CONFIG).write_text(shipped.replace(f'"{SHARE}"', f'"{share}"'), encoding="utf-8")
        said = box.coffre("share", "setup")
        assert "subvolume" in said.stdout + said.stderr, said
        # What smbd makes when it starts (it is masked here): smbstatus's messaging folder.
        box.run("mkdir", "-p", "/run/samba")
        box.run("systemctl", "restart", UNIT)
        wait_active(box)
        box.path(share / "agenda.db").write_bytes(b"rendez-vous\n" * 1000)
        backup = box.coffre("backup", "--wait")
        assert "local: ok, archive " in backup.stderr, backup.stderr
        read = status(box)["share"]
        assert read["snapshots"] and read["reads"]["local"]["method"] == "snapshot", read
        assert len(read["versions"]) == 1
        assert list(box.path(volume / ".coffre-versions/partage").glob("@GMT-*"))
        views = box.path(volume / ".coffre-versions/.vues")
        shown = [p for p in views.rglob("partage") if any(p.iterdir())]
        assert not shown, "the view went with the backup"
        journal = box.journal(since=since)
        assert "backup reads the live share" not in journal, journal
        # smbstatus ran inside the sandbox and answered (no smbd ever ran: nobody writes).
        assert "open files unknown" not in journal, journal
        assert read["reads"]["local"]["writers"] == 0
    finally:
        box.path(CONFIG).write_text(shipped, encoding="utf-8")
        box.run("systemctl", "restart", UNIT)
        wait_active(box)
        box.run("umount", str(volume), check=False)


def test_purge_keeps_what_the_readme_says(box: Appliance) -> None:
    shutil.rmtree(box.path(LEDS))  # the test's fake LEDs are no part of the box
    passphrase = box.path("/etc/coffre/passphrase").read_bytes()
    purged = box.run("dpkg", "--purge", "coffre", timeout=600)
    assert "purge keeps /etc/coffre/passphrase" in purged.stderr, purged
    assert box.show(UNIT, "ActiveState")["ActiveState"] in ("inactive", "")
    assert box.path("/etc/coffre/passphrase").read_bytes() == passphrase
    for kept in ("/var/lib/coffre/state.db", "/srv/coffre/depots/local/config"):
        assert box.path(kept).is_file(), kept
    assert box.path(SHARE / "agenda.db").is_file()
    assert box.run("getent", "group", "coffre-partage").returncode == 0
    for gone in (
        CONFIG,
        "/var/cache/coffre",
        "/run/coffre",
        "/opt/coffre",
        "/usr/bin/coffre",
        "/lib/systemd/system/coffre.service",
        "/etc/systemd/system/multi-user.target.wants/coffre.service",
    ):
        assert not os.path.lexists(box.path(gone)), gone
