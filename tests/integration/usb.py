"""USB disks for tests: ext4 images on loop devices, seen by a real udevd.

A loop device over an image file stands in for a USB disk: attaching it
makes udev announce a block device with a filesystem (a ``change`` event),
detaching it makes it go. A FUSE passthrough (bindfs) under the image lets a
test "pull the cable": killing bindfs makes every I/O of the loop device fail.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from tests.integration.harness import wait_for
from tests.parts import binary, libfaketime


def ensure_udevd() -> None:
    """Start systemd-udevd when none answers (no systemd as PID 1 in CI)."""
    udevadm = binary("udevadm")
    if subprocess.run([udevadm, "control", "--ping"], capture_output=True).returncode == 0:
        return
    udevd = Path("/lib/systemd/systemd-udevd")
    if not udevd.exists():
        binary("systemd-udevd")  # fails in CI, skips elsewhere
    subprocess.run([str(udevd), "--daemon"], check=True)
    wait_for(
        lambda: subprocess.run([udevadm, "control", "--ping"], capture_output=True).returncode == 0,
        what="udevd",
    )


def settle() -> None:
    subprocess.run([binary("udevadm"), "settle", "--timeout=30"], check=False)


def mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        return any(line.split()[4] == target for line in info)


def mounts_of(device: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            fields = line.split()
            if fields[fields.index("-") + 2] == device:
                found.append(fields[4])
    return found


class LoopDisk:
    """An image file carrying an ext4 filesystem, plugged as a loop device."""

    def __init__(
        self, image: Path, *, size_mb: int = 1024, label: str = "", fs_uuid: str | None = None
    ) -> None:
        self.image = image
        self.device: str | None = None
        if not image.exists():
            with image.open("wb") as f:
                f.truncate(size_mb * 1024 * 1024)
            args = [binary("mkfs.ext4"), "-q", "-F"]
            if label:
                args += ["-L", label]
            if fs_uuid:
                args += ["-U", fs_uuid]
            subprocess.run([*args, str(image)], check=True)

    @property
    def fs_uuid(self) -> str:
        """The filesystem UUID on the image, "" when it carries none."""
        out = subprocess.run(
            [binary("blkid"), "-p", "-o", "value", "-s", "UUID", str(self.image)],
            capture_output=True,
            text=True,
            check=False,  # exit code 2: nothing found
        )
        return out.stdout.strip()

    def digest(self) -> str:
        h = hashlib.sha256()
        with self.image.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    def plug(self) -> str:
        """Attach the image as a loop device; its device node."""
        out = subprocess.run(
            [binary("losetup"), "--find", "--show", str(self.image)],
            capture_output=True,
            text=True,
            check=True,
        )
        self.device = out.stdout.strip()
        return self.device

    def attached(self) -> bool:
        """Whether a loop device still backs onto this image."""
        out = subprocess.run(
            [binary("losetup"), "--list", "--noheadings", "--output", "BACK-FILE"],
            capture_output=True,
            text=True,
            check=True,
        )
        return str(self.image) in out.stdout.split()

    def unplug(self) -> None:
        """Detach every loop device over the image (after a test, or to pull it)."""
        out = subprocess.run(
            [binary("losetup"), "--associated", str(self.image), "--noheadings", "-O", "NAME"],
            capture_output=True,
            text=True,
            check=False,
        )
        for device in out.stdout.split():
            for mountpoint in mounts_of(device):
                subprocess.run(["umount", "--lazy", mountpoint], check=False)
            subprocess.run([binary("losetup"), "--detach", device], check=False)
        self.device = None


class PullableDir:
    """A bindfs (FUSE) view of a directory: killing bindfs is pulling the cable."""

    def __init__(self, source: Path, view: Path) -> None:
        self.source, self.view = source, view
        source.mkdir(parents=True, exist_ok=True)
        view.mkdir(parents=True, exist_ok=True)
        self.pid: int | None = None

    def connect(self) -> None:
        subprocess.run(
            [binary("bindfs"), "--no-allow-other", str(self.source), str(self.view)], check=True
        )
        wait_for(lambda: mounted(self.view), what="the bindfs mount")
        self.pid = self._find_pid()

    def _find_pid(self) -> int:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"bindfs") and str(self.view).encode() in cmdline:
                return int(proc.name)
        raise AssertionError("bindfs process not found")

    def pull(self) -> None:
        """Kill bindfs: every I/O through the view fails from now on."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def close(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
        subprocess.run(["umount", "--lazy", str(self.view)], check=False)


def new_uuid() -> str:
    return str(uuid.uuid4())


def faketime_env(days: float) -> dict[str, str]:
    """Environment making a process (and its children: borg) live ``days`` days later.

    libfaketime shifts the wall clock only; monotonic clocks stay true, so the
    daemon's timers behave.
    """
    return {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME": f"{days:+f}d",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }
