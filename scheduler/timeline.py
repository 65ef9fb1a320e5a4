"""A channel's timeline in SQL: what slot placement and the content mix read, and the one writer of posts.

Core statements over :mod:`scheduler.tables`, so that ``smm add`` and ``smm import`` never load the ORM; posts are
written by :func:`insert_posts` (every entry point: ``smm add``, ``smm import``, feeds). Each function takes either
a Core connection or an ORM session inside the caller's transaction.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple, TypeAlias, TypeVar, cast

from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from scheduler.db import connection_of, rowcount
from scheduler.tables import Status, UTCDateTime, deliveries, pool, posts
from scheduler.views import StoredDelivery, StoredPost

if TYPE_CHECKING:
    import sqlite3

    import psycopg
    from psycopg.rows import TupleRow
    from sqlalchemy.orm import Session

    Executor: TypeAlias = Connection | Session

IN_SEQUENCE = (Status.QUEUED, Status.PUBLISHING, Status.PUBLISHED, Status.UNKNOWN)
"""Statuses of the deliveries that make a channel's sequence for the content mix (sent, or to be sent)."""

_TAKEN = (Status.QUEUED, Status.PUBLISHING, Status.PUBLISHED)
"""Statuses whose deliveries occupy their time on the channel."""

_d = deliveries.c
_T = TypeVar("_T")


def lock_channel(conn: Executor, channel: str) -> None:
    """Serialise slot placement on ``channel`` until the transaction ends (SQLite's BEGIN IMMEDIATE already does)."""
    if connection_of(conn).dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:c))"), {"c": f"smm-channel:{channel}"})


@dataclass(frozen=True)
class ChannelTimes:
    """What slot placement needs to know about a channel's queue."""

    last_slotted: datetime | None
    occupied: frozenset[datetime]


def channel_times(conn: Executor, channel: str, now: datetime) -> ChannelTimes:
    """The last queue-placed delivery's time and the future times taken on ``channel`` after it."""
    last = conn.scalar(
        select(func.max(_d.due_at)).where(_d.channel == channel, _d.status == Status.QUEUED, _d.slotted.is_(True))
    )
    after = max(now, last) if last is not None else now
    return ChannelTimes(last, taken_times(conn, channel, after))


def taken_times(conn: Executor, channel: str, since: datetime, until: datetime | None = None) -> frozenset[datetime]:
    """Every time on ``channel`` from ``since`` on (before ``until``) that a delivery holds (queue-placed or
    explicit)."""
    query = select(_d.due_at).where(_d.channel == channel, _d.status.in_(_TAKEN), _d.due_at >= since)
    if until is not None:
        query = query.where(_d.due_at < until)
    return frozenset(conn.scalars(query))


class Slotted(NamedTuple):
    """A queue-placed delivery: which, when, its post, and when that post expires (None: never)."""

    id: int
    due_at: datetime
    post_id: int
    expiry: datetime | None


def slotted_queue(conn: Executor, channel: str, since: datetime) -> list[Slotted]:
    """The channel's queue-placed deliveries due at or after ``since``, in order."""
    rows = conn.execute(
        select(_d.id, _d.due_at, _d.post_id, _d.delete_at)
        .where(_d.channel == channel, _d.status == Status.QUEUED, _d.slotted.is_(True), _d.due_at >= since)
        .order_by(_d.due_at, _d.id)
    )
    return [Slotted(r.id, r.due_at, r.post_id, r.delete_at) for r in rows]


def explicit_times(conn: Executor, channel: str, since: datetime) -> list[datetime]:
    """Times on ``channel`` after ``since`` taken by deliveries that keep their time (not queue-placed)."""
    return list(
        conn.scalars(
            select(_d.due_at).where(
                _d.channel == channel, _d.status.in_(_TAKEN), _d.slotted.is_(False), _d.due_at >= since
            )
        )
    )


class MixEntry(NamedTuple):
    """A delivery as the content mix sees it: when, which (for ties), and whether its post is commercial."""

    due_at: datetime
    id: int
    commercial: bool


def _mix_select(channel: str) -> Select[tuple[datetime, int, bool]]:
    return (
        select(_d.due_at, _d.id, (posts.c.category == "commercial").label("commercial"))
        .join(posts, posts.c.id == _d.post_id)
        .where(_d.channel == channel, _d.status.in_(IN_SEQUENCE))
    )


