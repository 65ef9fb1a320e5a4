"""Alembic environment: runs with a connection handed over by ``scheduler.migrate``, or with a URL from
``alembic -x url=...`` / ``$SMM_DATABASE_URL`` when a developer runs Alembic directly."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from scheduler.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write our UTC type as the plain column type it is stored as, so migrations do not import the models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        # SQLite does run DDL in transactions: one transaction for the whole upgrade, so that another process
        # never sees a half-migrated database (Alembic would otherwise commit after each revision there).
        transactional_ddl=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("SMM_DATABASE_URL")
    if not url:
        raise SystemExit("pass -x url=... or set SMM_DATABASE_URL (or use `smm db upgrade`)")
    engine = create_engine(url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; use `smm db upgrade`")
run_migrations_online()
