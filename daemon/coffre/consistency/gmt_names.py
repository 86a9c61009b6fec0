"""Pure: the names of Previous Versions, as Samba's vfs_shadow_copy2 reads them.

A snapshot is named for the instant it was taken, in UTC, to the second:
``@GMT-2026.12.06-00.30.00`` (the module's default ``shadow:format`` with
``shadow:localtime = no``). Windows shows the time in the workstation's own
zone. Any other name in the folder is not a Previous Version.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["FORMAT", "name_of", "taken_at"]

FORMAT = "@GMT-%Y.%m.%d-%H.%M.%S"
_LENGTH = len("@GMT-2026.12.06-00.30.00")


def name_of(moment: datetime) -> str:
    """The version name of the timezone-aware ``moment`` (its UTC second).

    Raises ValueError for a naive ``moment``: a name in the wrong zone would
    show the practice a version hours away from its true time.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a version's time needs its timezone, not {moment!r}")
    return moment.astimezone(UTC).strftime(FORMAT)


def taken_at(name: str) -> datetime | None:
    """The UTC instant of the version ``name``; None for a name that is not a version's."""
    if len(name) != _LENGTH or not name.startswith("@GMT-"):
        return None
    try:
        return datetime.strptime(name, FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
