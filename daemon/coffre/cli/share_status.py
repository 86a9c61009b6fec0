"""The share lines of ``coffre status``: snapshots or why not, Previous Versions, each read.

From status's ``share`` part (``coffre.observe.share_status``). The reason
a snapshot could not be taken may name a configured path (the admin's, not
a share user's): printed escaped all the same.
"""

from __future__ import annotations

from coffre.cli.support import escaped_lines, size, when
from coffre.core.reports import ReadView, ShareView

__all__ = ["print_share", "read_line", "share_lines"]


def print_share(share: ShareView) -> None:
    """Print the share block of ``coffre status``. Raises nothing."""
    print("\nshare")
    for line in share_lines(share):
        print(f"  {line}")


def share_lines(share: ShareView) -> list[str]:
    """The block's lines: the snapshots' state, the versions and room, then each read.

    E.g. "btrfs snapshots: 14 Previous Versions (8 office hours', 6 backups'),
    from 2026-12-04 08:00 to 2026-12-06 10:00; 35.2 GB free of 100.0 GB", or
    "no snapshots: /srv/x is not on a btrfs filesystem: backups wait for a quiet
    share, and the practice has no Previous Versions". Raises nothing.
    """
    lines: list[str] = []
    if share["snapshots"]:
        versions = share["versions"]
        backups = sum(1 for v in versions if v["kind"] == "backup")
        span = f", from {when(versions[0]['at'])} to {when(versions[-1]['at'])}" if versions else ""
        room = ""
        if share["free_bytes"] is not None and share["total_bytes"] is not None:
            room = f"; {size(share['free_bytes'])} free of {size(share['total_bytes'])}"
        lines.append(
            f"btrfs snapshots: {len(versions)} Previous Version(s) ({len(versions) - backups} "
            f"office hours', {backups} backups'){span}{room}"
        )
    else:
        lines.append(
            f"no snapshots: {escaped_lines(share['why_not'])}: backups wait for a quiet share, "
            "and the practice has no Previous Versions"
        )
    lines += [read_line(name, read) for name, read in share["reads"].items()]
    return lines


def read_line(name: str, read: ReadView) -> str:
    """How ``name``'s last backup read the share, e.g. "last backup of local: from a
    snapshot of 2026-12-06 01:30, quiet after 3 s"."""
    how = "from a snapshot" if read["method"] == "snapshot" else "from the live share"
    waited = f"{read['waited']:.0f} s"
    if read["quiet"]:
        quiet = f"quiet after {waited}"
    else:
        writers = read["writers"]
        held = (
            "files open for writing unknown"
            if writers is None
            else (f"{writers} file(s) still open for writing over SMB")
        )
        quiet = f"NOT quiet after {waited} ({held}): a file may be torn in that archive"
    return f"last backup of {name}: {how} of {when(read['at'])}, {quiet}"
