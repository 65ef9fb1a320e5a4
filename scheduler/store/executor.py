"""Store calls off the event loop, typed: ``await store.write(fn, *args)`` is checked against ``fn(session, *args)``.

Every store function takes a :class:`~sqlalchemy.orm.Session` first and its own arguments after. :class:`Executor`
runs one in a write transaction on the writer thread, or in a read transaction on a reader thread, and returns
its value with its type: ``Callable[Concatenate[Session, P], R]`` with ``*args: P.args`` is what lets mypy check
the arguments of a call made through it. :class:`Write` is the same call as a parameter type, for code that is
handed the daemon's writer (its group commit, or a call that also wakes the daemon) rather than an executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.orm import Session

from scheduler.db import Database

P = ParamSpec("P")
R = TypeVar("R")


class Write(Protocol):
    """Runs ``fn(session, *args, **kwargs)`` in a write transaction and returns its value once committed."""

    def __call__(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Run ``fn`` with a session in a write transaction."""
        ...


class Executor:
    """Runs store functions for asyncio code: writes on ``writer`` (one thread on SQLite), reads on ``reader``."""

    def __init__(
        self, db: Database, writer: concurrent.futures.Executor, reader: concurrent.futures.Executor | None = None
    ) -> None:
        self.db = db
        self.writer = writer
        self.reader = reader or writer

    async def write(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(session, *args, **kwargs)`` in one write transaction, committed before this returns."""
        work = functools.partial(self.write_now, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.writer, work)

    async def read(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(session, *args, **kwargs)`` in a read transaction (it never waits for a writer)."""
        work = functools.partial(self.read_now, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.reader, work)

    def write_now(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """On the calling thread: ``fn`` in one write transaction."""
        with self.db.write() as session:
            return fn(session, *args, **kwargs)

    def read_now(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """On the calling thread: ``fn`` in one read transaction."""
        with self.db.read() as session:
            return fn(session, *args, **kwargs)
