"""Reading a feed's document: an http(s) URL or a file, within a size cap and, for a URL, one total deadline.

A URL is read with httpx's async client under a single deadline (the feed's ``timeout``) that covers connecting,
the headers and the body together: a server that sends a byte now and then keeps a per-read timeout from ever
firing, but not this one. :func:`fetch_all` reads several feeds at once, so a slow feed holds up no other. A file
must be a regular file (a FIFO or a device such as ``/dev/zero`` is refused without blocking on it or reading it),
and files and URLs alike are refused past :data:`MAX_FEED_BYTES`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scheduler import __version__
from scheduler.errors import InputError
from scheduler.userfile import read_user_file

MAX_FEED_BYTES = 20 * 1024 * 1024
_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"


class FeedError(InputError):
    """The feed cannot be read: unreachable, not a feed, an HTML page, or empty."""


@dataclass
class Fetched:
    """A feed's document, or ``None`` when the server said it has not changed since the last poll."""

    data: bytes | None
    content_type: str = ""
    etag: str | None = None
    modified: str | None = None
    url: str | None = None
    """Where the document came from after redirects, to resolve relative links against; None for a file."""


@dataclass(frozen=True)
class Request:
    """One feed to read: its URL or file, its deadline in seconds, and the validators of the last read."""

    source: str
    timeout: float = 30.0
    etag: str | None = None
    modified: str | None = None


def is_url(source: str) -> bool:
    """Whether ``source`` is read over HTTP (else it is a file)."""
    return source.lower().startswith(("http://", "https://"))


def fetch(source: str, *, timeout: float = 30.0, etag: str | None = None, modified: str | None = None) -> Fetched:
    """The document at ``source``: an http(s) URL (conditional on ``etag``/``modified``) or a file."""
    (result,) = fetch_all([Request(source, timeout, etag, modified)])
    if isinstance(result, Exception):
        raise result
    return result


def fetch_all(requests: Sequence[Request]) -> list[Fetched | Exception]:
    """Each request's document, or why it could not be read (a :class:`FeedError`, or another exception for a
    bug); the URLs are read at the same time, each within its own deadline."""
    results: dict[int, Fetched | Exception] = {}
    urls = [index for index, request in enumerate(requests) if is_url(request.source)]
    if urls:
        fetched = _run(_fetch_urls([requests[index] for index in urls]))
        results.update(zip(urls, fetched, strict=True))
    for index, request in enumerate(requests):
        if index not in results:
            try:
                results[index] = _read_file(request.source)
            except Exception as exc:  # one feed's failure is that feed's result
                results[index] = exc
    return [results[index] for index in range(len(requests))]


def _read_file(source: str) -> Fetched:
    return Fetched(read_user_file(source, what="a feed to import", error=FeedError, limit=MAX_FEED_BYTES))


def _run(work: Any) -> Any:
    """Run a coroutine on an event loop of its own (the CLI has none; the daemon calls from a worker thread)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(work)
    finally:
        # Not asyncio.run: it waits for the executor's threads, and a name lookup that hangs runs in one.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _fetch_urls(requests: Sequence[Request]) -> list[Fetched | Exception]:
    outcomes = await asyncio.gather(*(_fetch_url(r) for r in requests), return_exceptions=True)
    results: list[Fetched | Exception] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # an interrupt, not a feed's failure
        results.append(outcome)
    return results


async def _fetch_url(request: Request) -> Fetched:
    import httpx

    source, timeout = request.source, request.timeout
    headers = {"User-Agent": f"smm-scheduler/{__version__} (feed import)", "Accept": _ACCEPT}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.modified:
        headers["If-Modified-Since"] = request.modified
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", source, headers=headers) as response,
        ):
            if response.status_code == 304:
                return Fetched(None, etag=request.etag, modified=request.modified)
            if response.status_code >= 400:
                raise FeedError(f"{source}: the server answered HTTP {response.status_code} {response.reason_phrase}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise FeedError(f"{source}: larger than {MAX_FEED_BYTES // (1024 * 1024)} MB; not a feed to import")
                chunks.append(chunk)
            return Fetched(
                b"".join(chunks),
                response.headers.get("content-type", ""),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
                str(response.url),
            )
    except (TimeoutError, httpx.TimeoutException):
        raise FeedError(f"{source}: no answer within {timeout:g} s; try again later") from None
    except httpx.InvalidURL as exc:
        raise FeedError(f"{source}: not a valid URL: {exc}") from None
    except httpx.HTTPError as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise FeedError(f"{source}: cannot fetch: {reason}") from None
