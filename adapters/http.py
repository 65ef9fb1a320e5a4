"""The one place where the httpx clients of the httpx-based adapters (Facebook, Odnoklassniki) are built, and the
total deadline every httpx request of an adapter runs under (Telegram's too, through python-telegram-bot).

httpx times each phase on its own (waiting for a pooled connection, connecting, each write, each read), so a server
that answers one byte every few seconds keeps a request alive as long as it likes. :func:`total_deadline` bounds
the whole exchange, the answer's body included. It is kept by the caller, not by a transport of ours: a client
given a transport ignores the proxies named in the environment.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from adapters.errors import AmbiguousError, BadResponse, PermanentError, PublishError, TransientError

if TYPE_CHECKING:
    import ssl

    import httpx

    from adapters.building import SharedClients

USER_AGENT = "smm-scheduler (+https://github.com/smm-scheduler)"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import time

    return max(0.0, when.timestamp() - time.time())


class _Progress:
    """How far the requests inside one :func:`total_deadline` got, from httpcore's trace events."""

    __slots__ = ("connecting", "hooked", "sent")

    def __init__(self) -> None:
        self.hooked = False  # whether :func:`trace_progress` saw a request (else nothing is known)
        self.connecting = False
        self.sent = False

    def trace(self, extensions: dict[str, Any]) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        """httpcore's ``trace`` extension for a request with these ``extensions``; it hands back whatever trace
        was there before once the request is being written, so the rest of the exchange is not traced for us."""
        chained = extensions.get("trace")

        async def trace(event: str, info: dict[str, Any]) -> None:
            if event.endswith("send_request_headers.started"):
                self.sent = True
                if chained is None:
                    del extensions["trace"]
                else:
                    extensions["trace"] = chained
            elif event.startswith("connection."):
                self.connecting = True
            if chained is not None:
                await chained(event, info)

        return trace

    def timeout(self, seconds: float) -> Exception:
        """The httpx error for a deadline that passed: a connect or pool timeout if nothing was written yet."""
        import httpx

        if self.sent or not self.hooked:
            return httpx.ReadTimeout(f"no complete answer within the {seconds:g} s deadline")
        if self.connecting:
            return httpx.ConnectTimeout(f"not connected within the {seconds:g} s deadline; nothing was sent")
        return httpx.PoolTimeout(f"no free connection within the {seconds:g} s deadline; nothing was sent")


_PROGRESS: ContextVar[_Progress | None] = ContextVar("deadline_progress", default=None)


async def trace_progress(request: httpx.Request) -> None:
    """An httpx request hook that lets the enclosing :func:`total_deadline` see whether the request was written."""
    progress = _PROGRESS.get()
    if progress is not None:
        progress.hooked = True
        request.extensions["trace"] = progress.trace(request.extensions)


@asynccontextmanager
async def total_deadline(seconds: float) -> AsyncIterator[None]:
    """Run the httpx request inside within ``seconds``, from its start to the last byte of the answer.

    Past the deadline it raises ``httpx.PoolTimeout`` or ``httpx.ConnectTimeout`` when no byte of the request was
    written (it surely did nothing) and ``httpx.ReadTimeout`` once one was (the server may have applied it), or
    when the client has no :func:`trace_progress` hook to tell.
    """
    progress = _Progress()
    reset = _PROGRESS.set(progress)
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            yield
    except TimeoutError as exc:
        if not scope.expired():
            raise
        raise progress.timeout(seconds) from exc
    finally:
        _PROGRESS.reset(reset)


def request_budget(client: httpx.AsyncClient) -> float:
    """The total time one request of ``client`` may take: the ``timeout`` it was built with."""
    return client.timeout.read or 30.0


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle is slow, so it is done once."""
    import ssl

    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def build_client(
    base_url: str,
    *,
    timeout: float = 30.0,
    connect_timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 10,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` rooted at ``base_url`` with explicit timeouts and a bounded connection pool.

    One client serves every channel of a network that shares the root, so connections are reused across posts.
    ``timeout`` is also the total a request may take under :func:`total_deadline` (see :func:`request_budget`).
    """
    import httpx

    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=False,
        event_hooks={"request": [trace_progress]},
        verify=kwargs.pop("verify", None) or ssl_context(),
        **kwargs,
    )


def shared_client(shared: SharedClients, base_url: str, timeout: float) -> httpx.AsyncClient:
    """The client of ``shared`` for ``base_url`` and ``timeout`` (:func:`build_client`), made on first use: the
    channels of one API root share its connection pool."""
    return shared.get(
        ("http", base_url, timeout),
        lambda: build_client(base_url, timeout=timeout),
        lambda client: client.aclose(),
        usable=lambda client: not client.is_closed,
    )


@contextmanager
def transport_errors(
    network: str,
    *,
    publishing: bool,
    may_exist: str,
    redact: Callable[[str], str] = str,
    answer: Callable[[BadResponse], PublishError] | None = None,
) -> Iterator[None]:
    """httpx's transport failures as publish errors: a connection never made is transient; one that failed after
    the request went out is ambiguous when the request was the one that publishes (``may_exist`` says where to
    look), transient otherwise. ``answer`` translates an API's error answer (a :class:`BadResponse`)."""
    import httpx

    try:
        yield
    except BadResponse as exc:
        if answer is None:
            raise
        raise answer(exc) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientError(redact(f"could not reach {network} ({type(exc).__name__}: {exc})")) from exc
    except httpx.UnsupportedProtocol as exc:
        raise PermanentError(f"the {network} api_url is not an http(s) URL: {exc}") from exc
    except httpx.HTTPError as exc:
        what = redact(f"the connection to {network} failed mid-request ({type(exc).__name__}: {exc})")
        if publishing:
            raise AmbiguousError(f"{what}: {may_exist}") from exc
        raise TransientError(what) from exc
