"""The python-telegram-bot ``Bot`` the adapter talks through: its request object with explicit timeouts, one total
deadline per request, and the HTTP status of each answer remembered for error translation."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.request import BaseRequest

DEFAULT_API_URL = "https://api.telegram.org"
#: The HTTP status of the last Bot API answer in this task (PTB keeps it only in the message).
LAST_STATUS: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_status", default=None)


def default_request(timeout: float = 30.0) -> BaseRequest:
    """PTB's httpx request with explicit timeouts, the shared TLS context, and the hook that tells
    :func:`~adapters.http.total_deadline` whether a request was written before its deadline passed."""
    from telegram.request import HTTPXRequest

    from adapters.http import ssl_context, trace_progress

    return HTTPXRequest(
        connection_pool_size=8,
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
        write_timeout=timeout,
        media_write_timeout=timeout,
        pool_timeout=min(timeout, 5.0),
        httpx_kwargs={"verify": ssl_context(), "event_hooks": {"request": [trace_progress]}},
    )


def build_bot(
    token: str, *, api_url: str | None = None, timeout: float = 30.0, request: BaseRequest | None = None
) -> Bot:
    """A ``telegram.Bot`` pointed at ``api_url`` (a self-hosted Bot API server, tests), not yet initialized.

    Every request, uploads included, ends within ``timeout`` seconds (a total deadline), ``request`` too.
    """
    from telegram import Bot

    root = (api_url or DEFAULT_API_URL).rstrip("/")
    recording = _recording_status(request or default_request(timeout), owned=request is None, deadline=timeout)
    return Bot(
        token,
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=recording,
        get_updates_request=recording,
    )


def _recording_status(inner: BaseRequest, *, owned: bool, deadline: float) -> BaseRequest:
    """``inner``, wrapped to end each request within ``deadline`` seconds and to remember each answer's HTTP status
    in :data:`LAST_STATUS` (PTB drops it). A deadline that passes raises PTB's ``TimedOut``, as its own timeouts do.

    An injected request object (``owned=False``) belongs to the caller, who shuts it down.
    """
    import httpx
    from telegram.error import TimedOut
    from telegram.request import BaseRequest, RequestData

    from adapters.http import total_deadline

    class StatusRecordingRequest(BaseRequest):
        @property
        def read_timeout(self) -> float | None:
            return inner.read_timeout

        async def initialize(self) -> None:
            await inner.initialize()

        async def shutdown(self) -> None:
            if owned:
                await inner.shutdown()

        async def do_request(
            self,
            url: str,
            method: str,
            request_data: RequestData | None = None,
            read_timeout: Any = BaseRequest.DEFAULT_NONE,
            write_timeout: Any = BaseRequest.DEFAULT_NONE,
            connect_timeout: Any = BaseRequest.DEFAULT_NONE,
            pool_timeout: Any = BaseRequest.DEFAULT_NONE,
        ) -> tuple[int, bytes]:
            try:
                async with total_deadline(deadline):
                    code, payload = await inner.do_request(
                        url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
                    )
            except httpx.TimeoutException as exc:  # only the deadline's: PTB turns its own into TimedOut
                raise TimedOut(str(exc)) from exc
            LAST_STATUS.set(code)
            return code, payload

    return StatusRecordingRequest()
