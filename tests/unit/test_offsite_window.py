"""coffre.core.upload_window: the upload limit of a local time, and when it changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coffre.core.config_types import UploadWindow
from coffre.core.upload_window import limit_at, next_change, parse_days, parse_minute

PARIS = ZoneInfo("Europe/Paris")
OFFICE = UploadWindow(frozenset(range(5)), 8 * 60, 19 * 60, 2000)  # mon-fri 08:00-19:00
FRIDAY_NIGHT = UploadWindow(frozenset({4}), 22 * 60, 6 * 60, 500)  # fri 22:00 - sat 06:00


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time on day ``day`` of the week of Monday 2026-03-02 (0 = Monday)."""
    return datetime(2026, 3, 2 + day, hour, minute, tzinfo=PARIS)


def test_days_ranges_lists_and_all() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat,sun") == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days(" Tue ") == frozenset({1})
    assert parse_days("all") == frozenset(range(7))
    with pytest.raises(ValueError, match="'lun' is not a day"):
        parse_days("lun")
    with pytest.raises(ValueError, match="is not a day"):
        parse_days("mon,")


def test_minutes_of_the_day() -> None:
    assert parse_minute("00:00") == 0
    assert parse_minute("19:30") == 19 * 60 + 30
    assert parse_minute("24:00") == 24 * 60
    for bad in ("24:01", "7:00", "25:00", "12h"):
        with pytest.raises(ValueError):
            parse_minute(bad)


def test_office_hours_are_limited_and_nights_are_free() -> None:
    assert limit_at([OFFICE], at(0, 8)) == 2000
    assert limit_at([OFFICE], at(4, 18, 59)) == 2000
    assert limit_at([OFFICE], at(4, 19)) is None
    assert limit_at([OFFICE], at(2, 7, 59)) is None
    assert limit_at([OFFICE], at(5, 12)) is None  # Saturday
    assert limit_at([], at(0, 12)) is None


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    assert limit_at([FRIDAY_NIGHT], at(4, 23)) == 500
    assert limit_at([FRIDAY_NIGHT], at(5, 5, 59)) == 500
    assert limit_at([FRIDAY_NIGHT], at(5, 6)) is None
    assert limit_at([FRIDAY_NIGHT], at(4, 5)) is None  # Friday morning: Thursday's night
    assert limit_at([FRIDAY_NIGHT], at(5, 23)) is None


def test_the_lowest_limit_wins_where_windows_overlap() -> None:
    tight = UploadWindow(frozenset({0}), 12 * 60, 14 * 60, 300)
    assert limit_at([OFFICE, tight], at(0, 13)) == 300
    assert limit_at([OFFICE, tight], at(0, 15)) == 2000


def test_the_next_change_is_the_next_window_edge() -> None:
    assert next_change([OFFICE], at(0, 7, 30)) == at(0, 8)
    assert next_change([OFFICE], at(0, 8, 0)) == at(0, 19)
    assert next_change([OFFICE], at(4, 20)) == at(7, 8)  # Friday evening -> next Monday
    always = UploadWindow(frozenset(range(7)), 0, 24 * 60, 100)
    assert next_change([always], at(3, 12)) is None
    assert next_change([], at(3, 12)) is None


@given(
    st.integers(0, 6),
    st.integers(0, 23),
    st.integers(0, 59),
    st.lists(
        st.builds(
            UploadWindow,
            st.frozensets(st.integers(0, 6), min_size=1),
            st.integers(0, 1439),
            st.integers(1, 1440),
            st.integers(1, 5000),
        ),
        max_size=3,
    ),
)
def test_the_limit_holds_until_the_next_change(
    day: int, hour: int, minute: int, windows: list[UploadWindow]
) -> None:
    windows = [w for w in windows if w.start != w.end]
    moment = at(day, hour, minute)
    change = next_change(windows, moment)
    if change is None:
        return
    assert limit_at(windows, change) != limit_at(windows, moment)
    assert limit_at(windows, change - timedelta(minutes=1)) == limit_at(windows, moment)
