"""The daemon's APScheduler: woken on its own loop, it looks at its jobs without a trip through the self-pipe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.daemon import loop_scheduler


def test_jobs_added_and_due_on_the_loop_run_without_a_threadsafe_wake_up() -> None:
    async def scenario() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        threadsafe = 0
        original = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal threadsafe
            threadsafe += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        ran: list[str] = []
        done = asyncio.Event()

        async def job(name: str) -> None:
            ran.append(name)
            if len(ran) == 2:
                done.set()

        scheduler = loop_scheduler()(timezone=UTC)
        scheduler.start()
        soon = datetime.now(UTC) + timedelta(milliseconds=20)
        scheduler.add_job(job, "date", run_date=soon + timedelta(milliseconds=20), args=["second"], id="b")
        scheduler.add_job(job, "date", run_date=soon, args=["first"], id="a")
        await asyncio.wait_for(done.wait(), 5)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
        return ran, threadsafe

    ran, threadsafe = asyncio.run(scenario())
    assert ran == ["first", "second"]
    assert threadsafe == 1  # only the shutdown, which APScheduler always sends through the self-pipe


def test_a_wake_up_from_another_thread_still_goes_through_the_loop() -> None:
    async def scenario() -> list[str]:
        ran: list[str] = []
        done = asyncio.Event()

        async def job() -> None:
            ran.append("ran")
            done.set()

        scheduler = loop_scheduler()(timezone=UTC)
        scheduler.start()
        when = datetime.now(UTC) + timedelta(milliseconds=20)
        await asyncio.to_thread(scheduler.add_job, job, "date", run_date=when, id="from-a-thread")
        await asyncio.wait_for(done.wait(), 5)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
        return ran

    assert asyncio.run(scenario()) == ["ran"]
