"""systemd's notify protocol: what reaches the socket, and how often, with time under control."""

from __future__ import annotations

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
    notifier.progress("1 published")
    notifier.progress("1 published")  # unchanged
    clock.now += 0.5
    notifier.progress("2 published")  # too soon
    clock.now += 0.6
    notifier.progress("3 published")  # the latest goes
    clock.now += 5
    notifier.progress("3 published")  # unchanged
    notifier.status("waiting for the database")  # not routine: at once
    assert received(sock) == ["STATUS=1 published", "STATUS=3 published", "STATUS=waiting for the database"]
    notifier.close()


def test_watchdog_pings_at_most_every_half_interval(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    clock = Clock()
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "4000000"}, monotonic=clock)
    assert notifier.watchdog_interval == 2.0
    pings = 0
    for _ in range(40):  # a cycle every 0.1 s for 4 s
        notifier.watchdog()
        clock.now += 0.1
        pings += len(received(sock))
    assert pings == 4
    notifier.close()


def test_a_vanished_socket_is_reconnected(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.notify("READY=1")
    sock.close()  # systemd went away (re-executed)
    assert not notifier.notify("STATUS=lost")
    again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    again.bind("\0" + address[1:])
    again.setblocking(False)
    try:
        assert notifier.notify("STATUS=back")
        assert received(again) == ["STATUS=back"]
    finally:
        again.close()
        notifier.close()


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.notify("READY=1")
    notifier.progress("idle")
    notifier.watchdog()
