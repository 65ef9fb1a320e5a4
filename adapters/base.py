"""The adapter interface: what the scheduler hands an adapter, what it gets back, and the limits as data.

An adapter publishes one post to one channel of one network. It receives plain data (:class:`OutgoingPost`) and
a client built by the caller, returns a :class:`PublishResult`, or raises an error from :mod:`adapters.errors`.
It never touches the database, the scheduler or the config loader.

Adapter modules must stay cheap to import: the network's client library (``telegram``, ``vk_api``, ``httpx``) is
imported inside the methods that use it, so that ``smm add`` can validate a post against an adapter's
:class:`Capabilities` without loading any of them.
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:
    from adapters.building import ChannelSettings, SharedClients
    from adapters.channel import OptionReader

MB = 1024 * 1024


@functools.lru_cache(maxsize=256)
def token_fingerprint(token: str) -> str:
    """A short, stable name for a token's rate-limit scope (scopes are logged; tokens never are)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


P = ParamSpec("P")
R = TypeVar("R")

LONG_TEXT = 2_000
"""Characters from which reading a text (its markup, its links) goes to a worker thread. The reads are linear: a
shorter text takes less time on the event loop than the hop to a thread and back costs it."""


async def read_text(text: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)``, a function that reads ``text``: on the event loop when the text is short, in a worker
    thread when it is long (a hostile post must not hold up the posts of other channels)."""
    if len(text) < LONG_TEXT:
        return fn(*args, **kwargs)
    import asyncio  # here: `smm add` reads this module's limits, and `smm --version` loads it without a loop

    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass(frozen=True)
class Capabilities:
    """A network's limits, declared as data and checked when a post is queued and again before it is sent."""

    max_text: int
    """Longest text of a post without media, in characters (UTF-16 code units where ``utf16`` is set)."""
    max_media: int
    """Most media items in one post."""
    media_types: frozenset[str]
    """Accepted MIME types of media items."""
    max_media_bytes: int
    """Largest accepted media file."""
    max_caption: int | None = None
    """Longest text of a post with media; ``None`` when it is ``max_text``."""
    caption_overflow: Literal["reject", "split"] = "reject"
    """What happens to a text longer than ``max_caption`` with media: refused, or sent as a message of its own."""
    max_side_sum: int | None = None
    """Largest width + height of an image, in pixels."""
    max_aspect_ratio: float | None = None
    """Largest ratio of the long side to the short side of an image."""
    utf16: bool = False
    """Whether lengths count UTF-16 code units (characters outside the BMP count twice), as Telegram does."""
    delete_window: float | None = None
    """Seconds after publishing during which :meth:`Adapter.delete_post` can take a post down (Telegram: 48 hours);
    ``None`` when a post can be deleted at any age. An expiry past it is refused when the post is queued."""


@dataclass(frozen=True)
class MediaFile:
    """A media file in the scheduler's media store, with what was learnt of it when it was queued."""

    path: Path
    mime: str
    size: int
    width: int | None = None
    height: int | None = None
    name: str = ""
    """The file's name as the user gave it, for messages (the path is the store's, named by the file's hash)."""


@dataclass(frozen=True)
class OutgoingPost:
    """Exactly what to publish on one channel: the text is final (escaped, tagged, with hashtags)."""

    text: str
    link: str | None = None
    media: tuple[MediaFile, ...] = ()
    key: str = ""
    """A stable key for this delivery, the same on every attempt (VK's ``guid``, the outbox folder name)."""
    publish_at: datetime | None = None
    """Hand the post to the network to publish at this UTC time (native pre-scheduling), when supported."""


@dataclass(frozen=True)
class PublishResult:
    """What the network created."""

    remote_id: str
    """The post's id on the network; for a post of several messages (Telegram), its first message's."""
    remote_url: str | None = None
    warnings: tuple[str, ...] = ()
    """Things the operator should know (e.g. a Telegram chat that migrated to a new id)."""
    backoff: float | None = None
    """Seconds the network asked us to wait before the next request in this channel's scopes (usage headers)."""
    more_ids: tuple[str, ...] = ()
    """The ids of the post's further messages where the network made it of several (Telegram: the other photos of
    an album, the text sent after them), in order, without spaces; :meth:`Adapter.delete_post` takes them down with
    ``remote_id``."""