def mix_before(conn: Executor, channel: str, at: datetime, count: int, *, inclusive: bool = False) -> list[MixEntry]:
    """The last ``count`` deliveries of ``channel`` before ``at`` (or at it, with ``inclusive``), in order."""
    if count <= 0:
        return []
    bound = _d.due_at <= at if inclusive else _d.due_at < at
    rows = conn.execute(_mix_select(channel).where(bound).order_by(_d.due_at.desc(), _d.id.desc()).limit(count)).all()
    return [MixEntry(r.due_at, r.id, bool(r.commercial)) for r in reversed(rows)]


def mix_from(
    conn: Executor,
    channel: str,
    at: datetime,
    count: int | None = None,
    *,
    inclusive: bool = True,
    until: datetime | None = None,
) -> list[MixEntry]:
    """The deliveries of ``channel`` from ``at`` (or after it, without ``inclusive``) on, at most ``count``."""
    query = _mix_select(channel).where(_d.due_at >= at if inclusive else _d.due_at > at)
    if until is not None:
        query = query.where(_d.due_at <= until)
    query = query.order_by(_d.due_at, _d.id)
    if count is not None:
        query = query.limit(count)
    return [MixEntry(r.due_at, r.id, bool(r.commercial)) for r in conn.execute(query)]


def move_delivery(conn: Executor, delivery_id: int, due_at: datetime, now: datetime, *, slotted: bool) -> bool:
    """Give a queued delivery a new time; False if it is no longer queued."""
    result = conn.execute(
        update(deliveries)
        .where(_d.id == delivery_id, _d.status == Status.QUEUED)
        # A post already handed to its network for the old time must be deleted there first (native_at cleared).
        .values(due_at=due_at, next_attempt_at=due_at, slotted=slotted, native_at=None, updated_at=now)
    )
    return bool(rowcount(result))


EXPIRED_NOTE = "cancelled: the post expired before it went out"


def expire_queued(
    conn: Executor, delivery_ids: Sequence[int], now: datetime, *, by: datetime | None = None
) -> list[tuple[int, str]]:
    """Cancel the queued deliveries ``delivery_ids`` whose post expires at or before ``by`` (default: ``now``): it
    expired before they went out, or a move would put them past their expiry. Their ``(post id, channel)``."""
    if not delivery_ids:
        return []
    rows = conn.execute(
        update(deliveries)
        .where(_d.id.in_(list(delivery_ids)), _d.status == Status.QUEUED, _d.delete_at <= (by or now))
        .values(status=Status.CANCELLED.value, next_attempt_at=None, note=EXPIRED_NOTE, updated_at=now)
        .returning(_d.post_id, _d.channel)
    )
    return [(post_id, channel) for post_id, channel in rows]


class NewPostRow(NamedTuple):
    """A post to insert and its deliveries ``(channel, network, due_at, slotted)``; ``pool``: the channels whose
    evergreen pool it goes into instead (``smm add --evergreen``)."""

    text: str
    link: str | None
    category: str
    media: Sequence[Mapping[str, object]]
    plan: Sequence[tuple[str, str, datetime, bool]]
    campaign: str | None = None
    utm_content: str | None = None
    variants: Mapping[str, str] | None = None
    pool: Sequence[str] = ()
    expiry: Mapping[str, datetime] | None = None
    """When the daemon deletes the post from each channel (``--expire-at``), by channel name."""


class NewDelivery(NamedTuple):
    """A delivery of a post already stored: an evergreen post's use (``pool_use``, the how-manieth on the channel)."""

    post_id: int
    channel: str
    network: str
    due_at: datetime
    slotted: bool
    pool_use: int | None = None


BULK_CACHE_KIB = 64 * 1024
"""SQLite's page cache for a bulk insert's transaction (see :func:`insert_posts`)."""
_BULK = 1000
"""Rows from which :func:`insert_posts` enlarges SQLite's page cache."""
_BATCH = 5000
_POST_COLUMNS = ("id", "text", "link", "category", "media", "created_at", "campaign", "utm_content", "variants")
_DELIVERY_COLUMNS = (
    "post_id",
    "channel",
    "network",
    "status",
    "due_at",
    "slotted",
    "next_attempt_at",
    "attempts",
    "key",
    "updated_at",
    "pool_use",
)
_DeliveryRow = tuple[int, str, str, datetime, bool, str, int | None]


