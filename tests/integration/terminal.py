"""A pseudo-terminal driven by a test, as a support engineer types into one."""

from __future__ import annotations

import os
import select
import time


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
