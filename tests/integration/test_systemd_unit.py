"""systemd/coffre.service: ``systemd-analyze verify`` clean, exposure <= 2.9, right behaviour.

``verify`` checks that ExecStart's binary exists; the package installs it as
/usr/bin/coffre -> /opt/coffre/bin/coffre, which is not on a test machine. So
``verify`` runs with ``--root`` on a small tree: a copy of this machine's
systemd units (for sysinit.target, network-online.target, modprobe@.service,
...), a stub executable at the packaged path, and a byte-for-byte copy of the
shipped unit where the package puts it. Nothing in the unit is rewritten.
``--man=no``: the man page named by Documentation= comes with the package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from coffre.core.config_types import BorgConfig, PathsConfig
from tests.parts import binary

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "coffre.service"
NAME = UNIT.name
HOST_UNITS = Path("/usr/lib/systemd/system")
#: Where the Debian package puts the executable and the command systemd runs.
PACKAGED_BINARY = "/opt/coffre/bin/coffre"
EXEC_START = "/usr/bin/coffre daemon --log-target journal"
#: 3.0 until /run was made read-only, PrivateIPC= and ~@resources added; 2.9 since.
MAX_EXPOSURE = 2.9
#: A fixed environment: no SYSTEMD_LOG_LEVEL or colours from the caller's.
ANALYZE_ENV = {"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""}

Unit = dict[str, dict[str, list[str]]]


# --- reading the unit ---------------------------------------------------------


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every value assigned, in order (an empty one resets the list)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    logical = re.sub(r"\\\n", " ", text)
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line!r}"
        values = section.setdefault(key.strip(), [])
        value = value.strip()
        if value:
            values.append(value)
        else:
            values.clear()
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}= should be set once, found {values}"
    return values[0]


def words(unit: Unit, section: str, key: str) -> set[str]:
    """All whitespace-separated items of a list setting, over all its lines."""
    return {word for value in unit.get(section, {}).get(key, []) for word in value.split()}


_SPAN_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def seconds(span: str) -> float:
    """A systemd time span ("90", "90s", "1min 30s", "2min") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts and "".join(n + u for n, u in parts) == span.replace(" ", ""), span
    return sum(float(number) * _SPAN_UNITS[suffix or "s"] for number, suffix in parts)


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


# --- systemd-analyze -----------------------------------------------------------


def make_root(root: Path, *, with_binary: bool = True) -> Path:
    """A file-system tree for ``systemd-analyze --root`` holding the shipped unit."""
    units = root / "usr" / "lib" / "systemd" / "system"
    shutil.copytree(HOST_UNITS, units, symlinks=True)
    (root / "lib").symlink_to("usr/lib")  # Debian's merged /usr
    shutil.copyfile(UNIT, units / NAME)
    assert (units / NAME).read_bytes() == UNIT.read_bytes()
    if with_binary:
        stub = root / PACKAGED_BINARY.lstrip("/")
        stub.parent.mkdir(parents=True)
        stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        stub.chmod(0o755)
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "coffre").symlink_to(PACKAGED_BINARY)
    return root


def verify(analyze: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            analyze,
            "verify",
            "--man=no",
            "--generators=no",
            f"--root={root}",
            NAME,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=ANALYZE_ENV,
    )