def insert_post(
    conn: Executor,
    *,
    text: str,
    link: str | None,
    category: str,
    media: Sequence[Mapping[str, object]],
    now: datetime,
    plan: Sequence[tuple[str, str, datetime, bool]],
    campaign: str | None = None,
    utm_content: str | None = None,
    variants: Mapping[str, str] | None = None,
    pool: Sequence[str] = (),
    expiry: Mapping[str, datetime] | None = None,
) -> int:
    """Insert a post and its deliveries ``(channel, network, due_at, slotted)`` (or its places in the evergreen
    ``pool`` of those channels) and their ``expiry``; returns the post's id."""
    row = NewPostRow(text, link, category, media, plan, campaign, utm_content, variants, pool, expiry)
    return insert_posts(conn, [row], now)[0]


def insert_posts(
    conn: Executor, rows: Sequence[NewPostRow], now: datetime, tick: Callable[[int], None] | None = None
) -> list[int]:
    """Insert posts and their deliveries (queued), or their places in evergreen pools, in batches; returns the
    posts' ids in order.

    The one way posts and deliveries are written (:func:`insert_deliveries` adds a stored post's). SQLAlchemy's
    per-row machinery would take most of a bulk import's time, so the rows go straight to the driver: on SQLite
    ``executemany``, with the columns' own SQLAlchemy conversions and post ids counted on from the largest (safe:
    write transactions are ``BEGIN IMMEDIATE``); on PostgreSQL ``COPY``, with ids taken from the posts' sequence.
    ``tick`` is told of each batch written.
    """
    connection = connection_of(conn)
    with _driver_errors(connection, "INSERT INTO posts"):
        ids = _insert(connection, rows, now, tick)
    places = [
        {"post_id": post_id, "channel": channel, "added_at": now}
        for row, post_id in zip(rows, ids, strict=True)
        for channel in row.pool
    ]
    if places:
        connection.execute(insert(pool), places)
    # Few posts expire: their deliveries get the time in one statement afterwards, off the bulk writers' path.
    expiring = [
        {"pid": post_id, "ch": channel, "expiry": at}
        for row, post_id in zip(rows, ids, strict=True)
        for channel, at in (row.expiry or {}).items()
    ]
    if expiring:
        connection.execute(_EXPIRE, expiring)
    return ids


_EXPIRE = (
    update(deliveries)
    .where(_d.post_id == bindparam("pid"), _d.channel == bindparam("ch"))
    .values(delete_at=bindparam("expiry", type_=UTCDateTime()))
)


def insert_deliveries(conn: Executor, rows: Sequence[NewDelivery], now: datetime) -> None:
    """Insert queued deliveries of posts already stored (an evergreen post's uses), as :func:`insert_posts` does."""
    connection = connection_of(conn)
    with _driver_errors(connection, "INSERT INTO deliveries"):
        keys = _keys()
        _writer(connection, now).deliveries(
            [(r.post_id, r.channel, r.network, r.due_at, r.slotted, next(keys), r.pool_use) for r in rows]
        )


@contextmanager
def _driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """Errors of the database driver as SQLAlchemy would have raised them, so they read the same on every path."""
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc


def _writer(connection: Connection, now: datetime) -> _Writer:
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        return _PostgresWriter(cast("psycopg.Connection[TupleRow]", driver), now)
    if connection.dialect.name != "sqlite":  # pragma: no cover - the config accepts only SQLite and PostgreSQL
        raise ValueError(f"posts are written to SQLite or PostgreSQL, not {connection.dialect.name}")
    return _SqliteWriter(connection, cast("sqlite3.Connection", driver), now)


def _insert(
    connection: Connection, rows: Sequence[NewPostRow], now: datetime, tick: Callable[[int], None] | None
) -> list[int]:
    if connection.dialect.name != "sqlite" or len(rows) < _BULK:
        return _write(_writer(connection, now), rows, tick)
    # Every delivery goes into eight indexes, at random places in the per-channel ones: with SQLite's default
    # 2 MiB page cache, a bulk insert into a big queue re-reads and re-writes the same index pages over and over.
    # The cache is the connection's: set back afterwards.
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        return _write(_writer(connection, now), rows, tick)
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


def _keys() -> Iterator[str]:
    """Idempotency keys: in order (a random prefix per call, then a counter), they go into the unique index faster
    than random ones."""
    prefix = os.urandom(12).hex()
    return (f"{prefix}{n:08x}" for n in range(1 << 32))


def _write(writer: _Writer, rows: Sequence[NewPostRow], tick: Callable[[int], None] | None) -> list[int]:
    keys = _keys()
    ids: list[int] = []
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        batch = writer.posts(chunk)
        writer.deliveries(
            [
                (post_id, channel, network, due_at, slotted, next(keys), None)
                for row, post_id in zip(chunk, batch, strict=True)
                for channel, network, due_at, slotted in row.plan
            ]
        )
        ids += batch
        if tick is not None:
            tick(len(chunk))
    return ids


