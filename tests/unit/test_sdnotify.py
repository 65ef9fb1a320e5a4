"""systemd's notify protocol: what reaches the socket, and how often, with time under control."""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterator

import pytest

from scheduler.sdnotify import Notifier


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def systemd() -> Iterator[tuple[socket.socket, str]]:
    """A bound abstract datagram socket standing in for systemd's, and its $NOTIFY_SOCKET spelling."""
    address = f"@smm-unit-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:])
    sock.setblocking(False)
    yield sock, address
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out: list[str] = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_routine_status_goes_once_a_second_when_it_changed(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    clock = Clock()
    notifier = Notifier({"NOTIFY_SOCKET": address}, monotonic=clock)
    assert not notifier.progress("1 published")
    assert not notifier.progress("1 published")  # unchanged
    clock.now += 0.5
    assert notifier.progress("2 published")  # too soon: held back, the caller sends it again later
    clock.now += 0.6
    assert not notifier.progress("3 published")  # the latest goes
    clock.now += 5
    assert not notifier.progress("3 published")  # unchanged
    assert received(sock) == ["STATUS=1 published", "STATUS=3 published"]
    notifier.close()


def test_after_an_outage_status_the_routine_line_comes_back(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    clock = Clock()
    notifier = Notifier({"NOTIFY_SOCKET": address}, monotonic=clock)
    notifier.progress("0 published")
    clock.now += 60
    notifier.status("waiting for the database")  # at once
    clock.now += 60
    notifier.progress("0 published")  # unchanged since the last routine line, but the outage line must go
    assert received(sock) == ["STATUS=0 published", "STATUS=waiting for the database", "STATUS=0 published"]
    notifier.close()


@pytest.mark.parametrize(("watchdog_sec", "floor"), [(120, 1.0), (4, 0.4)])
def test_watchdog_pings_often_enough_and_no_more(
    systemd: tuple[socket.socket, str], watchdog_sec: int, floor: float
) -> None:
    sock, address = systemd
    clock = Clock()
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": str(watchdog_sec * 1_000_000)}, monotonic=clock)
    assert notifier.watchdog_interval == watchdog_sec / 2
    pinged: list[float] = []
    for _ in range(100):  # a cycle every 0.05 s for 5 s (a daemon publishing 20 posts a second)
        notifier.watchdog()
        pinged += [clock.now] * len(received(sock))
        clock.now += 0.05
    gaps = [b - a for a, b in itertools.pairwise(pinged)]
    assert gaps and all(floor - 1e-9 <= gap <= floor + 0.05 + 1e-9 for gap in gaps), gaps
    notifier.close()


def test_a_message_after_systemd_reexecuted_is_not_lost(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.notify("READY=1")
    sock.close()  # systemd re-executed: its socket is a new one at the same address
    again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    again.bind("\0" + address[1:])
    again.setblocking(False)
    try:
        assert notifier.notify("STOPPING=1")
        assert received(again) == ["STOPPING=1"]
        again.close()  # gone for good: nothing to send to, and no error
        assert not notifier.notify("STATUS=lost")
    finally:
        again.close()
        notifier.close()


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.notify("READY=1")
    notifier.progress("idle")
    notifier.watchdog()
