"""VK's errors, the one place that turns vk_api and requests errors into :mod:`adapters.errors` classes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from adapters.errors import (
    AmbiguousError,
    AuthError,
    ContentRejected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from adapters.http import parse_retry_after

UPLOAD_ERRORS = (118, 121, 129)
SCOPES = "wall,photos,offline"
# After error 6 the token's one-second window still holds up to 3 earlier requests. Half a window bounds how late
# the token resumes after a throttle (within 0.5 s of its end) and costs at most two more error-6 answers a second.
ERROR_6_PAUSE = 0.5
#: dev.vk.com/method/wall.post: a user token's ``wall`` right "is issued in exceptional cases by a request to support".
WALL_RIGHT = (
    "VK grants a user token the wall right only on request to its support (devsupport@corp.vk.com, see "
    "https://dev.vk.com/method/wall.post): ask for it for your app, then issue a new token"
)


class CaptchaRequired(PermanentError):
    """VK wants a captcha solved: a person must log in as the token's user; the account may be flagged."""

    needs_attention = True


def _seconds_to_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, today.timestamp() + 86400 - now)


@contextmanager
def vk_errors(action: str, *, token: str, group_id: int, sending: bool, unsure: str | None = None) -> Iterator[None]:
    """Translate vk_api and requests errors into :mod:`adapters.errors` (``sending``: the request changes the
    wall, so a lost answer is ambiguous; ``unsure`` says what may have happened and what to do; ``token`` is
    redacted from what VK says)."""
    import requests
    from vk_api.exceptions import VkApiError

    try:
        yield
    except (VkApiError, requests.RequestException) as exc:
        raise _translate(exc, action, token, group_id, sending, unsure) from exc


def _translate(
    exc: Exception, action: str, token: str, group_id: int, sending: bool, unsure: str | None = None
) -> PublishError:
    import requests
    import urllib3.exceptions
    from vk_api.exceptions import ApiError, ApiHttpError, Captcha

    club = f"club{group_id}"
    if not sending:
        unsure = "retry later"
    elif unsure is None:
        unsure = "the post may exist: reconcile before sending again"
    maybe = AmbiguousError if sending else TransientError
    if isinstance(exc, Captcha):
        return CaptchaRequired(
            f"VK asks for a captcha on {action}: a person must log in to vk.com as the token's user and solve it; "
            "the account may be flagged for automated activity"
        )
    if isinstance(exc, ApiHttpError):
        status = exc.response.status_code
        if status == 429:
            wait = parse_retry_after(exc.response.headers.get("Retry-After")) or 1.0
            return RateLimited(f"VK answered HTTP 429 to {action}; slowing down", retry_after=wait, code=status)
        if status >= 500:
            return TransientError(f"VK answered HTTP {status} to {action}; retry later", code=status)
        return PermanentError(f"VK answered HTTP {status} to {action}: check api_url", code=status)
    if isinstance(exc, ApiError):
        return _api_error(exc.code, _redact(str(exc.error.get("error_msg", "")), token), action, club)
    if isinstance(exc, requests.ConnectTimeout):
        return TransientError(f"could not connect to VK in time for {action}; nothing was sent")
    if isinstance(exc, requests.ReadTimeout):
        return maybe(f"VK did not answer {action} in time: {unsure}")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return TransientError(f"the VK upload server answered HTTP {exc.response.status_code}; retry later")
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0] if exc.args else None, "reason", None)
        if isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
            return TransientError(f"could not connect to VK for {action}; nothing was sent")
        return maybe(f"the connection to VK dropped during {action}: {unsure}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return PermanentError(f"the VK URL for {action} is invalid: check api_url")
    if isinstance(exc, requests.RequestException):
        return maybe(f"VK gave a broken answer to {action} ({type(exc).__name__}): {unsure}")
    return PermanentError(f"vk_api failed on {action}: {_redact(str(exc), token)}")


def _api_error(code: int, said: str, action: str, club: str) -> PublishError:
    detail = f"(error {code}: {said})"
    rights = f"the token's user must be an admin or editor of {club} and the token needs the scopes {SCOPES}"
    if code in (1, 10):
        return TransientError(f"VK failed on {action} {detail}; retry later", code=code)
    if code == 6:
        return RateLimited(f"VK: too many requests per second on {action} {detail}", retry_after=ERROR_6_PAUSE, code=6)
    if code == 9:
        return RateLimited(
            f"VK flood control on {action} {detail}: too many similar actions; pausing for 10 minutes",
            retry_after=600.0,
            code=9,
        )
    if code == 29 or (code == 214 and "a day" in said.lower()):
        wait = _seconds_to_utc_midnight(time.time())
        return RateLimited(
            f"VK daily limit reached on {action} {detail}; resuming after 00:00 UTC", retry_after=wait, code=code
        )
    if code == 5:
        return AuthError(
            f"the VK token is invalid or expired {detail}: get a new user token of a community admin (scopes {SCOPES})",
            code=5,
        )
    if code == 27:
        return AuthError(
            "a community token was given; wall.post needs a community admin's user token "
            f"(scopes {SCOPES}) {detail}; {WALL_RIGHT}",
            code=27,
        )
    if code in (7, 15) and action.startswith("wall."):
        return AuthError(f"VK refused {action} {detail}: {rights}; {WALL_RIGHT}", code=code)
    if code in (7, 15, 200, 203, 214):
        return AuthError(f"VK refused {action} {detail}: {rights}", code=code)
    if code == 17:
        return AuthError(
            f"VK wants the token's user validated {detail}: log in to vk.com as that user, pass "
            "the check, and issue a new token",
            code=17,
        )
    if code in (18, 28, 113):
        return AuthError(f"VK refused the token's user or app {detail}: issue a new token ({rights})", code=code)
    if code in UPLOAD_ERRORS:
        return ContentRejected(f"VK refused the photo twice while {action} {detail}: check the image file", code=code)
    if code == 222:
        return ContentRejected(
            f"{club} does not allow links in posts {detail}: remove the link or allow links in the community settings",
            code=222,
        )
    if code == 100:
        return ContentRejected(f"VK rejected a parameter of {action} {detail}", code=100)
    if code in (219, 220, 224, 225):
        return ContentRejected(f"VK refused the post {detail}", code=code)
    return PermanentError(f"VK refused {action} {detail}", code=code)


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>")
