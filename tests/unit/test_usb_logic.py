"""Pure USB logic: udev events as disk events, rotation, today's archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from coffre.core.config_types import UsbConfig
from coffre.core.model import Archive
from coffre.core.rotation import rotation
from coffre.storage.state import DiskRecord
from coffre.targets.usb.job import has_archive_of_today
from coffre.targets.usb.udev import DiskAppeared, DiskGone, translate

FS = {
    "DEVNAME": "/dev/sdb1",
    "ID_FS_UUID": "1234-abcd",
    "ID_FS_TYPE": "ext4",
    "ID_FS_USAGE": "filesystem",
    "ID_FS_LABEL": "COFFRE-A",
}
T0 = datetime(2026, 11, 29, 10, tzinfo=UTC)


def test_add_and_change_with_a_filesystem_are_appearances() -> None:
    for action in ("add", "change"):
        event = translate(action, "/devices/x/sdb1", FS, "/sys/devices/usb1/1-1")
        assert event == DiskAppeared(
            "/devices/x/sdb1", "/dev/sdb1", "1234-abcd", "ext4", "COFFRE-A", "/sys/devices/usb1/1-1"
        )


def test_remove_and_a_change_that_lost_its_filesystem_are_departures() -> None:
    assert translate("remove", "/devices/x/sdb1", {}, None) == DiskGone("/devices/x/sdb1")
    assert translate("change", "/devices/loop0", {"DEVNAME": "/dev/loop0"}, None) == DiskGone(
        "/devices/loop0"
    )


def test_devices_without_a_filesystem_are_ignored_on_add() -> None:
    raid = {**FS, "ID_FS_USAGE": "raid"}
    assert translate("add", "/devices/x/sdb1", {"DEVNAME": "/dev/sdb"}, None) is None
    assert translate("add", "/devices/x/sdb1", raid, None) is None
    assert translate("bind", "/devices/x/sdb1", FS, None) is None


def _disk(name: str, *, seen: datetime | None, streak: datetime | None) -> DiskRecord:
    return DiskRecord(
        name,
        f"uuid-{name}",
        "id",
        T0 - timedelta(days=90),
        seen,
        None,
        None,
        False,
        False,
        None,
        streak,
    )


def test_the_disk_plugged_in_last_is_due_for_a_swap_after_a_week_alone() -> None:
    usb = UsbConfig(swap_after_days=7, missing_after_days=30)
    a = _disk("a", seen=T0, streak=T0 - timedelta(days=8))
    b = _disk("b", seen=T0 - timedelta(days=9), streak=T0 - timedelta(days=15))
    assert rotation(a, [a, b], T0, usb).swap_due is True
    assert rotation(b, [a, b], T0, usb).swap_due is False
    fresh = _disk("a", seen=T0, streak=T0 - timedelta(days=6))
    assert rotation(fresh, [fresh, b], T0, usb).swap_due is False


def test_a_disk_not_seen_for_a_month_is_missing_even_if_never_seen() -> None:
    usb = UsbConfig(swap_after_days=7, missing_after_days=30)
    away = _disk("b", seen=T0 - timedelta(days=31), streak=None)
    never = _disk("c", seen=None, streak=None)  # enrolled 90 days ago, never plugged since
    recent = _disk("a", seen=T0 - timedelta(days=2), streak=T0 - timedelta(days=2))
    assert rotation(away, [away, recent], T0, usb).missing is True
    assert rotation(never, [never, recent], T0, usb).missing is True
    assert rotation(recent, [away, recent], T0, usb).missing is False


def test_today_is_the_box_s_local_day() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 23:30 UTC on the 28th is 00:30 on the 29th in Paris.
    late = Archive(datetime(2026, 11, 28, 23, 30, tzinfo=UTC), "cabinet-x")
    now = datetime(2026, 11, 29, 9, tzinfo=UTC)
    assert has_archive_of_today([late], "cabinet", now, paris)
    assert not has_archive_of_today([late], "cabinet", now, ZoneInfo("UTC"))
    assert not has_archive_of_today([late], "autre", now, paris)
    checkpoint = Archive(late.time, "cabinet-x.checkpoint")
    assert not has_archive_of_today([checkpoint], "cabinet", now, paris)
