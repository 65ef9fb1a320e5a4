"""systemd's sd_notify protocol: one datagram to ``$NOTIFY_SOCKET`` (``@`` starts an abstract socket name)."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable

PROGRESS_INTERVAL = 1.0
"""Seconds between two routine STATUS lines at least."""


class Notifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 to systemd; does nothing outside a notify service."""

    def __init__(self, env: dict[str, str] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + address[1:]) if address.startswith("@") else (address or None)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and (not pid or pid == str(os.getpid()))
        #: Seconds between watchdog pings (half of systemd's WatchdogSec), or None without a watchdog.
        self.watchdog_interval: float | None = int(usec) / 2_000_000 if watchdog else None
        self._monotonic = monotonic
        self._sock: socket.socket | None = None
        self._progress: str | None = None
        self._progress_at = -math.inf
        self._pinged_at = -math.inf

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        if self.address is None:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.connect(self.address)
            self._sock.sendall(message)
        except OSError:  # systemd restarted, or the socket is gone: connect again next time
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def progress(self, status: str) -> None:
        """A routine STATUS line (each cycle's): sent when it changed, at most once a second (a daemon publishing 50
        posts a second would otherwise send systemd 50 datagrams a second); the latest one goes with the next call
        after that."""
        now = self._monotonic()
        if status == self._progress or now - self._progress_at < PROGRESS_INTERVAL:
            return
        if self.notify(f"STATUS={status}"):
            self._progress, self._progress_at = status, now

    def watchdog(self) -> None:
        """Ping the watchdog, at most every half ``watchdog_interval``: the daemon calls this after each cycle, and
        cycles come at least every ``watchdog_interval``, so pings stay under 3/4 of systemd's WatchdogSec apart."""
        if self.watchdog_interval is None:
            return
        now = self._monotonic()
        if now - self._pinged_at >= self.watchdog_interval / 2 and self.notify("WATCHDOG=1"):
            self._pinged_at = now

    def stopping(self, status: str = "stopping") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")
