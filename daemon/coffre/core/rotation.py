"""Pure: how the rotation of USB disks stands (swap due, missing), from what was seen.

The practice's rule: at least two disks, swapped regularly, the spare kept
away from the office. A disk that has been the only one plugged in for more
than ``swap_after_days`` must be swapped; a disk not seen for more than
``missing_after_days`` is reported missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from coffre.core.config_types import UsbConfig
from coffre.core.model import DiskRecord


@dataclass(frozen=True)
class Rotation:
    """Where one disk stands in the rotation."""

    days_since_swap: float | None
    swap_due: bool
    missing: bool
    days_since_seen: float | None


def _days(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else (now - since).total_seconds() / 86400


def rotation(
    disk: DiskRecord, disks: Sequence[DiskRecord], now: datetime, usb: UsbConfig
) -> Rotation:
    """The rotation state of ``disk`` among all enrolled ``disks``.

    Only the disk plugged in last can be "swap due": its streak started when
    it replaced another disk (or when it was first plugged).
    """
    newest = max(
        (d for d in disks if d.last_seen is not None),
        key=lambda d: (d.streak_started or d.last_seen or now, d.name),
        default=None,
    )
    streak = (
        _days(disk.streak_started, now) if newest is not None and newest.name == disk.name else None
    )
    seen = _days(disk.last_seen, now)
    return Rotation(
        days_since_swap=streak,
        swap_due=streak is not None and streak > usb.swap_after_days,
        missing=(seen if seen is not None else _days(disk.enrolled_at, now) or 0.0)
        > usb.missing_after_days,
        days_since_seen=seen,
    )
