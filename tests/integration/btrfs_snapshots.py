"""Test-only btrfs shares and Previous Versions, made with the ``btrfs`` CLI.

The layout is coffre's (issue 14): the share P is a subvolume; its Previous
Versions are read-only snapshots of it in ``<parent of P>/.coffre-versions/<name
of P>``, named ``@GMT-YYYY.MM.DD-hh.mm.ss`` in UTC (Samba's vfs_shadow_copy2).
These helpers make that layout for tests; coffre's own code makes it in the box.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

# coffre's own names and places: what Samba must read is what the daemon makes.
from coffre.consistency.gmt_names import name_of as gmt_token
from coffre.consistency.layout import versions_folder
from tests.parts import binary

__all__ = ["gmt_token", "make_subvolume", "take_previous_version", "versions_folder"]


def _btrfs(*args: str) -> None:
    result = subprocess.run([binary("btrfs"), *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"btrfs {' '.join(args)} exited {result.returncode}: {result.stderr}")


def make_subvolume(path: Path) -> None:
    """Make ``path`` (absent; its parent on btrfs) a new btrfs subvolume."""
    _btrfs("subvolume", "create", str(path))


def take_previous_version(share: Path, when: datetime) -> Path:
    """A read-only snapshot of the subvolume ``share``, named for ``when``; its path.

    Makes the versions folder (root's, 0755) when missing.
    """
    folder = versions_folder(share)
    folder.parent.mkdir(mode=0o755, exist_ok=True)
    folder.mkdir(mode=0o755, exist_ok=True)
    snapshot = folder / gmt_token(when)
    _btrfs("subvolume", "snapshot", "-r", str(share), str(snapshot))
    return snapshot
