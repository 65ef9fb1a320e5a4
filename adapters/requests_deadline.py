"""A total deadline for each request of a ``requests`` session (VK, through vk_api, in a worker thread).

requests times the connect and each read on its own, so a server that answers one byte every few seconds keeps a
request alive as long as it likes. The request runs in a thread, which cannot be cancelled: the socket itself has to
give up. Inside :func:`deadline`, every blocking operation on the request's socket (connecting, the TLS handshake,
each write, each read of the answer) waits at most the time left, so the whole request ends by the deadline.

Sockets come from the connection classes of :class:`DeadlineAdapter`, which a session mounts for http and https.
Past the deadline, the request fails with ``requests.ConnectTimeout`` when no byte of it was written (it surely did
nothing) and with ``requests.ReadTimeout`` once one was (the server may have applied it).
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


class Deadline:
    """The end of one request's time, and whether any of the request was written."""

    __slots__ = ("expires", "seconds", "sent")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.sent = False

    def left(self) -> float:
        """Seconds left; past the deadline, the socket timeout the blocked operation would have raised."""
        left = self.expires - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the {self.seconds:g} s deadline passed")
        return left

    def passed(self) -> bool:
        """Whether the deadline passed (a socket timeout set to the time left may fire a hair early)."""
        return time.monotonic() >= self.expires - 0.005


def _current() -> Deadline | None:
    value: Deadline | None = getattr(_local, "deadline", None)
    return value


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Requests made by this thread inside end within ``seconds`` (through a :class:`DeadlineAdapter`)."""
    outer = _current()
    current = _local.deadline = Deadline(seconds)
    try:
        yield current
    except requests.RequestException as exc:
        if not current.passed():
            raise
        if current.sent:
            raise requests.ReadTimeout(f"no complete answer within the {seconds:g} s deadline") from exc
        raise requests.ConnectTimeout(f"not connected within the {seconds:g} s deadline; nothing was sent") from exc
    finally:
        _local.deadline = outer


class _DeadlineReader(io.RawIOBase):
    """A socket's reader whose every read waits at most the time left."""

    def __init__(self, raw: Any, sock: socket.socket, until: Deadline) -> None:
        super().__init__()
        self._raw, self._sock, self._until = raw, sock, until

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._until.left())
        result: int | None = self._raw.readinto(buffer)
        return result

    def close(self) -> None:
        if not self.closed:
            self._raw.close()  # releases the socket for the connection to close
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        until = _current()
        if until is not None:
            self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, until))


class _DeadlineConnection(HTTPConnection):
    response_class = _DeadlineResponse

    def _new_conn(self) -> socket.socket:
        until = _current()
        if until is not None:
            self.timeout = min(until.left(), self.timeout) if isinstance(self.timeout, float | int) else until.left()
        sock = super()._new_conn()
        if until is not None:
            sock.settimeout(until.left())  # the TLS handshake that may follow
        return sock

    def send(self, data: Any) -> None:
        until = _current()
        if until is not None:
            if self.sock is None and self.auto_open:
                self.connect()
            left = until.left()
            until.sent = True
            self.sock.settimeout(left)
        super().send(data)


class _DeadlineHTTPSConnection(_DeadlineConnection, HTTPSConnection):
    pass


class _DeadlinePool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS = {"http": _DeadlinePool, "https": _DeadlineHTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections honour :func:`deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
