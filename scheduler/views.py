"""Posts and deliveries in the documented JSON shape (``--json``), from ORM objects or Core rows alike.

Imports nothing heavy: every command's output goes through here, ``smm --version`` included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NotRequired, Protocol, TypeAlias, TypedDict

from scheduler.timefmt import format_iso

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
"""A value as ``json.dumps`` writes it, for JSON whose shape is a dataclass's (``smm report --json``); the shapes
built here key by key are :class:`typing.TypedDict`s."""


def plural(n: int, one: str, many: str) -> str:
    """``1 post``, ``2 posts``, ``10,000 posts``."""
    return f"{n:,} {one if n == 1 else many}"


def some_of(names: Sequence[str], limit: int = 20, total: int | None = None) -> str:
    """``a, b, c``; past ``limit`` names, the first ``limit`` and ``and 2,030 more`` (a log line for an agency's
    thousands of channels stays one readable line). ``total``: how many there are, when ``names`` are only the
    first of them."""
    total = len(names) if total is None else total
    if total <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {total - limit:,} more"


def configured(names: Iterable[str]) -> str:
    """``configured: a, b`` for an error about a channel name that is not one (the first 20 of an agency's)."""
    return f"configured: {some_of(list(names)) or 'none'}"


def iso(value: datetime | None) -> str | None:
    """``2026-03-03T07:00:00Z`` (:func:`~scheduler.timefmt.format_iso`), or None."""
    return format_iso(value) if value is not None else None


class StoredDelivery(Protocol):
    """The columns of a delivery a view shows: a :class:`scheduler.models.Delivery` or a row of the table."""

    @property
    def channel(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def attempts(self) -> int: ...
    @property
    def published_at(self) -> datetime | None: ...
    @property
    def remote_id(self) -> str | None: ...
    @property
    def remote_url(self) -> str | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def next_attempt_at(self) -> datetime | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def native_id(self) -> str | None: ...
    @property
    def native_at(self) -> datetime | None: ...
    @property
    def delete_at(self) -> datetime | None: ...
    @property
    def deleted_at(self) -> datetime | None: ...
    @property
    def pool_use(self) -> int | None: ...


class StoredPost(Protocol):
    """The columns of a post a view shows: a :class:`scheduler.models.Post` or a row of the table."""

    @property
    def id(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def link(self) -> str | None: ...
    @property
    def category(self) -> str: ...
    @property
    def media(self) -> Sequence[Mapping[str, object]]: ...
    @property
    def created_at(self) -> datetime: ...


class AttemptView(TypedDict):
    """One attempt of a delivery (``smm show --json`` only)."""

    attempt: int
    started_at: str | None
    finished_at: str | None
    outcome: str | None
    error: str | None
    kind: str


class DeliveryView(TypedDict):
    """A delivery in the documented JSON shape (docs/json.md); keys in their output order."""

    channel: str
    network: str
    status: str
    due_at: str | None
    attempts: int
    published_at: str | None
    remote_id: str | None
    remote_url: str | None
    last_error: str | None
    next_attempt_at: str | None
    note: str | None
    network_scheduled_at: str | None
    delete_at: str | None
    deleted_at: str | None
    pool_use: int | None
    history: NotRequired[list[AttemptView]]


class MediaView(TypedDict):
    """A media file of a post as the JSON shows it."""

    name: object
    sha256: object
    mime: object
    size: object
    width: object
    height: object


class PostView(TypedDict):
    """A post in the documented JSON shape (docs/json.md); keys in their output order."""

    id: int
    text: str
    link: str | None
    category: str
    media: list[MediaView]
    created_at: str | None
    deliveries: list[DeliveryView]
    pool: NotRequired[list[str]]


def delivery_view(d: StoredDelivery) -> DeliveryView:
    """A delivery (an ORM object or a row of the deliveries table) as JSON-ready data."""
    return {
        "channel": d.channel,
        "network": d.network,
        "status": d.status,
        "due_at": iso(d.due_at),
        "attempts": d.attempts,
        "published_at": iso(d.published_at),
        "remote_id": d.remote_id,
        "remote_url": d.remote_url,
        "last_error": d.last_error,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "queued" else None,
        "note": d.note,
        "network_scheduled_at": iso(d.native_at) if d.native_id and d.native_at else None,
        "delete_at": iso(d.delete_at),
        "deleted_at": iso(d.deleted_at),
        "pool_use": d.pool_use,
    }


def media_view(m: Mapping[str, object]) -> MediaView:
    """A stored media item's public fields (the store's own, such as its file extension, stay out)."""
    return {
        "name": m.get("name"),
        "sha256": m.get("sha256"),
        "mime": m.get("mime"),
        "size": m.get("size"),
        "width": m.get("width"),
        "height": m.get("height"),
    }


def post_view(post: StoredPost, deliveries: Sequence[StoredDelivery]) -> PostView:
    """A post in the documented JSON shape."""
    return {
        "id": post.id,
        "text": post.text,
        "link": post.link,
        "category": post.category,
        "media": [media_view(m) for m in post.media],
        "created_at": iso(post.created_at),
        "deliveries": [delivery_view(d) for d in deliveries],
    }
