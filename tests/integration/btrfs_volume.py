"""A real btrfs filesystem on a loop device, for the tests of snapshots.

``btrfs_volume`` makes an image file of the given size, formats it with the
real ``mkfs.btrfs`` and mounts it (``mount -o loop``); on exit it unmounts it
(lazily if something still holds it), detaches the loop device and removes the
image. Needs root; in CI a missing ``mkfs.btrfs`` fails the test (tests.parts).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.parts import binary, needs_root


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")


@contextlib.contextmanager
def btrfs_volume(size_mib: int = 512, *, under: Path | None = None) -> Iterator[Path]:
    """A freshly made btrfs filesystem of ``size_mib`` MiB, mounted; yields its mount point.

    The mount point (mode 0755, root's) lies in a new folder of ``under``
    (default: the system's temporary folder) that smbd's users can traverse
    (0711). Raises AssertionError when a tool fails.
    """
    needs_root("mounting a loop device")
    mkfs, mount, umount = binary("mkfs.btrfs"), binary("mount"), binary("umount")
    holder = Path(tempfile.mkdtemp(prefix="coffre-btrfs-", dir=under))
    holder.chmod(0o711)
    image, point = holder / "volume.img", holder / "fs"
    point.mkdir(mode=0o755)
    with image.open("wb") as file:
        file.truncate(size_mib * 1024 * 1024)
    _run(mkfs, "--quiet", str(image))
    _run(mount, "-o", "loop", str(image), str(point))
    try:
        point.chmod(0o755)
        yield point
    finally:
        # `mount -o loop` attaches the device with autoclear: unmounting frees it.
        if subprocess.run([umount, str(point)], capture_output=True).returncode != 0:
            subprocess.run([umount, "--lazy", str(point)], capture_output=True)
        image.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            point.rmdir()
            holder.rmdir()
