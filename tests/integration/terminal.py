"""A pseudo-terminal driven by a test, as a support engineer types into one."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import subprocess
import termios
import time
from collections.abc import Iterator, Mapping, Sequence


class Terminal:
    """The master side of a pseudo-terminal: what a support engineer types and sees."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""

    def write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read_until(self, wanted: bytes, timeout: float = 60) -> bytes:
        """Everything read up to and including ``wanted``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            assert ready, f"never saw {wanted!r} on the terminal; it showed: {self.seen!r}"
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: every writer is gone
                chunk = b""
            assert chunk, f"the terminal closed before {wanted!r}; it showed: {self.seen!r}"
            self.seen += chunk
        said, _, self.seen = self.seen.partition(wanted)
        return said + wanted


@contextlib.contextmanager
def on_a_terminal(
    argv: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Terminal]]:
    """``argv`` run on a new pseudo-terminal, its session's controlling terminal (a terminal
    as over SSH), and that terminal; the process is killed if it still runs after the block."""
    master, slave = os.openpty()
    try:
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            )
        finally:
            os.close(slave)
        try:
            yield process, Terminal(master)
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        os.close(master)