class _Writer(ABC):
    """Bulk inserts through the database driver (SQLite executemany, PostgreSQL COPY)."""

    @abstractmethod
    def posts(self, rows: Sequence[NewPostRow]) -> list[int]:
        """Insert posts; returns their ids in order."""

    @abstractmethod
    def deliveries(self, values: list[_DeliveryRow]) -> None:
        """Insert deliveries."""


def _sqlite_time(value: datetime) -> str:
    """An aware datetime as SQLAlchemy stores it in SQLite (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class _SqliteWriter(_Writer):
    def __init__(self, conn: Connection, driver: sqlite3.Connection, now: datetime) -> None:
        def converter(column: ColumnElement[_T]) -> Callable[[_T], object]:
            process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            return process or (lambda value: value)

        self.json, self.time, self.flag = converter(posts.c.media), converter(_d.due_at), converter(_d.slotted)
        if self.time(now) == _sqlite_time(now):
            self.time = _sqlite_time  # the same text, several times faster
        self.created = self.time(now)
        self.empty_media, self.no_variants = self.json([]), self.json(None)
        self.cursor = driver.cursor()
        self.next_id = (conn.execute(select(func.max(posts.c.id))).scalar() or 0) + 1

    def posts(self, rows: Sequence[NewPostRow]) -> list[int]:
        ids = list(range(self.next_id, self.next_id + len(rows)))
        self.next_id += len(rows)
        self.cursor.executemany(
            f"INSERT INTO posts ({', '.join(_POST_COLUMNS)}) VALUES ({', '.join('?' * len(_POST_COLUMNS))})",
            [
                (
                    post_id,
                    row.text,
                    row.link,
                    row.category,
                    self.json(row.media) if row.media else self.empty_media,
                    self.created,
                    row.campaign,
                    row.utm_content,
                    self.json(dict(row.variants)) if row.variants else self.no_variants,
                )
                for post_id, row in zip(ids, rows, strict=True)
            ],
        )
        return ids

    def deliveries(self, values: list[_DeliveryRow]) -> None:
        queued, created = Status.QUEUED.value, self.created
        slotted, explicit = self.flag(True), self.flag(False)
        rows = []
        for post_id, channel, network, due_at, is_slotted, key, use in values:
            due = self.time(due_at)
            rows.append(
                (post_id, channel, network, queued, due, slotted if is_slotted else explicit, due, 0, key, created, use)
            )
        marks = ", ".join("?" * len(_DELIVERY_COLUMNS))
        self.cursor.executemany(f"INSERT INTO deliveries ({', '.join(_DELIVERY_COLUMNS)}) VALUES ({marks})", rows)


class _PostgresWriter(_Writer):
    def __init__(self, driver: psycopg.Connection[TupleRow], now: datetime) -> None:
        self.driver = driver
        self.now = now

    def posts(self, rows: Sequence[NewPostRow]) -> list[int]:
        with self.driver.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('posts', 'id')) FROM generate_series(1, %s)", (len(rows),)
            )
            ids = [int(r[0]) for r in cursor.fetchall()]
            with cursor.copy(f"COPY posts ({', '.join(_POST_COLUMNS)}) FROM STDIN") as copy:
                for post_id, row in zip(ids, rows, strict=True):
                    copy.write_row(
                        (
                            post_id,
                            row.text,
                            row.link,
                            row.category,
                            json.dumps(row.media),
                            self.now,
                            row.campaign,
                            row.utm_content,
                            json.dumps(dict(row.variants)) if row.variants else None,
                        )
                    )
        return ids

    def deliveries(self, values: list[_DeliveryRow]) -> None:
        queued, now = Status.QUEUED.value, self.now
        with (
            self.driver.cursor() as cursor,
            cursor.copy(f"COPY deliveries ({', '.join(_DELIVERY_COLUMNS)}) FROM STDIN") as copy,
        ):
            for post_id, channel, network, due_at, slotted, key, use in values:
                copy.write_row((post_id, channel, network, queued, due_at, slotted, due_at, 0, key, now, use))


def post_rows(conn: Executor, post_id: int) -> tuple[StoredPost, list[StoredDelivery]]:
    """A post's row and its deliveries' rows (in id order), read back as the database holds them."""
    post: StoredPost = conn.execute(select(posts).where(posts.c.id == post_id)).one()
    rows: list[StoredDelivery] = list(conn.execute(select(deliveries).where(_d.post_id == post_id).order_by(_d.id)))
    return post, rows
