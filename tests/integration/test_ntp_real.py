"""coffre.guard.ntp against the real kernel: the struct as glibc lays it out, the real syscall.

The C compiler (build-essential, installed by ``make setup``) is the reference
for glibc's ``struct timex`` and for what ``adjtimex(2)`` answers. timedatectl
is no witness here: it asks systemd-timedated over D-Bus, which needs systemd
as PID 1, and the test machines (containers, as the journald fixture shows)
have none. A test that could only skip in CI would prove nothing, so the C
reader stands as the independent witness.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from coffre.guard.ntp import STA_UNSYNC, TIME_ERROR, Timex, from_timex, synchronised
from tests.parts import binary

PROBE = r"""
#include <stddef.h>
#include <stdio.h>
#include <sys/timex.h>

int main(void) {
    struct timex t = {0};
    int rc = adjtimex(&t);
    printf("%zu %zu %zu %zu %zu %d %d %d %d\n", sizeof t, offsetof(struct timex, status),
           offsetof(struct timex, time), offsetof(struct timex, tai),
           offsetof(struct timex, shift), TIME_ERROR, STA_UNSYNC, rc, t.status);
    return 0;
}
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adjtimex is Linux's")


def c_probe(tmp_path: Path) -> list[int]:
    """What the C program says: layout, constants, then adjtimex's rc and status."""
    source = tmp_path / "probe.c"
    source.write_text(PROBE)
    program = tmp_path / "probe"
    subprocess.run([binary("gcc"), "-o", str(program), str(source)], check=True)
    out = subprocess.run([str(program)], check=True, capture_output=True, text=True).stdout
    return [int(field) for field in out.split()]


def test_the_struct_and_constants_are_glibcs(tmp_path: Path) -> None:
    size, status, time, tai, shift, time_error, sta_unsync, _, _ = c_probe(tmp_path)
    assert ctypes.sizeof(Timex) == size
    assert (Timex.status.offset, Timex.time.offset, Timex.tai.offset) == (status, time, tai)
    assert Timex.shift.offset == shift
    assert (time_error, sta_unsync) == (TIME_ERROR, STA_UNSYNC)


def test_the_real_syscall_answers_as_the_c_library_does(tmp_path: Path) -> None:
    answer = synchronised()
    assert isinstance(answer, bool)
    *_, rc, status = c_probe(tmp_path)
    # The clock state may change between the two reads only if a time daemon
    # (re)gains or loses sync within these milliseconds.
    assert answer == from_timex(rc, status)
