"""Whether the database takes a write, asked before the daemon starts."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def probe_write(session: Session) -> None:
    """Fail now, with the reason, if the database cannot be written (a read-only file, a read-only replica)."""
    session.execute(text("UPDATE alembic_version SET version_num = version_num"))
