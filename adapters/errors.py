"""The one error hierarchy every adapter raises.

An adapter translates whatever its client library or the network says into one of these, in one place per
adapter, with ``raise ... from exc``. The scheduler decides what to do from the class alone::

    PublishError
    ├── TransientError          surely not applied: retry later (after ``retry_after`` when the network said so)
    │   └── RateLimited         the network asked us to slow down
    ├── PermanentError          retrying cannot help: fail the delivery and say what the operator must do
    │   ├── AuthError           token expired, revoked or lacking rights: the channel needs attention
    │   └── ContentRejected     the network refused this post's content
    └── AmbiguousError          the network may have applied the request: reconcile, never resend blindly
        └── DuplicateSuspected  the network says it already has this post (Facebook 506)

    ReadBackUnsupported        raised by ``find_published`` on a network that cannot be read back (Telegram)

Messages are written for an operator reading a log line at 3 a.m.: what happened and what to do. They never
contain a token.
"""

from __future__ import annotations


class PublishError(Exception):
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
        self.message = message or (self.__doc__ or "").strip()
        self.retry_after = retry_after
        self.code = code
        #: The rate-limit scope ``retry_after`` applies to (a :class:`~adapters.base.RateLimit` scope); None means
        #: the channel's tightest scope.
        self.scope = scope
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


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


class AmbiguousError(PublishError):
    """The request may have been applied: check the network before sending again."""


class DuplicateSuspected(AmbiguousError):
    """The network reports the post as a duplicate: it is probably already published."""


class ReadBackUnsupported(Exception):
    """This network cannot be read back, so an ambiguous outcome cannot be settled automatically."""
