"""The migrations build exactly the models' schema, from an installed package, and come back down."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from scheduler.db import SCHEMA_HEAD, Database
from scheduler.migrate import downgrade, head_revision, upgrade
from scheduler.models import Base


def test_head_matches_the_code() -> None:
    assert head_revision() == SCHEMA_HEAD


def test_upgrade_matches_models_then_downgrades(db_url: str) -> None:
    db = Database(db_url)
    assert db.schema_revision() is None
    assert upgrade(db) == (None, SCHEMA_HEAD)
    with db.write_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert upgrade(db) == (SCHEMA_HEAD, SCHEMA_HEAD)
    assert downgrade(db, "base") == (SCHEMA_HEAD, None)
    with db.write_engine.connect() as conn:
        assert [t for t in conn.dialect.get_table_names(conn) if t != "alembic_version"] == []
    db.dispose()


def test_partial_indexes_are_partial_on_both_databases(db_url: str) -> None:
    """compare_metadata does not compare index conditions, and the tables name only SQLite's (see tables.py): the
    migrations must make both indexes partial on every database, or a second open attempt could be written."""
    from sqlalchemy import text

    db = Database(db_url)
    upgrade(db)
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        if db.is_sqlite
        else "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    )
    with db.write_engine.connect() as conn:
        definitions = {name: sql for name, sql in conn.execute(text(query)) if sql}
    db.dispose()
    assert "WHERE" in definitions["uq_attempts_open"].upper()
    assert "outcome IS NULL" in definitions["uq_attempts_open"].replace("(", "").replace(")", "")
    assert "native_id IS NOT NULL" in definitions["ix_deliveries_native"].replace("(", "").replace(")", "")


def published_history(
    db: Database,
    *,
    channel: str,
    network: str | None = None,
    delivery: dict[str, str] | None = None,
    attempt: dict[str, str] | None = None,
) -> None:
    """One post, published once on ``channel``, written in SQL at whatever revision ``db`` is: ``delivery`` and
    ``attempt`` add the columns (and SQL values) that revision has beyond the first one's."""
    from sqlalchemy import text

    def insert(table: str, values: dict[str, str]) -> str:
        return f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(values.values())})"

    deliveries = {
        "id": "1", "post_id": "1", "channel": f"'{channel}'", "network": f"'{network or channel}'",
        "status": "'published'", "due_at": ":t", "slotted": "false", "attempts": "1", "key": "'k1'",
        "updated_at": ":t",
    }  # fmt: skip
    attempts = {"id": "1", "delivery_id": "1", "number": "1", "owner": "'me'", "started_at": ":t"}
    at = {"t": "2026-11-01 10:00:00"}
    with db.write_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO posts (id, text, category, media, created_at) VALUES (1, 'p', 'news', '[]', :t)"), at
        )
        conn.execute(text(insert("deliveries", deliveries | (delivery or {}))), at)
        conn.execute(text(insert("attempts", attempts | {"outcome": "'published'"} | (attempt or {}))), at)


def test_upgrading_a_database_with_posts_keeps_every_row(db_url: str) -> None:
    """Batch migrations on SQLite rebuild tables; with foreign keys on, dropping the old deliveries table would
    cascade-delete every attempt. The history must survive every upgrade."""
    from sqlalchemy import text

    db = Database(db_url)
    upgrade(db, "0001")
    published_history(db, channel="outbox", delivery={"next_attempt_at": ":t"})
    assert upgrade(db) == ("0001", SCHEMA_HEAD)
    with db.write_engine.connect() as conn:
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("posts", "deliveries", "attempts")]
        assert counts == [1, 1, 1]
        if db.is_sqlite:
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


def test_0012_keeps_published_rows_without_further_ids_and_comes_back_down(db_url: str) -> None:
    """A delivery published before 0012 has no further message ids (its first message is what deletion takes
    down); going back to 0011 keeps the row with its first id."""
    from sqlalchemy import text

    db = Database(db_url)
    upgrade(db, "0011")
    published_history(
        db,
        channel="tg",
        network="telegram",
        delivery={"published_at": ":t", "remote_id": "'41'"},
        attempt={"remote_id": "'41'"},
    )
    assert upgrade(db) == ("0011", SCHEMA_HEAD)
    with db.write_engine.begin() as conn:
        assert conn.execute(text("SELECT remote_id, more_remote_ids FROM deliveries")).one() == ("41", None)
        conn.execute(text("UPDATE deliveries SET more_remote_ids = '42 43'"))
    assert downgrade(db, "0011") == (SCHEMA_HEAD, "0011")
    with db.write_engine.connect() as conn:
        assert conn.execute(text("SELECT id, remote_id, status FROM deliveries")).one() == (1, "41", "published")
        assert conn.execute(text("SELECT count(*) FROM attempts")).scalar() == 1  # a rebuilt table cascades nothing
        columns = {c["name"] for c in conn.dialect.get_columns(conn, "deliveries")}
        assert "more_remote_ids" not in columns and "remote_id" in columns
    db.dispose()
