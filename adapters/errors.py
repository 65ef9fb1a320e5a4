"""The root of every error smm raises, and the branch the adapters raise.

``SmmError`` lives here because adapters never import the scheduler; :mod:`scheduler.errors` adds the scheduler's
branch and draws the whole tree. An adapter translates whatever its client library or the network says into one
of these, in one place per adapter, with ``raise ... from exc``. The scheduler decides what to do from the class
alone::

    SmmError                        the root (its scheduler branch: see scheduler/errors.py)
    ├── PublishError                publishing failed
    │   ├── TransientError          surely not applied: retry later (after ``retry_after`` when the network said so)
    │   │   └── RateLimited         the network asked us to slow down
    │   ├── PermanentError          retrying cannot help: fail the delivery and say what the operator must do
    │   │   ├── AuthError           token expired, revoked or lacking rights: the channel needs attention
    │   │   ├── ContentRejected     the network refused this post's content
    │   │   ├── CaptchaRequired     VK wants a captcha solved for this token (adapters/vk/errors.py)
    │   │   ├── NotSupported        the network's API cannot do this at all (Telegram post results): the reason
    │   │   └── PostTooOld          too late to delete the post there (Telegram: 48 hours), refused before sending
    │   └── AmbiguousError          the network may have applied the request: reconcile, never resend blindly
    │       └── DuplicateSuspected  the network says it already has this post (Facebook 506)
    ├── ReadBackUnsupported         raised by ``find_published`` on a network that cannot be read back (Telegram)
    ├── UnknownNetwork              no adapter is registered under this network name (adapters/__init__.py)
    └── BadResponse                 an answer that is not a success, before its adapter translates it into a
                                    PublishError (OK, Facebook); it never leaves the adapter

Messages are written for an operator reading a log line at 3 a.m.: what happened and what to do. They never
contain a token.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class SmmError(Exception):
    """Something went wrong."""

    #: The exit code of a command that ends with this error.
    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class PublishError(SmmError):
    """Publishing failed."""

    #: Whether the failure means the channel itself needs a person (a token to renew, rights to grant).
    needs_attention: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        code: int | str | None = None,
        scope: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.code = code
        #: The rate-limit scope ``retry_after`` applies to (a :class:`~adapters.base.RateLimit` scope); None means
        #: the channel's tightest scope.
        self.scope = scope
        super().__init__(message)


class TransientError(PublishError):
    """The network could not take the post right now; it was surely not published. Retry later."""


class RateLimited(TransientError):
    """The network asked us to slow down."""


class PermanentError(PublishError):
    """The network refused the post; retrying will not help."""


class AuthError(PermanentError):
    """The token is invalid, expired or lacks the rights to post: the channel needs attention."""

    needs_attention = True


class ContentRejected(PermanentError):
    """The network rejected this post's content."""


class NotSupported(PermanentError):
    """The network's API cannot do this; the message says why (see ``Adapter.unsupported``)."""


class PostTooOld(PermanentError):
    """The post is older than the network lets it be deleted (``Capabilities.delete_window``)."""


class AmbiguousError(PublishError):
    """The request may have been applied: check the network before sending again."""


class DuplicateSuspected(AmbiguousError):
    """The network reports the post as a duplicate: it is probably already published."""


class ReadBackUnsupported(SmmError):
    """This network cannot be read back, so an ambiguous outcome cannot be settled automatically."""


class UnknownNetwork(SmmError, LookupError):
    """No adapter is registered under this network name."""


class BadResponse(SmmError):
    """A network's answer that is not a success: its adapter translates it into a :class:`PublishError`."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(status))
        self.status, self.body, self.headers = status, body, headers or {}


@contextmanager
def answer_shape(network: str, what: str) -> Iterator[None]:
    """Reading a network's answer inside: one that lacks the fields or types its docs give (a proxy's page, an API
    change) becomes a :class:`TransientError` naming ``what`` was read, instead of a KeyError from deep inside."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise TransientError(
            f"{network} answered {what} in a shape smm does not know ({type(exc).__name__}: {exc}); retry later"
        ) from exc
