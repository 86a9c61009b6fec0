"""coffre.guard.ntp: the kernel's clock state read as "synchronised" or not."""

from __future__ import annotations

import pytest

from coffre.guard.ntp import STA_UNSYNC, TIME_ERROR, from_timex

# <sys/timex.h> and <bits/timex.h>, glibc 2.36 (Debian 12).
TIME_OK, TIME_INS, TIME_DEL, TIME_OOP, TIME_WAIT = 0, 1, 2, 3, 4
STA_PLL, STA_PPSSIGNAL, STA_CLOCKERR, STA_NANO = 0x0001, 0x0100, 0x1000, 0x2000


def test_the_constants_are_the_kernels() -> None:
    assert (TIME_ERROR, STA_UNSYNC) == (5, 0x0040)


def test_a_disciplined_clock_is_synchronised() -> None:
    # What chrony or timesyncd leave: the PLL on, nanosecond resolution.
    assert from_timex(TIME_OK, STA_PLL | STA_NANO) is True
    assert from_timex(TIME_OK, 0) is True


@pytest.mark.parametrize("state", [TIME_INS, TIME_DEL, TIME_OOP, TIME_WAIT])
def test_a_leap_second_in_progress_is_still_synchronised(state: int) -> None:
    assert from_timex(state, STA_PLL) is True


def test_the_unsync_bit_means_not_synchronised() -> None:
    # The state a clock set by hand is in (ntp_clear sets STA_UNSYNC), or the boot's.
    assert from_timex(TIME_OK, STA_UNSYNC) is False
    assert from_timex(TIME_OK, STA_UNSYNC | STA_PLL | STA_NANO) is False


def test_time_error_means_not_synchronised_even_without_the_bit() -> None:
    # The kernel returns TIME_ERROR for a clock error or a PPS fault too.
    assert from_timex(TIME_ERROR, STA_CLOCKERR) is False
    assert from_timex(TIME_ERROR, STA_PPSSIGNAL) is False
    assert from_timex(TIME_ERROR, STA_UNSYNC) is False


def test_a_failed_call_is_refused() -> None:
    with pytest.raises(ValueError, match="failed"):
        from_timex(-1, 0)
