"""The mount points below a folder, read from a mountinfo table (escapes undone)."""

from __future__ import annotations

from pathlib import Path

from coffre.storage.bind_mount import mounts_under

TABLE = (
    b"22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    b"90 22 0:44 /cabinet/.coffre-versions/partage/@GMT-2026.12.06-00.30.00 "
    b"/srv/coffre/.coffre-versions/.vues/local/srv/coffre/partage rw - btrfs /dev/loop0 rw\n"
    b"91 22 0:44 /x /srv/coffre/.coffre-versions/.vues/disque\\040a/srv/coffre/partage "
    b"rw - btrfs /dev/loop0 rw\n"
    b"92 22 0:44 /x /srv/coffre/.coffre-versions/.vues rw - btrfs /dev/loop0 rw\n"
    b"93 22 0:44 /x /srv/coffre/.coffre-versions/.vues2/local rw - btrfs /dev/loop0 rw\n"
)


def test_the_views_shown_are_listed_deepest_first_and_nothing_else(tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    table.write_bytes(TABLE)
    views = Path("/srv/coffre/.coffre-versions/.vues")
    assert mounts_under(views, mountinfo=table) == [
        views / "local/srv/coffre/partage",
        views / "disque a/srv/coffre/partage",
    ]
    assert mounts_under(views / "local", mountinfo=table) == [views / "local/srv/coffre/partage"]
    assert mounts_under(Path("/ailleurs"), mountinfo=table) == []
