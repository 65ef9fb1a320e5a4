"""Group commit for the daemon's per-post writes: claims and outcomes that arrive together share one transaction.

At 50 posts a second each post costs two write transactions (its claim, its outcome); each transaction pays a
connection check-out (a ping on PostgreSQL), a commit (an fsync on both databases) and a hop to the writer
thread. The batcher queues the calls that arrive while a transaction is running and runs them all in the next
one, in arrival order (but see combined calls below). An idle daemon is not slowed down: a call that finds nothing
running starts at once.

Semantics do not change: a caller's awaitable completes only once its transaction has committed, so a claim is
still durable before the network is called and an outcome before it is reported. A call that raises (other than
the database being unavailable, which fails the whole batch as it would have failed each call) rolls the batch
back, and each of its calls is run again alone, so one bad call cannot fail or undo the others. Only functions
whose whole effect is in the session may be batched (they may be run twice, the first run rolled back).

Calls of a function that has a combined form (``combine``: ``fn -> many(session, [args, ...])``, such as
:data:`scheduler.store.COMBINED`) go to it together, at the place of the first of them, so they may run before
calls that arrived earlier: on PostgreSQL the claims of a batch are one statement, its outcomes another. That is
sound because the calls of one batch were made concurrently (any order of them is one they could have run in);
a caller that needs one write before another awaits the first.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from scheduler.db import Database
from scheduler.errors import DatabaseError

MAX_BATCH = 100
"""Calls per transaction at most (a SQLite batch holds the write lock while it runs)."""

P = ParamSpec("P")
R = TypeVar("R")

Combine = Mapping[Callable[..., object], Callable[[Session, list[Any]], Sequence[object]]]
"""A function's combined form: ``many(session, [args, ...])`` returns the values of ``fn(session, *args)`` for each
(the argument tuples differ from one function to another, hence ``Any``)."""


class _Call(NamedTuple):
    fn: Callable[..., object]
    args: tuple[object, ...]
    future: asyncio.Future[Any]


class WriteBatcher:
    """Runs ``fn(session, *args)`` calls on ``executor``, those that queue up together in one write transaction."""

    def __init__(
        self, db: Database, executor: Executor, max_batch: int = MAX_BATCH, combine: Combine | None = None
    ) -> None:
        self.db = db
        self.executor = executor
        self.max_batch = max_batch
        self.combine = dict(combine or {})
        self.pending: list[_Call] = []
        self.runner: asyncio.Task[None] | None = None
        #: Transactions run and the calls they carried: how far calls were batched (read by the tests).
        self.transactions = 0
        self.calls = 0

    async def call(self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(session, *args, **kwargs)`` in a write transaction shared with the calls queued beside it (a
        call with keyword arguments is never combined)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.pending.append(_Call(functools.partial(fn, **kwargs) if kwargs else fn, args, future))
        if self.runner is None or self.runner.done():
            self.runner = asyncio.create_task(self._run(), name="smm-write-batch")
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            try:
                outcomes = await loop.run_in_executor(self.executor, self._transaction, batch)
            except asyncio.CancelledError:
                for call in batch + self.pending:
                    call.future.cancel()
                raise
            except Exception as exc:  # the database is unavailable: every call of the batch fails with it
                for call in batch:
                    if not call.future.done():
                        call.future.set_exception(exc)
                continue
            for call, (value, error) in zip(batch, outcomes, strict=True):
                if call.future.done():  # its caller was cancelled; the write stands
                    continue
                if error is None:
                    call.future.set_result(value)
                else:
                    call.future.set_exception(error)

    def _transaction(self, batch: list[_Call]) -> list[tuple[object, Exception | None]]:
        """On the writer thread: the whole batch in one transaction, or, if a call raised, each call alone.
        Each call's outcome is its value, or the exception it raised."""
        self.calls += len(batch)
        if len(batch) > 1:
            try:
                self.transactions += 1
                with self.db.write() as session:
                    return [(value, None) for value in self._apply(session, batch)]
            except DatabaseError:
                raise
            except Exception:  # the batch is rolled back; each call runs alone below, to fail on its own
                pass
        outcomes: list[tuple[object, Exception | None]] = []
        for fn, args, _ in batch:
            try:
                self.transactions += 1
                with self.db.write() as session:
                    value = fn(session, *args)
            except Exception as exc:  # the call, or its commit
                outcomes.append((None, exc))
            else:
                outcomes.append((value, None))
        return outcomes

    def _apply(self, session: Session, batch: list[_Call]) -> list[object]:
        """Each call's value, the calls of a combined function run as one at the place of the first of them."""
        groups: dict[Callable[..., object] | int, list[int]] = {}
        for i, call in enumerate(batch):
            groups.setdefault(call.fn if call.fn in self.combine else i, []).append(i)
        values: list[object] = [None] * len(batch)
        for key, places in groups.items():
            if isinstance(key, int):
                values[key] = batch[key].fn(session, *batch[key].args)
                continue
            many = self.combine[key](session, [batch[i].args for i in places])
            for place, value in zip(places, many, strict=True):
                values[place] = value
        return values
