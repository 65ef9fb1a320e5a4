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
