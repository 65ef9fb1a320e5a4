"""OK's errors, the one place that turns a failed OK request into :mod:`adapters.errors` classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from adapters.errors import (
    AmbiguousError,
    AuthError,
    BadResponse,
    ContentRejected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from adapters.http import parse_retry_after, transport_errors

TRANSIENT_CODES = frozenset({1, 2, 30, 31, 9999})
CONTENT_CODES = frozenset({100, 454, 600, 601, 607})
PERMISSION_CODES = frozenset({10, 200, 210})
#: FLOOD_BLOCKED carries no wait; a minute lets OK's anti-flood window pass without stalling the queue.
FLOOD_BACKOFF = 60.0
#: LIMIT_REACHED is a method quota whose reset time OK does not publish: retry hourly rather than guess midnight.
QUOTA_BACKOFF = 3600.0


@contextmanager
def ok_errors(
    group: str, secrets: tuple[str, ...], publishing: bool, may_exist: str | None = None, doing: str = "posting"
) -> Iterator[None]:
    """Every failure of an OK request becomes an :mod:`adapters.errors` class here, and only here (``secrets``:
    the token and the application secret, redacted from what OK says)."""
    unsure = may_exist or f"the topic may exist in group {group}; check first"

    def redact(text: str) -> str:
        return _redact(text, secrets)

    def answer(exc: BadResponse) -> PublishError:
        return _api_error(exc, group, secrets, publishing, may_exist or "the topic may exist", doing)

    with transport_errors("OK", publishing=publishing, may_exist=unsure, redact=redact, answer=answer):
        yield


def _api_error(
    exc: BadResponse, group: str, secrets: tuple[str, ...], publishing: bool, may_exist: str, doing: str
) -> PublishError:
    body = exc.body if isinstance(exc.body, dict) else {}
    code = body.get("error_code")
    said = _redact(f"OK error {code}: {body.get('error_msg')}", secrets)
    if code is None:
        said = f"HTTP {exc.status} without an OK error body"
        if exc.status == 429:
            after = parse_retry_after(exc.headers.get("retry-after")) or FLOOD_BACKOFF
            return RateLimited(f"OK asked to slow down ({said})", retry_after=after, code=429)
        if publishing and (exc.status >= 500 or exc.status < 400):
            return AmbiguousError(f"OK failed while {doing} in group {group} ({said}); {may_exist}")
        if exc.status >= 500:
            return TransientError(f"OK failed temporarily ({said})")
        return PermanentError(f"OK refused the request ({said}): check api_url")
    if code == 8:
        return RateLimited(f"OK flood control blocked the token ({said})", retry_after=FLOOD_BACKOFF, code=code)
    if code == 11:
        return RateLimited(f"OK method quota reached ({said})", retry_after=QUOTA_BACKOFF, code=code)
    if code in TRANSIENT_CODES:
        return TransientError(f"OK failed temporarily ({said})", code=code)
    if code in (102, 103):
        return AuthError(
            f"the OK access token expired: get a new one (LONG_ACCESS_TOKEN lives 30 days and extends on use) ({said})",
            code=code,
        )
    if code in (104, 105):
        error = PermanentError(
            f"the request signature was rejected: a bug in smm-scheduler or a wrong application_secret ({said})",
            code=code,
        )
        error.needs_attention = True
        return error
    if code in PERMISSION_CODES:
        return AuthError(
            f"OK denied the permission to post in group {group} ({said}): the application needs GROUP_CONTENT, "
            "PHOTO_CONTENT and VALUABLE_ACCESS (granted by api-support@ok.ru) and the user must administer, "
            "moderate or edit the group",
            code=code,
        )
    if code in CONTENT_CODES:
        return ContentRejected(f"OK rejected the topic for group {group}: {said}", code=code)
    return PermanentError(f"OK refused the request for group {group} ({said})", code=code)


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text
