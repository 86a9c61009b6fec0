"""udev/90-coffre.rules, applied by the real udev to loop devices standing for USB disks.

The shipped file is copied unmodified to /run/udev/rules.d/ (udevadm 252 has
no option to read rules from elsewhere), and removed afterwards. Each device
is checked twice: ``udevadm test`` (the rules run in-process, as asked) and the
properties udevd itself recorded for a real ``change`` event, which is what the
daemon's pyudev monitor sees.

Needs root, loop devices, udevd (started with ``systemd-udevd --daemon`` when
none answers; it is left running, as the other tests that use udev expect).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pyudev

from tests.integration.harness import wait_for
from tests.parts import binary, missing, needs_root

RULE = Path(__file__).resolve().parents[2] / "udev" / "90-coffre.rules"
INSTALLED = Path("/run/udev/rules.d") / RULE.name
UDEVD_CANDIDATES = ("/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd")
IMAGE_SIZE = 8 * 1024 * 1024
_PROPERTY = re.compile(r"([A-Z0-9_]+)=(.*)")


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def udevd_answers(udevadm: str) -> bool:
    ping = subprocess.run(
        [udevadm, "control", "--ping", "--timeout=5"], capture_output=True, timeout=30
    )
    return ping.returncode == 0


def ensure_udevd(udevadm: str) -> None:
    """A udevd answering on its control socket; started if none does."""
    if udevd_answers(udevadm):
        return
    udevd = next((p for p in UDEVD_CANDIDATES if Path(p).exists()), None)
    if udevd is None:
        missing("systemd-udevd (Debian's udev package)")
        raise AssertionError("unreachable")
    run(udevd, "--daemon")
    wait_for(lambda: udevd_answers(udevadm), timeout=30, what="udevd to answer")


@pytest.fixture(scope="module")
def udevadm() -> Iterator[str]:
    """udevadm, with udevd running and the shipped rule installed for udevd and udevadm."""
    needs_root("loop devices, udev rules")
    tool = binary("udevadm")
    for name in ("losetup", "mkfs.ext4", "mkswap"):
        binary(name)
    ensure_udevd(tool)
    INSTALLED.parent.mkdir(parents=True, exist_ok=True)
    # Left there by an interrupted run, it is ours; anything else is not overwritten.
    assert not INSTALLED.exists() or INSTALLED.read_bytes() == RULE.read_bytes(), (
        f"{INSTALLED} is already there, different; not overwriting it"
    )
    shutil.copyfile(RULE, INSTALLED)
    try:
        assert INSTALLED.read_bytes() == RULE.read_bytes()
        run(tool, "control", "--reload")
        yield tool
    finally:
        INSTALLED.unlink(missing_ok=True)
        run(tool, "control", "--reload")


def make_image(path: Path, kind: str, label: str = "") -> Path:
    """An image file: "ext4" (with ``label``), "swap" or "none" (zeros, no filesystem)."""
    with path.open("wb") as image:
        image.truncate(IMAGE_SIZE)
    if kind == "ext4":
        run(binary("mkfs.ext4"), "-q", "-F", "-L", label, str(path))
    elif kind == "swap":
        run(binary("mkswap"), str(path))
    else:
        assert kind == "none", kind
    return path


@contextmanager
def attached(udevadm: str, image: Path) -> Iterator[str]:
    """The image on a loop device (its kernel name, e.g. "loop3"), detached afterwards."""
    device = run(binary("losetup"), "--find", "--show", str(image)).stdout.strip()
    name = Path(device).name
    try:
        run(udevadm, "settle", "--timeout=60")
        yield name
    finally:
        run(binary("losetup"), "--detach", device)
        # The detach's own event leaves a /dev/disk/by-diskseq link of the old
        # sequence number; a second event makes udev's view of the device current.
        run(udevadm, "trigger", "--action=change", "--settle", f"/sys/class/block/{name}")


def properties(text: str) -> dict[str, str]:
    return {m[1]: m[2] for line in text.splitlines() if (m := _PROPERTY.fullmatch(line))}


def simulated(udevadm: str, name: str) -> dict[str, str]:
    """The properties ``udevadm test --action=add`` computes for the device."""
    return properties(run(udevadm, "test", "--action=add", f"/sys/class/block/{name}").stdout)


def recorded(udevadm: str, name: str) -> dict[str, str]:
    """The properties udevd recorded after handling a real ``change`` event."""
    sys_path = f"/sys/class/block/{name}"
    run(udevadm, "trigger", "--action=change", "--settle", sys_path)
    return properties(run(udevadm, "info", "--query=property", sys_path).stdout)


def coffre_part(props: dict[str, str]) -> dict[str, str]:
    """What the rule decides: its properties, and whether this event tagged the device.

    CURRENT_TAGS, not TAGS: udev keeps a tag in TAGS once a device had it, so a
    loop device used for a COFFRE disk earlier keeps it there.
    """
    decided = {
        k: v for k, v in props.items() if k in ("COFFRE_CANDIDATE", "UDISKS_IGNORE", "UDISKS_AUTO")
    }
    if ":coffre:" in props.get("CURRENT_TAGS", ""):
        decided["TAG"] = "coffre"
    return decided


CANDIDATE = {"COFFRE_CANDIDATE": "1", "TAG": "coffre"}
KEPT_FROM_AUTOMOUNT = {**CANDIDATE, "UDISKS_IGNORE": "1", "UDISKS_AUTO": "0"}


@pytest.mark.parametrize(
    ("kind", "label", "expected"),
    [
        pytest.param("ext4", "COFFRE-TEST", KEPT_FROM_AUTOMOUNT, id="ext4 labelled COFFRE-*"),
        pytest.param("ext4", "PHOTOS", CANDIDATE, id="ext4 labelled otherwise"),
        pytest.param("swap", "", {}, id="swap: a UUID but no filesystem"),
        pytest.param("none", "", {}, id="no filesystem"),
    ],
)
def test_rule_marks_devices(
    udevadm: str, tmp_path: Path, kind: str, label: str, expected: dict[str, str]
) -> None:
    image = make_image(tmp_path / "disk.img", kind, label)
    with attached(udevadm, image) as name:
        by_udevd = recorded(udevadm, name)
        by_test = simulated(udevadm, name)
    # The rule saw what blkid found (and the set-up is not vacuous).
    for props in (by_udevd, by_test):
        assert ("ID_FS_UUID" in props) == (kind != "none"), props
        if kind == "ext4":
            assert props["ID_FS_LABEL"] == label
    assert coffre_part(by_test) == expected, by_test
    assert coffre_part(by_udevd) == expected, by_udevd


def test_monitor_hears_a_candidate_come_and_go(udevadm: str, tmp_path: Path) -> None:
    """What the daemon relies on: a pyudev monitor filtering on the tag hears the
    device's events, and a "remove" still carries COFFRE_CANDIDATE (sysfs is gone
    by then on a real disk; udev sends the properties it had recorded)."""
    image = make_image(tmp_path / "disk.img", "ext4", "COFFRE-TEST")
    with attached(udevadm, image) as name:
        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="udev")
        monitor.filter_by("block")
        monitor.filter_by_tag("coffre")
        monitor.start()
        sys_path = f"/sys/class/block/{name}"
        heard: list[tuple[str, str | None]] = []
        try:
            for action in ("remove", "add"):
                run(udevadm, "trigger", f"--action={action}", "--settle", sys_path)
                while (event := monitor.poll(timeout=10)) is not None:
                    if event.sys_name == name:
                        heard.append((event.action, event.properties.get("COFFRE_CANDIDATE")))
                        if event.action == action:
                            break
        finally:
            del monitor
    assert ("remove", "1") in heard, heard
    assert ("add", "1") in heard, heard
