"""Whether the kernel says the clock is NTP-synchronised, from ``adjtimex(2)``.

``timedatectl show -p NTPSynchronized`` answers the same question over D-Bus
(systemd-timedated asks the kernel with ``adjtimex`` too); asking the kernel
directly needs no bus, no privilege and no subprocess, and works whatever
keeps the time (systemd-timesyncd, chrony, ntpd).

The kernel marks its clock unsynchronised (``STA_UNSYNC`` in the status)
until a time daemon disciplines it, and marks it again whenever the time is
*set*: ``settimeofday(2)`` and ``clock_settime(2)`` end in
``do_settimeofday64()`` (kernel/time/timekeeping.c), which updates the
timekeeper with ``TK_CLEAR_NTP``, and ``ntp_clear()`` (kernel/time/ntp.c) then
does ``time_status |= STA_UNSYNC``. So a clock set by hand (``date -s``, a
test with a stepped clock) shows as not synchronised until NTP disciplines it
again; ``adjtimex(2)`` documents ``TIME_ERROR`` as returned when, among
others, ``STA_UNSYNC`` is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: ``adjtimex``'s return value when the clock is not synchronised (<sys/timex.h>).
TIME_ERROR = 5
#: The status bit of an unsynchronised clock (<bits/timex.h>).
STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class Timex(ctypes.Structure):
    """glibc's ``struct timex`` (<bits/timex.h>, the layout where ``long`` holds the fields).

    That is every 64-bit Linux (x86-64, arm64: 208 bytes, ``status`` at offset
    40, checked against the C compiler's ``sizeof``/``offsetof`` on x86-64)
    and 32-bit ones without 64-bit time. ctypes inserts the same padding as C
    after ``modes`` and ``status``. The 11 trailing ints are the kernel's
    reserved space: the kernel writes the whole struct, so it must be there.
    """

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


def from_timex(rc: int, status: int) -> bool:
    """Whether ``adjtimex``'s answer means "synchronised".

    ``rc``: the clock state it returned (``TIME_OK`` 0 .. ``TIME_ERROR`` 5);
    ``status``: the struct's ``status`` bits. False when ``rc`` is
    ``TIME_ERROR`` or ``STA_UNSYNC`` is set (either is enough: the kernel
    also returns TIME_ERROR for a PPS fault with STA_UNSYNC clear). Raises
    ValueError for a negative ``rc``: a failed call says nothing.
    """
    if rc < 0:
        raise ValueError(f"adjtimex failed (returned {rc}): no clock state to read")
    return rc != TIME_ERROR and not status & STA_UNSYNC


def synchronised() -> bool | None:
    """Whether the kernel says the clock is NTP-synchronised; None when it cannot be read.

    Reads with ``modes = 0`` (read only: no privilege needed, nothing
    changed). None off Linux, without a C library, or when the call fails.
    Raises nothing.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    adjtimex.argtypes = (ctypes.POINTER(Timex),)
    adjtimex.restype = ctypes.c_int
    timex = Timex()  # zeroed by ctypes: modes = 0
    rc = adjtimex(ctypes.byref(timex))
    if rc < 0:
        return None
    return from_timex(rc, timex.status)
