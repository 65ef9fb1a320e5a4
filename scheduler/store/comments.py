"""The comment watch's rows: the published deliveries to read comments on, the comments read (each stored once,
whoever reads it again), what ``smm comments`` has shown, and what a digest alert took."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from adapters.base import Comment
from scheduler.db import connection_of, rowcount
from scheduler.due import keeps_due_times
from scheduler.store.common import upsert
from scheduler.tables import Status, comments, deliveries

AUTHOR_MAX = 255
URL_MAX = 1024
REMOTE_ID_MAX = 128


@dataclass(frozen=True)
class Watched:
    """A published delivery whose comments are read: where, its id on the network, and the newest comment stored."""

    delivery_id: int
    post_id: int
    channel: str
    remote_id: str
    published_at: datetime
    newest: datetime | None


@dataclass(frozen=True)
class StoredComment:
    """A comment as stored, with the post and channel it was written on."""

    id: int
    post_id: int
    channel: str
    network: str
    remote_id: str
    author: str
    text: str
    written_at: datetime
    url: str | None
    seen_at: datetime
    shown: bool


@keeps_due_times
def watched(session: Session, channels: Sequence[str], since: datetime) -> list[Watched]:
    """The deliveries on ``channels`` published at or after ``since`` with a network id, newest first."""
    if not channels:
        return []
    newest = (
        select(comments.c.delivery_id, func.max(comments.c.written_at).label("newest"))
        .group_by(comments.c.delivery_id)
        .subquery()
    )
    rows = connection_of(session).execute(
        select(
            deliveries.c.id,
            deliveries.c.post_id,
            deliveries.c.channel,
            deliveries.c.remote_id,
            deliveries.c.published_at,
            newest.c.newest,
        )
        .outerjoin(newest, newest.c.delivery_id == deliveries.c.id)
        .where(
            deliveries.c.status == Status.PUBLISHED.value,
            deliveries.c.published_at >= since,
            deliveries.c.remote_id.is_not(None),
            deliveries.c.channel.in_(list(channels)),
        )
        .order_by(deliveries.c.published_at.desc())
    )
    return [Watched(r[0], r[1], r[2], str(r[3]), r[4], r[5]) for r in rows]


def _clean(text: str, limit: int | None = None) -> str:
    """PostgreSQL refuses NUL in text; a column's size is its limit."""
    text = text.replace("\x00", "")
    return text if limit is None else text[:limit]


@keeps_due_times
def save_comments(session: Session, delivery_id: int, found: Sequence[Comment], now: datetime) -> int:
    """Store the comments read on a delivery; one stored already (read again, or by another daemon) is left as it
    is. Returns how many were new."""
    conn = connection_of(session)
    new = 0
    for comment in found:
        row = {
            "delivery_id": delivery_id,
            "remote_id": _clean(comment.remote_id, REMOTE_ID_MAX),
            "author": _clean(comment.author, AUTHOR_MAX),
            "text": _clean(comment.text),
            "written_at": comment.created_at,
            "url": comment.url if comment.url and len(comment.url) <= URL_MAX else None,
            "seen_at": now,
        }
        new += len(conn.execute(_insert_new(conn.dialect.name, row)).all())
    return new


def _insert_new(dialect: str, row: dict[str, object]) -> ReturningInsert[int]:
    """INSERT ... ON CONFLICT (delivery, network id) DO NOTHING RETURNING id (a row back when it was new: psycopg's
    rowcount of such an INSERT is not reliable)."""
    unique = [comments.c.delivery_id, comments.c.remote_id]
    return upsert(dialect, comments).values(row).on_conflict_do_nothing(index_elements=unique).returning(comments.c.id)


Listing = tuple[int, int, str, str, str, str, str, datetime, str | None, datetime, datetime | None]


def _listing() -> Select[*Listing]:
    return select(
        comments.c.id,
        deliveries.c.post_id,
        deliveries.c.channel,
        deliveries.c.network,
        comments.c.remote_id,
        comments.c.author,
        comments.c.text,
        comments.c.written_at,
        comments.c.url,
        comments.c.seen_at,
        comments.c.shown_at,
    ).join(deliveries, deliveries.c.id == comments.c.delivery_id)


def _stored(rows: Iterable[Row[*Listing]]) -> list[StoredComment]:
    return [StoredComment(*r[:10], shown=r[10] is not None) for r in rows]


def listed(
    session: Session, *, since: datetime | None, channel: str | None, seen_too: bool, limit: int | None = None
) -> list[StoredComment]:
    """Comments newest first: written at or after ``since``, on ``channel``; ``seen_too``: those ``smm comments``
    showed before as well."""
    statement = _listing()
    if since is not None:
        statement = statement.where(comments.c.written_at >= since)
    if channel is not None:
        statement = statement.where(deliveries.c.channel == channel)
    if not seen_too:
        statement = statement.where(comments.c.shown_at.is_(None))
    statement = statement.order_by(comments.c.written_at.desc(), comments.c.id.desc()).limit(limit)
    return _stored(connection_of(session).execute(statement))


def mark_shown(session: Session, ids: Sequence[int], now: datetime) -> int:
    """``smm comments`` showed these comments: they are no longer new."""
    if not ids:
        return 0
    statement = update(comments).where(comments.c.id.in_(list(ids)), comments.c.shown_at.is_(None))
    return rowcount(connection_of(session).execute(statement.values(shown_at=now)))


@keeps_due_times
def give_back_digest(session: Session, key: str) -> int:
    """Give back the comments the digest ``key`` took (it could not be queued): the next digest takes them."""
    statement = update(comments).where(comments.c.digest == key).values(digest=None, digested_at=None)
    return rowcount(connection_of(session).execute(statement))


@keeps_due_times
def take_for_digest(session: Session, key: str, now: datetime) -> list[StoredComment]:
    """Take every comment no digest has taken yet for the digest ``key`` (unique per digest): two daemons sending
    digests at once each get their own comments, never the same one. Newest first."""
    conn = connection_of(session)
    conn.execute(update(comments).where(comments.c.digest.is_(None)).values(digest=key, digested_at=now))
    statement = _listing().where(comments.c.digest == key)
    return _stored(conn.execute(statement.order_by(comments.c.written_at.desc(), comments.c.id.desc())))
