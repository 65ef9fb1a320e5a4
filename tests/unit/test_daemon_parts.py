"""The daemon's parts, each built alone, without a process: the timer (APScheduler through its public API), what a
look reads ahead, the writes that do or do not end it, and the cycle around a look."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler import repository as repo
from scheduler import store, watch
from scheduler.config import load_config
from scheduler.daemon.cycle import Cycle
from scheduler.daemon.health import DatabaseHealth, Progress, WarnOnce
from scheduler.daemon.look import Found, Look, ReadAhead
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import WAKE, Timer
from scheduler.db import Database
from scheduler.due import may_change_due_times
from scheduler.errors import DatabaseError
from scheduler.sdnotify import Notifier
from tests.conftest import write_config

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def test_the_timer_runs_its_jobs_on_the_loop_in_time_order_with_apschedulers_own_class() -> None:
    async def scenario() -> list[str]:
        ran: list[str] = []
        done = asyncio.Event()
        timer = Timer(lambda: datetime.now(UTC), lambda: False)
        timer.start()
        assert type(timer.scheduler) is AsyncIOScheduler

        def job(name: str) -> object:
            async def run() -> None:
                ran.append(name)
                if len(ran) == 3:
                    done.set()

            return run

        soon = datetime.now(UTC) + 20 * MS
        timer.at("b", soon + 20 * MS, job("second"))  # type: ignore[arg-type]
        timer.at("a", soon, job("first"))  # type: ignore[arg-type]
        timer.later(0.06, "c", job("third"))  # type: ignore[arg-type]
        timer.later(0.0, "c", job("replaced"), keep=True)  # type: ignore[arg-type]  # planned already: kept
        await asyncio.wait_for(done.wait(), 5)
        assert timer.planned("a") is None  # a date job is gone once run
        await timer.stop(lambda tasks: asyncio.sleep(0, 0))
        return ran

    assert asyncio.run(scenario()) == ["first", "second", "third"]


def test_the_wake_up_at_the_next_due_time_touches_apscheduler_only_when_it_changes() -> None:
    async def scenario() -> None:
        timer = Timer(lambda: T0, lambda: False)
        timer.start()
        assert timer.scheduler is not None
        added: list[str] = []
        add_job = timer.scheduler.add_job

        def counted(*args: object, **kwargs: object) -> object:
            added.append(str(kwargs["id"]))
            return add_job(*args, **kwargs)

        timer.scheduler.add_job = counted  # type: ignore[method-assign]

        async def wake() -> None:
            pass

        later = datetime.now(UTC) + timedelta(hours=1)
        timer.wake_at(later, wake)
        timer.wake_at(later, wake)
        assert added == [WAKE] and timer.planned(WAKE) == later
        timer.wake_at(None, wake)
        timer.wake_at(None, wake)
        assert timer.planned(WAKE) is None
        timer.wake_at(later, wake)  # the same time as before, but the job is gone: planned again
        assert added == [WAKE, WAKE]
        timer.every("tick", 60, wake, first=later)
        assert timer.planned("tick") == later
        timer.remove("tick")
        timer.remove("tick")  # no such job: nothing to do
        assert timer.planned("tick") is None
        await timer.stop(lambda tasks: asyncio.sleep(0, 0))

    asyncio.run(scenario())


def test_a_stop_lets_a_running_job_finish_and_counts_the_ones_cut_short() -> None:
    async def scenario() -> tuple[int, list[str]]:
        timer = Timer(lambda: datetime.now(UTC), lambda: True)
        timer.start()
        started, release = asyncio.Event(), asyncio.Event()
        done: list[str] = []

        async def slow() -> None:
            started.set()
            await release.wait()
            done.append("slow")

        timer.later(0.0, "slow", slow)
        await asyncio.wait_for(started.wait(), 5)

        async def finish(tasks: list[asyncio.Task[object]]) -> int:
            assert len(tasks) == 1 and not tasks[0].done()
            release.set()
            await asyncio.wait(tasks)
            return 0

        return await timer.stop(finish), done

    assert asyncio.run(scenario()) == (0, ["slow"])


def test_what_was_read_ahead_serves_the_due_times_until_it_runs_out() -> None:
    ahead = ReadAhead()
    assert ahead.serve(T0) is None  # nothing read yet
    epoch = ahead.epoch
    ahead.keep(epoch, [(T0 + 100 * MS, "a"), (T0 + 100 * MS, "b"), (T0 + 300 * MS, "a")], T0 + 2000 * MS, None)
    assert ahead.serve(T0) is not None and ahead.serve(T0).due == []  # type: ignore[union-attr]
    served = ahead.serve(T0 + 150 * MS)
    assert served is not None and (served.due, served.next_wake) == (["a", "b"], T0 + 300 * MS)
    # The last due time read: what comes after it is unknown, so the cycle must look.
    assert ahead.serve(T0 + 300 * MS) is None


def test_a_lease_running_out_or_a_forget_ends_what_was_read_ahead() -> None:
    ahead = ReadAhead()
    items = [(T0 + 100 * MS, "a"), (T0 + 900 * MS, "b")]
    ahead.keep(ahead.epoch, items, T0 + 2000 * MS, T0 + 500 * MS)
    served = ahead.serve(T0 + 100 * MS)
    assert served is not None and served.next_wake == T0 + 500 * MS  # the lease's end comes first
    assert ahead.serve(T0 + 500 * MS) is None
    ahead.keep(ahead.epoch, items, T0 + 2000 * MS, None)
    ahead.forget()
    assert ahead.serve(T0) is None


def test_a_look_overtaken_by_a_forget_is_not_kept() -> None:
    ahead = ReadAhead()
    epoch = ahead.epoch  # a look starts
    ahead.forget()  # a poke while it runs
    ahead.keep(epoch, [(T0 + 100 * MS, "a"), (T0 + 200 * MS, "a")], T0 + 2000 * MS, None)
    assert ahead.serve(T0 + 100 * MS) is None


def test_writes_declare_whether_they_may_make_something_due_sooner() -> None:
    # Claims, outcomes that take a delivery out of the queue, and a cluster's routine keep what was read ahead.
    for keeping in (
        store.claim,
        store.record_published,
        store.extend_lease,
        repo.set_attention,
        store.cluster.heartbeat,
    ):
        assert not may_change_due_times(keeping), keeping
    # A retry, a check in doubt, a lease group newly taken: their deliveries may be due before the planned wake-up.
    for changing in (store.record_retry, store.record_in_doubt, store.take_over, store.cluster.acquire):
        assert may_change_due_times(changing), changing


def test_the_runtime_looks_again_after_a_write_that_may_make_something_due_sooner(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}"))
    db = Database(config.database_url)
    db.check_schema()
    rt = Runtime(config, db, owner="test", once=False, clock=lambda: T0, monotonic=lambda: 0.0, notifier=Notifier({}))

    async def scenario() -> list[bool]:
        woken = []
        for fn, args in ((repo.attention, ()), (store.expire_leases, ([], T0))):
            rt.wake.clear()
            rt.ahead.keep(rt.ahead.epoch, [(T0, "a"), (T0 + MS, "a")], T0 + 2000 * MS, None)
            await rt.db_call(fn, *args)
            woken.append(rt.wake.is_set() and rt.ahead.serve(T0) is None)
        return woken

    try:
        assert asyncio.run(scenario()) == [False, True]
    finally:
        rt.release()


def test_an_outage_is_logged_once_and_the_next_look_waits_longer_while_it_lasts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    elapsed = [0.0]
    health = DatabaseHealth(Notifier({}), lambda: elapsed[0])
    tries = []
    with caplog.at_level(logging.INFO, logger="smm.daemon"):
        for step in range(350):  # a wake-up every 100 ms for 35 s; every look fails until 20 s
            elapsed[0] = step / 10
            if health.waiting() is not None:
                continue
            tries.append(elapsed[0])
            if elapsed[0] < 20:
                health.down(DatabaseError("database or disk is full"))
            else:
                health.up()
    assert tries == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0] + [t / 10 for t in range(311, 350)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("database unavailable: database or disk is full")
    assert lines[1] == "database available again after 31s"


def test_a_lasting_state_is_warned_about_once_an_hour(caplog: pytest.LogCaptureFixture) -> None:
    elapsed = [0.0]
    warn = WarnOnce(lambda: elapsed[0])
    with caplog.at_level(logging.WARNING, logger="smm.daemon"):
        for elapsed[0] in (0.0, 10.0, 3599.0, 3600.0):
            warn("channel:a", "channel a waits")
        warn("channel:b", "channel b waits")
    assert [r.getMessage() for r in caplog.records] == ["channel a waits", "channel a waits", "channel b waits"]


def test_the_look_reads_once_then_serves_the_wake_ups_within_what_it_read_ahead(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}"))
    ahead = ReadAhead()
    reads: list[object] = []
    upcoming = [(T0 + 100 * MS, "outbox"), (T0 + 300 * MS, "outbox")]

    async def db_read(fn: object, *args: object) -> object:
        reads.append(fn)
        if fn is store.newest_id:
            return 7
        assert fn is watch.look
        return watch.Look([], 7, [], [], T0 + 100 * MS, upcoming=upcoming, ahead_until=T0 + 2000 * MS)

    async def db_call(fn: object, *args: object) -> object:
        raise AssertionError(f"no write expected: {fn}")

    look = Look(lambda: config, ahead, db_call, db_read, lambda: T0, lambda: 0.0, once=False)

    async def scenario() -> list[Found]:
        await look.start(T0)
        look.late_cutoff = None  # nothing was late at start
        found = [(await look(T0, None, set()))[0], (await look(T0 + 100 * MS, None, set()))[0]]
        ahead.forget()  # a poke
        found.append((await look(T0 + 200 * MS, None, set()))[0])
        return found

    first, served, after_poke = asyncio.run(scenario())
    assert reads == [store.newest_id, watch.look, watch.look]  # the second wake-up needed no read
    assert (first.due, first.next_wake) == ([], T0 + 100 * MS)
    assert (served.due, served.next_wake) == (["outbox"], T0 + 300 * MS)
    assert after_poke.next_wake == T0 + 100 * MS and look.last_seen_id == 7


def test_a_cycle_whose_look_fails_waits_the_outage_out_then_starts_what_is_due(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}"))
    elapsed = [0.0]
    rt = Runtime(
        config,
        Database(config.database_url),
        owner="t",
        once=False,
        clock=lambda: T0,
        monotonic=lambda: elapsed[0],
        notifier=Notifier({}),
    )
    looks: list[bool] = []

    async def db_read(fn: object, *args: object) -> object:
        if fn is store.newest_id:
            return 0
        looks.append(elapsed[0] < 1)
        if elapsed[0] < 1:
            raise DatabaseError("database is locked")
        return watch.Look([], 0, ["outbox"], [5], T0 + 60 * MS)

    async def no_write(fn: object, *args: object) -> object:
        raise AssertionError(f"no write expected: {fn}")

    class Part:  # stands for the workers, the reconciler and the membership: what the cycle starts and asks
        def __init__(self) -> None:
            self.tasks: dict[object, object] = {}
            self.started: list[object] = []

        def start(self, what: object) -> None:
            self.started.append(what)

        async def may_publish(self, name: str) -> bool:
            return True

    workers, reconciler = Part(), Part()

    async def scenario() -> list[object]:
        timer = Timer(lambda: T0, rt.is_stopping)
        timer.start()
        look = Look(lambda: config, rt.ahead, no_write, db_read, lambda: T0, lambda: 0.0, once=False)
        await look.start(T0)
        look.late_cutoff = None
        progress = Progress(Notifier({}), lambda: "", rt.is_stopping)
        cycle = Cycle(rt, look, timer, workers, workers, reconciler, progress)  # type: ignore[arg-type]
        await cycle.turn()  # the look fails: an outage, and a wake-up when the next try is due
        seen = [rt.health.down_since is not None, timer.wake_when]
        await cycle.turn()  # within the wait: no look
        elapsed[0] = 1.0
        await cycle.turn()
        seen += [rt.health.down_since is None, timer.wake_when]
        await timer.stop(lambda tasks: asyncio.sleep(0, 0))
        return seen

    try:
        assert asyncio.run(scenario()) == [True, T0 + timedelta(seconds=1), True, T0 + 60 * MS]
    finally:
        rt.release()
    assert (looks, workers.started, reconciler.started) == ([True, False], ["outbox"], [[5]])
