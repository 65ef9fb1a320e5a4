"""Telegram's errors, the one place that turns what python-telegram-bot raises into :mod:`adapters.errors`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from adapters.errors import (
    AmbiguousError,
    AuthError,
    ContentRejected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from adapters.telegram.client import LAST_STATUS


@contextmanager
def telegram_errors(
    chat: Callable[[], str | int], token: str, *, sending: bool, unsure: str | None = None
) -> Iterator[None]:
    """Translate whatever PTB raises into :mod:`adapters.errors` (``sending``: the request changes the chat, so
    a lost answer is ambiguous; ``unsure`` says what may have happened, a message posted by default). ``chat`` gives
    the chat posted to when an error is translated (a migration to a supergroup changes it); ``token`` is redacted
    from what Telegram says."""
    from telegram.error import TelegramError

    reset = LAST_STATUS.set(None)
    try:
        yield
    except TelegramError as exc:
        raise _translate(exc, chat(), token, sending=sending, status=LAST_STATUS.get(), unsure=unsure) from exc
    finally:
        LAST_STATUS.reset(reset)


def _translate(
    exc: Exception, chat: str | int, token: str, *, sending: bool, status: int | None, unsure: str | None = None
) -> PublishError:
    import httpx
    from telegram.error import (
        BadRequest,
        ChatMigrated,
        Forbidden,
        InvalidToken,
        NetworkError,
        RetryAfter,
        TimedOut,
    )

    fix = f"add the bot to {chat} as an admin with the right to post messages"
    said = str(exc).replace(token, "<token>")
    maybe = AmbiguousError if sending else TransientError
    if not sending:
        unsure = "retry later"
    elif unsure is None:
        unsure = f"the message may have been posted: check {chat} before sending again"
    cause = exc.__cause__
    if isinstance(exc, RetryAfter):
        seconds = _retry_after_seconds(exc)
        return RateLimited(f"Telegram flood control: retry in {seconds:g} s", retry_after=seconds, code=429)
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is a NetworkError
        text = said.lower()
        if "chat not found" in text:
            return AuthError(f"Telegram does not know chat {chat} ({said}): check chat_id and {fix}", code=400)
        if "rights" in text or "not enough" in text:
            return AuthError(f"the bot may not post in {chat} ({said}): {fix}", code=400)
        if "failed to get http url content" in text or "wrong file identifier/http url" in text:
            return TransientError(f"Telegram could not fetch a file ({said}); retry later", code=400)
        content = (
            "too long",
            "can't parse entities",
            "photo_",
            "image_",
            "wrong file",
            "media",
            "empty",
            "file is too big",
            "wrong type",
        )
        if any(word in text for word in content):
            return ContentRejected(f"Telegram rejected the post: {said}", code=400)
        return PermanentError(f"Telegram refused the request: {said}", code=400)
    if isinstance(exc, Forbidden):
        return AuthError(f"the bot is not an admin of {chat}, or it was removed ({said}): {fix}", code=403)
    if isinstance(exc, InvalidToken):
        # PTB's own message for this case contains the token: never use it.
        return AuthError(
            "the bot token was rejected (revoked or mistyped): create a new one with @BotFather"
            " (or fix api_url if it points at the wrong server)",
            code=401,
        )
    if isinstance(exc, ChatMigrated):
        return PermanentError(f"chat {chat} moved to {exc.new_chat_id}: set chat_id = {exc.new_chat_id} in the config")
    if isinstance(exc, TimedOut):
        if isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout):
            return TransientError(f"could not reach Telegram in time ({type(cause).__name__}); nothing was sent")
        return maybe(f"Telegram did not answer in time: {unsure}")
    if isinstance(exc, NetworkError) and status is not None:
        if status == 504:
            return maybe(f"Telegram answered 504 Gateway Timeout: {unsure}", code=504)
        if status >= 500:
            return TransientError(f"Telegram answered HTTP {status} ({said}); retry later", code=status)
        if status == 413:
            return ContentRejected("Telegram refused the upload as too large (HTTP 413)", code=413)
        return PermanentError(f"Telegram answered HTTP {status}: {said}", code=status)
    if isinstance(exc, NetworkError):
        surely_not_sent = (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.ProxyError,
            httpx.UnsupportedProtocol,
            httpx.LocalProtocolError,
            httpx.PoolTimeout,
        )
        if isinstance(cause, surely_not_sent):
            return TransientError(f"could not connect to Telegram ({said}); nothing was sent")
        return maybe(f"the connection to Telegram failed ({said}): {unsure}")
    return maybe(f"Telegram gave an unexpected answer ({said}): {unsure}")


def _retry_after_seconds(exc: Any) -> float:
    value = getattr(exc, "_retry_after", None)  # a timedelta; the public attribute warns about deprecation
    if value is None:
        value = exc.retry_after
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