@dataclass(frozen=True)
class PostResults:
    """One reading of a published post's results. A figure the network does not give (or the token may not read)
    is ``None``, never a guess; ``notes`` say why one is missing, for the operator."""

    views: int | None = None
    likes: int | None = None
    """Likes, reactions or "Класс" marks, as the network counts them."""
    reposts: int | None = None
    """Reposts, shares or reshares."""
    comments: int | None = None
    gone: bool = False
    """The network no longer has the post (deleted there): every figure is ``None`` and reading it again is useless."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comment:
    """A comment on a published post, as the network shows it."""

    remote_id: str
    """The comment's id on the network, unique within the post: what keeps a comment from being reported twice."""
    author: str
    """The author's display name."""
    text: str
    created_at: datetime
    """When it was written (UTC)."""
    url: str | None = None
    """A link that opens the comment, when the network has one."""


#: The read and delete requests an adapter makes besides publishing (see :meth:`Adapter.requests_for_action`).
Action = Literal["results", "audience", "comments", "delete"]


@dataclass(frozen=True)
class RateLimit:
    """At most ``rate`` units per ``per`` seconds in ``scope`` (a bot, a token, a chat, a community)."""

    scope: str
    rate: float
    per: float
    unit: Literal["post", "request"] = "post"


@dataclass(frozen=True)
class Quota:
    """At most ``limit`` posts in any ``per`` seconds in ``scope`` (a VK community's daily wall posts).

    Unlike a rate limit, a quota is known ahead: the scheduler defers the posts that would exceed it instead of
    letting the network reject them.
    """

    scope: str
    limit: int
    per: float


@dataclass(frozen=True)
class Problem:
    """A reason a post cannot be published on a channel."""

    message: str


def text_length(text: str, *, utf16: bool = False) -> int:
    """The length of ``text`` as a network counts it."""
    if not utf16:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


