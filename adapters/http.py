"""The one place where the httpx clients of the httpx-based adapters (Facebook, Odnoklassniki) are built."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from adapters.errors import AmbiguousError, PermanentError, TransientError

if TYPE_CHECKING:
    import ssl

    import httpx

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


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs about 30 ms each time it is done."""
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
    """
    import httpx

    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=False,
        verify=kwargs.pop("verify", None) or ssl_context(),
        **kwargs,
    )


@contextmanager
def transport_errors(
    network: str, *, publishing: bool, may_exist: str, redact: Callable[[str], str] = str
) -> Iterator[None]:
    """httpx's transport failures as publish errors: a connection never made is transient; one that failed after
    the request went out is ambiguous when the request was the one that publishes (``may_exist`` says where to
    look), transient otherwise."""
    import httpx

    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientError(redact(f"could not reach {network} ({type(exc).__name__}: {exc})")) from exc
    except httpx.UnsupportedProtocol as exc:
        raise PermanentError(f"the {network} api_url is not an http(s) URL: {exc}") from exc
    except httpx.HTTPError as exc:
        what = redact(f"the connection to {network} failed mid-request ({type(exc).__name__}: {exc})")
        if publishing:
            raise AmbiguousError(f"{what}: {may_exist}") from exc
        raise TransientError(what) from exc