def test_verify_is_clean(tmp_path: Path) -> None:
    analyze = binary("systemd-analyze")
    result = verify(analyze, make_root(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("fault", ["no binary", "unknown key"])
def test_verify_set_up_catches_faults(tmp_path: Path, fault: str) -> None:
    """The --root set-up is not vacuous: it reads the unit and checks ExecStart."""
    analyze = binary("systemd-analyze")
    root = make_root(tmp_path, with_binary=fault != "no binary")
    if fault == "unknown key":
        copy = root / "usr" / "lib" / "systemd" / "system" / NAME
        copy.write_text(copy.read_text(encoding="utf-8") + "NoSuchSetting=1\n", encoding="utf-8")
    result = verify(analyze, root)
    expected = "is not executable" if fault == "no binary" else "Unknown key 'NoSuchSetting'"
    assert expected in result.stderr, result.stderr


def test_exposure_is_at_most_2_9() -> None:
    result = subprocess.run(
        [binary("systemd-analyze"), "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ANALYZE_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    found = re.search(rf"Overall exposure level for {re.escape(NAME)}: (\d+\.\d+)", result.stdout)
    assert found, result.stdout
    level = float(found.group(1))
    print(f"{NAME}: exposure {level}")
    assert level <= MAX_EXPOSURE, result.stdout


# --- what the daemon relies on -------------------------------------------------


def test_start_and_supervision(unit: Unit) -> None:
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "ExecStart") == EXEC_START
    # The LEDs say "no daemon" however it ended; never a failure of the unit.
    assert one(unit, "Service", "ExecStopPost") == "-/usr/bin/coffre leds stopped"
    assert "ExecReload" not in unit["Service"]
    assert one(unit, "Service", "Restart") == "on-failure"
    # The loop pings every WatchdogSec/2: leave it room, and not so long that a
    # stuck daemon goes unnoticed for the night.
    assert 20 <= seconds(one(unit, "Service", "WatchdogSec")) <= 300
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_stop_lets_borg_write_its_checkpoint(unit: Unit) -> None:
    # SIGTERM to the daemon alone, which interrupts borg and waits for it.
    assert one(unit, "Service", "KillMode") == "mixed"
    stop = seconds(one(unit, "Service", "TimeoutStopSec"))
    assert stop > 60
    # borg gets borg.stop_timeout; the daemon then unmounts and powers off a disk.
    assert stop >= BorgConfig().stop_timeout + 60


def test_writable_places_are_the_daemons(unit: Unit) -> None:
    paths = PathsConfig()
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert Path("/var/lib") / one(unit, "Service", "StateDirectory") == paths.state
    assert Path("/var/cache") / one(unit, "Service", "CacheDirectory") == paths.cache
    assert Path("/run") / one(unit, "Service", "RuntimeDirectory") == paths.runtime
    assert one(unit, "Service", "StateDirectoryMode") == "0700"
    assert one(unit, "Service", "CacheDirectoryMode") == "0700"
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0755"
    # The share and the local repositories; sysfs device attributes (USB power-off, LEDs);
    # Samba's runtime folder, where smbstatus binds its messaging socket (the quiet wait).
    assert words(unit, "Service", "ReadWritePaths") == {
        "-/srv/coffre",
        "/sys/devices",
        "-/run/samba",
    }
    # /run read-only but the runtime directory (systemd 252 leaves /run writable
    # under ProtectSystem=strict once ProtectKernelTunables= and friends are set).
    assert words(unit, "Service", "ReadOnlyPaths") == {"/run"}
    assert one(unit, "Service", "ProtectHome") == "yes"
    assert one(unit, "Service", "PrivateTmp") == "yes"
    assert one(unit, "Service", "PrivateMounts") == "yes"


def test_devices_network_and_privileges(unit: Unit) -> None:
    assert words(unit, "Service", "RestrictAddressFamilies") == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    assert one(unit, "Service", "DevicePolicy") == "closed"
    allowed = set(unit["Service"]["DeviceAllow"])
    assert allowed == {
        "block-sd rw",
        "block-blkext rw",
        "block-loop rw",
        "/dev/loop-control rw",
        "/dev/fuse rw",
    }
    assert words(unit, "Service", "CapabilityBoundingSet") == {
        "CAP_SYS_ADMIN",
        "CAP_DAC_OVERRIDE",
        "CAP_CHOWN",
        "CAP_FOWNER",
        "CAP_FSETID",
    }
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert "@mount" in words(unit, "Service", "SystemCallFilter")
    assert "~@resources" in words(unit, "Service", "SystemCallFilter")
    assert one(unit, "Service", "PrivateIPC") == "yes"
    assert one(unit, "Service", "TemporaryFileSystem") == "/dev/shm"