class Adapter(ABC):
    """Publishes posts to one channel of a network.

    Subclasses set ``network`` and ``capabilities`` and implement :meth:`publish`, :meth:`check` and
    :meth:`from_config`; networks that can be read back implement :meth:`find_published`. A channel's config keys
    beyond those every channel has are the network's: :meth:`read_options` reads them and :attr:`secret_keys` names
    its secrets.
    """

    network: ClassVar[str]
    #: The network's name in messages for people ("Telegram").
    title: ClassVar[str]
    #: The network's API as messages for people name it ("the Bot API"); empty when it has none.
    api_title: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]
    #: Whether :meth:`find_published` can settle an ambiguous outcome.
    can_read_back: ClassVar[bool] = False
    #: Seconds during which publishing the same :attr:`OutgoingPost.key` again cannot create a second post
    #: (VK's ``guid``); ``None`` when the network has no idempotency key.
    idempotent_window: ClassVar[float | None] = None
    #: How far ahead (seconds: at least, at most) the network takes a post to publish by itself.
    native_lead: ClassVar[tuple[float, float]] = (600.0, 30 * 86400.0)
    #: Whether :attr:`OutgoingPost.publish_at` is honoured (the network schedules the post itself).
    supports_native_schedule: ClassVar[bool] = False
    #: The secrets a channel names, in the order they are checked: ``token`` is given as ``token_env``,
    #: ``token_file`` or ``token_credential``.
    secret_keys: ClassVar[tuple[str, ...]] = ()
    #: Where the network's API is when the channel sets no ``api_url`` (empty: the network has no API).
    default_api_root: ClassVar[str] = ""
    #: The actions of :data:`Action` this network cannot do, each with the reason in a sentence an operator reads
    #: (``smm doctor`` prints them); the default :meth:`read_results`, :meth:`read_audience`,
    #: :meth:`read_comments` and :meth:`delete_post` raise :class:`~adapters.errors.NotSupported` with it.
    unsupported: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def read_options(cls, table: OptionReader, folder: Path) -> dict[str, Any]:
        """The network's own keys of a channel, read from its config table and checked (``raise table.error(key,
        message)`` refuses one); a relative path is taken from ``folder``. They become the channel's options."""
        return {}

    @classmethod
    def markup(cls, options: Mapping[str, Any]) -> str | None:
        """The markup a channel's texts are written in, given its options, as :mod:`adapters.telegram_markup`
        reads it (``HTML``, ``MarkdownV2``); None for plain text, which every network but Telegram takes."""
        return None

    @classmethod
    @abstractmethod
    def from_config(cls, channel: ChannelSettings, shared: SharedClients) -> Adapter:
        """The adapter of a configured channel; clients that channels can share come from ``shared``."""

    @classmethod
    def sent_length(cls, text: str, link: str | None, options: Mapping[str, Any]) -> int:
        """The length the network counts for a post of ``text`` and ``link`` (a link sent apart does not count)."""
        return cls.visible_length(text, options)

    @classmethod
    def visible_length(cls, text: str, options: Mapping[str, Any]) -> int:
        """The length of ``text`` as the network counts it, given the channel's options (e.g. a parse mode)."""
        return text_length(text, utf16=cls.capabilities.utf16)

    @classmethod
    def validate(cls, post: OutgoingPost, options: Mapping[str, Any] | None = None) -> list[Problem]:
        """Every reason ``post`` cannot be published on a channel of this network with these options."""
        options = options or {}
        caps = cls.capabilities
        problems: list[Problem] = []
        if not post.text.strip() and not post.media and not post.link:
            problems.append(Problem("the post has no text, link or media"))
        length = cls.visible_length(post.text, options)
        if post.media and caps.max_caption is not None and caps.caption_overflow == "reject":
            limit, what = caps.max_caption, "caption"
        else:
            limit, what = caps.max_text, "text"
        if length > limit:
            problems.append(Problem(f"the {what} is {length} characters long; {cls.network} allows {limit}"))
        if len(post.media) > caps.max_media:
            problems.append(Problem(f"{len(post.media)} media files; {cls.network} allows {caps.max_media}"))
        for item in post.media:
            problems.extend(cls._media_problems(item))
        problems.extend(cls.extra_problems(post, options))
        return problems

    @classmethod
    def _media_problems(cls, item: MediaFile) -> list[Problem]:
        caps = cls.capabilities
        name = item.name or item.path.name
        problems: list[Problem] = []
        if item.mime not in caps.media_types:
            allowed = ", ".join(sorted(caps.media_types))
            problems.append(Problem(f"{name}: {item.mime} is not accepted by {cls.network} ({allowed})"))
        if item.size > caps.max_media_bytes:
            problems.append(
                Problem(
                    f"{name}: {item.size / MB:.1f} MB; {cls.network} accepts at most {caps.max_media_bytes / MB:g} MB"
                )
            )
        if item.width and item.height:
            if caps.max_side_sum and item.width + item.height > caps.max_side_sum:
                problems.append(
                    Problem(
                        f"{name}: {item.width}x{item.height} px; {cls.network} needs width + height "
                        f"<= {caps.max_side_sum}"
                    )
                )
            ratio = max(item.width, item.height) / max(1, min(item.width, item.height))
            if caps.max_aspect_ratio and ratio > caps.max_aspect_ratio:
                problems.append(
                    Problem(
                        f"{name}: aspect ratio {ratio:.1f}:1; {cls.network} allows at most {caps.max_aspect_ratio:g}:1"
                    )
                )
        return problems

    @classmethod
    def extra_problems(cls, post: OutgoingPost, options: Mapping[str, Any]) -> list[Problem]:
        """Network-specific checks beyond :class:`Capabilities` (markup that does not parse, say)."""
        return []

    @classmethod
    def preview(cls, post: OutgoingPost, options: Mapping[str, Any] | None = None) -> list[str]:
        """The requests publishing ``post`` would make, one line each, for a person (``smm plan``); sends nothing.

        The default describes one post; adapters whose posts take several visible steps (an album, then the text)
        say so.
        """
        options = options or {}
        parts = []
        if post.text.strip():
            parts.append(f"text of {cls.visible_length(post.text, options)} characters")
        if post.link:
            parts.append(f"link {post.link}")
        if post.media:
            parts.append(f"{len(post.media)} media ({', '.join(item.path.name for item in post.media)})")
        return [f"one {cls.network} post: {', '.join(parts) or 'empty'}"]

    @abstractmethod
    async def publish(self, post: OutgoingPost) -> PublishResult:
        """Publish ``post`` and return what the network created.

        Raises :class:`~adapters.errors.TransientError` when the post was surely not published,
        :class:`~adapters.errors.PermanentError` when retrying cannot help, and
        :class:`~adapters.errors.AmbiguousError` when the network may have published it.
        """

    @abstractmethod
    async def check(self) -> str:
        """Check that the credentials work and allow posting to the channel.

        Returns a one-line description of what was checked; raises a
        :class:`~adapters.errors.PublishError` that says what is wrong and how to fix it.
        """

    async def find_published(self, post: OutgoingPost, since: datetime) -> PublishResult | None:
        """Read the channel back and return the post matching ``post`` published at or after ``since``.

        Returns ``None`` when the network says authoritatively that there is no such post. Raises
        :class:`~adapters.errors.ReadBackUnsupported` when the network cannot be read back, and a
        :class:`~adapters.errors.PublishError` when the read itself failed.
        """
        from adapters.errors import ReadBackUnsupported

        raise ReadBackUnsupported(f"{self.network} cannot be read back")

    async def scheduled_status(
        self, remote_id: str, post: OutgoingPost
    ) -> tuple[Literal["published", "scheduled", "missing"], PublishResult | None]:
        """Where a post handed over with :attr:`OutgoingPost.publish_at` stands: live (with its result), still
        waiting on the network, or gone (deleted there, or the network dropped it)."""
        from adapters.errors import PermanentError

        raise PermanentError(f"{self.network} does not support native scheduling")

    async def cancel_scheduled(self, remote_id: str) -> None:
        """Delete a post handed to the network for native scheduling (see :attr:`OutgoingPost.publish_at`)."""
        from adapters.errors import PermanentError

        raise PermanentError(f"{self.network} does not support native scheduling")

    # -- after publishing: results, comments, deletion -------------------------------------------------------

    async def read_results(self, remote_id: str) -> PostResults:
        """The current results of the post the network knows as ``remote_id`` (:attr:`PublishResult.remote_id`).

        A post the network no longer has gives ``PostResults(gone=True)``. Raises
        :class:`~adapters.errors.NotSupported` where the network gives no per-post results,
        :class:`~adapters.errors.AuthError` when the token may not read them (the message names the missing
        right), and :class:`~adapters.errors.TransientError` when the read failed for now.
        """
        raise self._unsupported("results")

    async def read_audience(self) -> int:
        """The channel's audience now: followers, subscribers or members. Raises like :meth:`read_results`."""
        raise self._unsupported("audience")

    async def read_comments(self, remote_id: str, since: datetime) -> list[Comment]:
        """The comments on post ``remote_id`` written at or after ``since`` (UTC), oldest first.

        Raises :class:`~adapters.errors.NotSupported` where the network's API cannot read them, otherwise like
        :meth:`read_results`.
        """
        raise self._unsupported("comments")

    async def delete_post(
        self, remote_id: str, published_at: datetime, now: datetime, more_ids: Sequence[str] = ()
    ) -> None:
        """Take post ``remote_id``, published at ``published_at``, down from the network; ``now`` is the time.
        ``more_ids`` are its further messages (:attr:`PublishResult.more_ids`; empty for a post published before
        they were kept): a network whose posts are one object each ignores them.

        A post the network no longer has counts as deleted (returns). Raises
        :class:`~adapters.errors.PostTooOld` (before any request) past :attr:`Capabilities.delete_window`,
        :class:`~adapters.errors.TransientError` when surely nothing was deleted, and
        :class:`~adapters.errors.AmbiguousError` when the request went out and its answer was lost (read the post
        back with :meth:`read_results` to settle it).
        """
        raise self._unsupported("delete")

    async def comments_check(self) -> str | None:
        """What ``smm doctor`` says about this channel's comments where the network makes it worth a line (whether
        they can be read, and what is missing); None where :meth:`read_comments` says it all. Raises like
        :meth:`check`."""
        return None

    @property
    def read_requests(self) -> int:
        """How many requests this adapter's reads (results, audience, comments) have made so far, where one read
        may take several (pages of comments) against a limit in ``"request"`` units: the caller charges what a read
        took beyond :meth:`requests_for_action` to the rate limits. 0 where a read costs what that method says."""
        return 0

    def requests_for_action(self, action: Action) -> int:
        """How many API requests one ``action`` takes. They count against the same :meth:`rate_limits` as
        publishing: a limit in ``"request"`` units counts this many, a limit in ``"post"`` units counts one."""
        return 1

    def _unsupported(self, action: Action) -> Exception:
        from adapters.errors import NotSupported

        return NotSupported(self.unsupported.get(action) or f"{self.title} cannot do this ({action})")

    def rate_limits(self) -> tuple[RateLimit, ...]:
        """The rate limits this channel's publishes must respect, from the tightest scope to the widest."""
        return ()

    def quotas(self) -> tuple[Quota, ...]:
        """The post quotas of this channel (posts per window), which the scheduler plans around."""
        return ()

    def requests_for(self, post: OutgoingPost) -> int:
        """How many API requests publishing ``post`` takes (for limits counted in requests)."""
        return 1

    @property
    def lease_group(self) -> str:
        """Channels sharing a lease group are published by one daemon at a time (they share rate limits)."""
        limits = self.rate_limits()
        return limits[-1].scope if limits else f"{self.network}:{id(self)}"

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release the adapter's connections."""
