"""Engines, sessions and the SQLite settings that let a CLI and the daemon write at once.

SQLite: WAL, ``busy_timeout``, foreign keys, ``synchronous=FULL``, and every write transaction opened with
``BEGIN IMMEDIATE`` (a deferred transaction that reads and then writes fails at once with "database is locked"
when another connection committed in between; an immediate one waits its turn). Reads use a second engine with
plain ``BEGIN`` so that they never wait for a writer. PostgreSQL needs none of this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from scheduler.errors import DatabaseError, NoDatabaseYet, SchemaMismatch

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

_Row = TypeVar("_Row", bound=tuple[Any, ...])

SCHEMA_HEAD = "0012"
"""The Alembic revision this version of the code expects (a test checks it is the migrations' head)."""


def _sqlite_listeners(engine: Engine, *, immediate: bool, busy_timeout_ms: int, cache_kib: int | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite, which would otherwise BEGIN lazily and DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        if not immediate:
            # Readers' temporary tables and sorts (smm report's) in memory, not in a temporary file.
            cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None (PostgreSQL, or an in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def connection_of(session: Session | Connection) -> Connection:
    """The Core connection behind an ORM session (in its transaction), or the connection itself."""
    return session if isinstance(session, Connection) else session.connection()


def rowcount(result: Result[_Row]) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return int(cast(CursorResult[_Row], result).rowcount)


def schema_revision(session: Session | Connection) -> str | None:
    """The Alembic revision the database is at, or None when it has no schema yet."""
    conn = connection_of(session)
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(revision) if revision is not None else None


class Database:
    """The database: a write engine, a read engine, and sessions scoped to one short transaction each.

    :meth:`write` and :meth:`read` give ORM sessions; :meth:`write_core` and :meth:`read_core` give Core
    connections, for the commands that must not pay for loading the ORM (``smm add``, ``smm import``).
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 30_000,
        pool_size: int = 5,
        before_first_write: Callable[[Database], None] | None = None,
        cache_kib: int | None = None,
    ) -> None:
        """``before_first_write`` runs once, before the first write transaction (the CLI creates the schema there,
        so that input refused before anything is written leaves no new database behind). Without it, a missing
        SQLite file is created now, owner-only. ``cache_kib``: SQLite's page cache per connection (its default is
        2 MiB; the operating system caches the file as well)."""
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.path = sqlite_path(url)
        self._before_first_write = before_first_write
        if self.is_sqlite:
            if self.path is not None and before_first_write is None:
                self._create_file(self.path)
            self.write_engine = create_engine(url, poolclass=NullPool if self.path is None else None)
            _sqlite_listeners(self.write_engine, immediate=True, busy_timeout_ms=busy_timeout_ms, cache_kib=cache_kib)
            self.read_engine = create_engine(url)
            _sqlite_listeners(self.read_engine, immediate=False, busy_timeout_ms=busy_timeout_ms, cache_kib=cache_kib)
        else:
            self.write_engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"connect_timeout": 10},
            )
            self.read_engine = self.write_engine
        self._sessions: tuple[sessionmaker[Session], sessionmaker[Session]] | None = None

    def _makers(self) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
        """The write and read session factories, made on first use: a command that needs no ORM never imports it."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            self._sessions = (
                sessionmaker(self.write_engine, expire_on_commit=False),
                sessionmaker(self.read_engine, expire_on_commit=False),
            )
        return self._sessions

    def create_file(self) -> None:
        """Create the SQLite file, readable by its owner only, if it does not exist."""
        if self.path is not None:
            self._create_file(self.path)

    @staticmethod
    def _create_file(path: Path) -> None:
        if path.exists():
            if path.is_dir():
                raise DatabaseError(f"database {path} is a directory")
            return
        if not path.parent.is_dir():
            raise DatabaseError(f"cannot create the database {path}: the directory {path.parent} does not exist")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise DatabaseError(f"cannot create the database {path}: {exc.strerror}") from None
        os.close(fd)

    def _first_write(self) -> None:
        if self._before_first_write is not None:
            hook, self._before_first_write = self._before_first_write, None
            hook(self)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        self._first_write()
        with self._errors(), self._makers()[0]() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; it never waits for a writer."""
        with self._errors(), self._makers()[1]() as session, session.begin():
            yield session

    @contextmanager
    def write_core(self) -> Iterator[Connection]:
        """A Core connection in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        self._first_write()
        with self._errors(), self.write_engine.begin() as conn:
            yield conn

    @contextmanager
    def read_core(self) -> Iterator[Connection]:
        """A Core connection for reading; it never waits for a writer."""
        with self._errors(), self.read_engine.begin() as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise DatabaseError(self._explain(exc)) from exc
        except DBAPIError as exc:
            # A plain DatabaseError (not one of its specific subclasses) is the file itself: SQLite's "file is not
            # a database" or "database disk image is malformed".
            if exc.connection_invalidated or type(exc) in (SADatabaseError, InterfaceError):
                raise DatabaseError(self._explain(exc)) from exc
            raise

    def _explain(self, exc: DBAPIError) -> str:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        where = str(self.path) if self.path else describe_url(self.url)
        if "readonly" in detail or "read-only" in detail:
            return f"database {where} is read-only: {detail} (check the file's and its folder's permissions)"
        if "unable to open" in detail:
            return f"cannot open the database {where}: {detail} (check that the folder exists and is writable)"
        if "not a database" in detail or "malformed" in detail:
            return f"database {where} is not an SQLite database, or it is damaged: {detail}"
        if "locked" in detail:
            return f"database {where} stayed locked by another process: {detail}"
        return f"database {where} is unavailable: {detail}"

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None when it has no schema yet."""
        with self.read_core() as conn:
            return schema_revision(conn)

    def check_schema(self, *, create: bool = True) -> None:
        """Make sure the schema is the one this code expects; create it in a new, empty database if allowed."""
        if create:
            self.create_file()
        revision = self.schema_revision()
        if revision == SCHEMA_HEAD:
            return
        if revision is None and create:
            from scheduler.migrate import upgrade

            upgrade(self)
            return
        if revision is None:
            raise NoDatabaseYet(f"database {self.where} has no schema yet: `smm add` or `smm db upgrade` creates it")
        raise SchemaMismatch(
            f"database {self.where} is at schema {revision}, this smm needs {SCHEMA_HEAD}: run `smm db upgrade`"
            " (or upgrade smm if the database is newer)"
        )

    def wake_daemon(self) -> None:
        """Tell a running daemon that the queue changed (best effort; its safety tick covers a miss)."""
        if self.path is not None:
            from scheduler.lock import poke

            poke(str(self.path))
        elif not self.is_sqlite:
            try:
                with self.write_engine.connect() as conn:
                    conn.execute(text("NOTIFY smm_wake"))
                    conn.commit()
            except DBAPIError:
                pass

    @property
    def where(self) -> str:
        return str(self.path) if self.path else describe_url(self.url)

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
