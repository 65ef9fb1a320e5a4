"""The one place where the httpx clients of the httpx-based adapters (Facebook, Odnoklassniki) are built."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import httpx

USER_AGENT = "smm-scheduler (+https://github.com/smm-scheduler)"


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
