"""Applying the Alembic migrations shipped in the ``migrations`` package (works from an installed wheel)."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from scheduler import __version__
from scheduler.errors import DatabaseError, SchemaMismatch

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

_PG_MIGRATION_LOCK = 0x534D4D01  # any constant: serialises migrations of several daemons on one PostgreSQL


class Migratable(Protocol):
    """The database a migration runs on: a :class:`scheduler.db.Database`, which creates a new database's schema
    through this module (a protocol here, so that this module does not import it back)."""

    is_sqlite: bool
    write_engine: Engine

    @property
    def where(self) -> str: ...

    def schema_revision(self) -> str | None: ...


def alembic_config() -> AlembicConfig:
    """An Alembic config pointing at the packaged migrations."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("migrations")))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(db: Migratable, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to ``revision``; returns the revisions before and after."""
    return _run(db, "upgrade", revision)


def downgrade(db: Migratable, revision: str) -> tuple[str | None, str | None]:
    return _run(db, "downgrade", revision)


def _run(db: Migratable, direction: str, revision: str) -> tuple[str | None, str | None]:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    before = db.schema_revision()
    cfg = alembic_config()
    if before is not None:
        try:
            ScriptDirectory.from_config(cfg).get_revision(before)
        except CommandError:
            raise SchemaMismatch(
                f"database {db.where} is at schema {before}, which this smm ({__version__}) does not know: "
                "a newer smm has upgraded it; upgrade smm"
            ) from None
    with db.write_engine.connect() as conn:
        if db.is_sqlite:
            # SQLite rebuilds a table to alter it: with foreign keys on, dropping the old table would delete the
            # rows that reference it (ON DELETE CASCADE). The pragma only takes effect outside a transaction.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        else:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, revision)
            if db.is_sqlite and conn.execute(text("PRAGMA foreign_key_check")).fetchall():
                conn.rollback()
                raise DatabaseError(f"database {db.where}: {direction} to schema {revision} would break references")
            conn.commit()
        except DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            raise DatabaseError(f"database {db.where}: {direction} to schema {revision} failed: {detail}") from exc
        finally:
            if db.is_sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
            else:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
    return before, db.schema_revision()
