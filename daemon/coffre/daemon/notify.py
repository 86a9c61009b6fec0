"""sd_notify: tell systemd we are ready, what we do, and that the loop is alive."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends notify messages to ``$NOTIFY_SOCKET``; does nothing when it is unset.

    The socket is looked up once, at construction, from ``environ``.
    ``watchdog_interval`` is half of ``$WATCHDOG_USEC`` (in seconds), as
    systemd advises, or None when no watchdog is asked (or it is meant for
    another process: ``$WATCHDOG_PID``).
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading "@".
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 2_000_000

    def notify(self, **fields: str) -> None:
        """Send ``KEY=value`` lines (e.g. READY="1", STATUS="..."); never raises.

        A lost notification must not kill a backup: systemd notices a missing
        READY or WATCHDOG on its own and acts.
        """
        if not self._address:
            return
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block the loop: a reader that fell behind loses a ping,
                # the loop does not stop (BlockingIOError is an OSError).
                sock.setblocking(False)
                sock.connect(self._address)
                sock.sendall(payload)
        except OSError:
            pass
