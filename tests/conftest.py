"""Shared fixtures: a database per test on SQLite and on PostgreSQL, configs, and the CLI run in-process.

Tests that take the ``db_url`` fixture run twice: on a fresh SQLite file and on a fresh schema of the PostgreSQL
named by ``$SMM_TEST_POSTGRES_URL`` (default: the local server on 127.0.0.1:5432, database ``test``). When that
server is unreachable the PostgreSQL runs are skipped with the reason, unless ``$SMM_REQUIRE_POSTGRES=1`` (CI),
which makes them fail instead. ``--db sqlite`` or ``--db postgresql`` runs one backend only.
"""

from __future__ import annotations

import io
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from scheduler.db import Database

PG_URL = os.environ.get("SMM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("all", "sqlite", "postgresql"),
        default=os.environ.get("SMM_TEST_DB", "all"),
        help="which database backends to run the database tests on (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--db")
        backends = ["sqlite", "postgresql"] if choice == "all" else [choice]
        metafunc.parametrize("backend", backends, indirect=False)


def postgres_available() -> str | None:
    """None when the test PostgreSQL answers, else why not."""
    if "error" not in _pg_state:
        try:
            import psycopg

            conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(conninfo, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["error"] = None
        except Exception as exc:  # any failure means "not available"
            _pg_state["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return _pg_state["error"]


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on the test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'smm.db'}"
        return
    yield from _postgres_schema()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A database at the current schema on the test's backend (a module may define its own ``db``)."""
    from scheduler.db import Database

    database = Database(db_url)
    database.check_schema()
    yield database
    database.dispose()


@pytest.fixture
def postgres_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema, for tests of what only PostgreSQL does (several daemons, its locks)."""
    if pytestconfig.getoption("--db") == "sqlite":
        pytest.skip("--db sqlite")
    yield from _postgres_schema()


def _postgres_schema() -> Iterator[str]:
    error = postgres_available()
    if error is not None:
        if os.environ.get("SMM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unavailable at {PG_URL}: {error}")
        pytest.skip(f"PostgreSQL unavailable at {PG_URL}: {error}")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _pg_schema_url(schema)
    finally:
        from sqlalchemy import create_engine

        # Close pooled connections held by the code under test before dropping the schema.
        create_engine(PG_URL).dispose()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query ILIKE %s",
                (f"%{schema}%",),
            )
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'smm.db'}"


_PROCESS_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


@pytest.fixture(autouse=True)
def _signals_as_they_were() -> Iterator[None]:
    """A daemon run in-process leaves the process as a daemon leaves its own at exit (its signals ignored); every
    process a later test starts would inherit that. Each test starts with the handlers and mask pytest had."""
    handlers = {signum: signal.getsignal(signum) for signum in _PROCESS_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's config, state directory or systemd variables."""
    for name in (
        "SMM_CONFIG",
        "STATE_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "NOTIFY_SOCKET",
        "JOURNAL_STREAM",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "SMM_CRASH_AT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def write_config(path: Path, db_url: str, body: str = "", *, outbox: bool = True, extra_top: str = "") -> Path:
    """Write a config file with the database, an optional outbox channel and ``body`` (more TOML)."""
    text = f'{extra_top}\n[database]\nurl = "{db_url}"\n\n'
    if outbox:
        text += f'[[channels]]\nname = "outbox"\nnetwork = "outbox"\npath = "{path.parent / "outbox"}"\n\n'
    text += body
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    """A config with one outbox channel on the test's database."""
    return write_config(tmp_path / "config.toml", db_url)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, config: Path | None = None) -> CliResult:
    """Run ``smm`` in-process; returns the exit code and what it printed."""
    from scheduler.cli import main

    argv = (["--config", str(config)] if config else []) + list(args)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Any:
    return run_cli


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def make_png(path: Path, width: int = 1, height: int = 1) -> Path:
    """A valid PNG of the given size (grey pixels)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path
