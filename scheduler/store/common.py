"""What the store's modules share: bind parameters of an aware time, the statuses as stored, an INSERT that can be
told what to do on a conflict, a post's further ids as stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BindParameter, Table, bindparam

from scheduler.tables import Status, UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

QUEUED = Status.QUEUED.value
PUBLISHING = Status.PUBLISHING.value


# The daemon's per-post statements are built once and run on the session's connection: building an ORM statement
# and running it through the Session costs several times as much CPU, and a post takes about a dozen of them.
# Bind names differ from column names: in an UPDATE those are reserved.
def at(name: str) -> BindParameter[datetime]:
    """A bind parameter that takes an aware time (and refuses a naive one)."""
    return bindparam(name, type_=UTCDateTime())


def upsert(dialect: str, table: Table) -> PgInsert | SqliteInsert:
    """An INSERT into ``table`` in the database's dialect, which takes ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (SQLite and PostgreSQL both have them, with the same arguments)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def stored_ids(ids: Sequence[str]) -> str | None:
    """A post's further ids (:attr:`adapters.base.PublishResult.more_ids`) as ``deliveries.more_remote_ids`` keeps
    them: space-separated, NULL for none."""
    return " ".join(ids) or None


def loaded_ids(stored: str | None) -> tuple[str, ...]:
    """The ids :func:`stored_ids` stored (none for a row published before they were kept)."""
    return tuple(stored.split()) if stored else ()
