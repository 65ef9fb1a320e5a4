"""systemd's sd_notify protocol: one datagram to ``$NOTIFY_SOCKET`` (``@`` starts an abstract socket name)."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable

PROGRESS_INTERVAL = 1.0
"""Seconds between two routine STATUS lines at least."""
PING_INTERVAL = 1.0
"""Seconds between two watchdog pings at least (a tenth of WatchdogSec when that is shorter)."""


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
        for _ in range(2):  # a socket systemd dropped (it re-executed): connect once more
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.connect(self.address)
                self._sock.sendall(message)
                return True
            except OSError:
                self.close()
        return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def ready(self, status: str) -> None:
        self._progress = None
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """A STATUS line sent at once (an outage); the next routine line replaces it, even an unchanged one."""
        self._progress = None
        self.notify(f"STATUS={status}")

    def progress(self, status: str) -> bool:
        """A routine STATUS line (each cycle's), sent when it changed and at most once a second: a daemon publishing
        50 posts a second would otherwise send systemd 50 datagrams a second. True when the line was held back for
        that; the caller sends the latest one again after ``PROGRESS_INTERVAL``."""
        if status == self._progress:
            return False
        now = self._monotonic()
        if now - self._progress_at < PROGRESS_INTERVAL:
            return True
        if self.notify(f"STATUS={status}"):
            self._progress, self._progress_at = status, now
        return False

    def watchdog(self) -> None:
        """Ping the watchdog (the daemon does after each cycle), at most every ``PING_INTERVAL`` or a tenth of
        WatchdogSec: cycles come at least every ``watchdog_interval`` (half of WatchdogSec), so a ping is never
        more than that and a tenth apart, plus a cycle's own time."""
        if self.watchdog_interval is None:
            return
        now = self._monotonic()
        if now - self._pinged_at >= min(PING_INTERVAL, self.watchdog_interval / 5) and self.notify("WATCHDOG=1"):
            self._pinged_at = now

    def stopping(self, status: str = "stopping") -> None:
        self._progress = None
        self.notify("STOPPING=1", f"STATUS={status}")
