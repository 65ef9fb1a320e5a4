"""Facebook's errors, the one place that turns a failed Graph request into :mod:`adapters.errors` classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.errors import (
    AmbiguousError,
    AuthError,
    BadResponse,
    ContentRejected,
    DuplicateSuspected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from adapters.facebook.graph import usage_backoff
from adapters.http import parse_retry_after, transport_errors

#: Graph throttling codes: https://developers.facebook.com/docs/graph-api/overview/rate-limiting
RATE_CODES = frozenset({4, 17, 32, 341, 613, 80001})
CONTENT_CODES = frozenset({100, 324, 1609005})
TOKEN_SUBCODES = {
    458: "the user removed the app",
    459: "the user's account hit a security checkpoint (log in on facebook.com to clear it)",
    460: "the user changed their password",
    463: "the token expired",
    464: "the user is not confirmed (confirm the account on facebook.com)",
    467: "the token is invalid or the user logged out",
}


_WORK = {"posting": "the post", "deleting": "the deletion"}
"""What a publishing request does, as its error messages name it."""


@contextmanager
def graph_errors(
    page: str, token: str, publishing: bool, may_exist: str | None = None, doing: str = "posting"
) -> Iterator[None]:
    """Every failure of a Graph request becomes an :mod:`adapters.errors` class here, and only here
    (``may_exist``: what a lost answer to a ``publishing`` request may have done, and what to do; ``doing``: the
    request's work, "posting" or "deleting"; ``token`` is redacted from what Graph says)."""
    unsure = may_exist or f"the post may exist on page {page}; check before resending"

    def redact(text: str) -> str:
        return _redact(text, token)

    def answer(exc: BadResponse) -> PublishError:
        return _api_error(exc, page, token, publishing, may_exist or "the post may exist", doing)

    with transport_errors("Facebook", publishing=publishing, may_exist=unsure, redact=redact, answer=answer):
        yield


def _api_error(exc: BadResponse, page: str, token: str, publishing: bool, may_exist: str, doing: str) -> PublishError:
    body = exc.body if isinstance(exc.body, dict) else {}
    raw = body.get("error")
    error: dict[str, Any] = raw if isinstance(raw, dict) else {}
    code, sub = error.get("code"), error.get("error_subcode")
    trace = f", fbtrace_id {error['fbtrace_id']}" if error.get("fbtrace_id") else ""
    said = _redact(f"Graph error {code}{f'/{sub}' if sub else ''}: {error.get('message')}{trace}", token)
    wait = usage_backoff(exc.headers)
    if not error:
        said = f"HTTP {exc.status} without a Graph error body"
        if exc.status == 429:
            after = parse_retry_after(exc.headers.get("retry-after")) or wait or 60.0
            return RateLimited(f"Facebook asked to slow down ({said})", retry_after=after, code=429)
        if 400 <= exc.status < 500:
            return PermanentError(f"Facebook refused the request for page {page} ({said}): check api_url")
        if publishing:
            return AmbiguousError(f"Facebook answered {_WORK[doing]} on page {page} oddly ({said}); {may_exist}")
        return TransientError(f"Facebook failed temporarily ({said})", retry_after=wait)
    if code in (190, 102):
        reason = TOKEN_SUBCODES.get(sub if isinstance(sub, int) else 0, "the token is no longer valid")
        return AuthError(
            f"the Facebook Page token for page {page} must be renewed: {reason} ({said}); "
            "issue a new Page token from a long-lived user token (GET /{user-id}/accounts)",
            code=code,
        )
    if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
        return AuthError(
            f"the token may not post on page {page} ({said}): the app needs pages_manage_posts and "
            "pages_read_engagement, and the user must have the CREATE_CONTENT task on the Page",
            code=code,
        )
    if code == 506:
        return DuplicateSuspected(f"Facebook says page {page} already has this message ({said})", code=code)
    if code == 368:
        blocked = PermanentError(
            f"Facebook blocked posting on page {page} for a policy violation ({said}); a person must review "
            "the Page in Meta Business Suite before anything is posted again",
            code=code,
        )
        blocked.needs_attention = True
        return blocked
    if code in CONTENT_CODES:
        return ContentRejected(f"Facebook rejected the post for page {page}: {said}", code=code)
    if publishing and (code in (1, 2) or exc.status >= 500):
        # php-graph-sdk#1141: code 1/subcode 99 came back and the link had been posted all the same.
        return AmbiguousError(f"Facebook failed while {doing} on page {page} ({said}); {may_exist}", code=code)
    if code in RATE_CODES:
        return RateLimited(f"Facebook throttled page {page} ({said})", retry_after=wait, code=code)
    if code in (1, 2) or error.get("is_transient") is True or exc.status >= 500:
        return TransientError(f"Facebook failed temporarily ({said})", retry_after=wait, code=code)
    return PermanentError(f"Facebook refused the request for page {page} ({said})", code=code)


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def gone(exc: PublishError) -> bool:
    """Whether Graph said the object does not exist (any more): error 100 with subcode 33."""
    cause = exc.__cause__
    body = cause.body if isinstance(cause, BadResponse) and isinstance(cause.body, dict) else {}
    error = body.get("error")
    return isinstance(error, dict) and error.get("code") == 100 and error.get("error_subcode") == 33
