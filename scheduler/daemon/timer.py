"""The daemon's timer: APScheduler's ``AsyncIOScheduler``, used through its public API only.

Every piece of timed work is a job of its own: the wake-up at the next due time (``wake``), the safety tick, the
lease heartbeat, the daily summary, the feed polls, the runs for networks that schedule posts themselves, and the
short waits before another look (a lease group to take over). Periodic work is added as a job, never as a branch
of the main loop. Jobs run on the event loop (coroutines); those that await the database are tracked, so that a
stop lets them finish within its grace.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

Job = Callable[[], Awaitable[None]]

WAKE = "wake"
"""The date job at the next due time the last look found."""


class Timer:
    """Jobs at given times and intervals, on the running event loop; ``clock`` gives the times they are planned from."""

    def __init__(self, clock: Callable[[], datetime], is_stopping: Callable[[], bool]) -> None:
        self.clock = clock
        self.is_stopping = is_stopping
        self.scheduler: AsyncIOScheduler | None = None
        self.wake_when: datetime | None = None
        self.running: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """Start on the running loop. A job that missed its time runs once, late, and never two at a time."""
        self.scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self.scheduler.start()

    def every(self, job_id: str, seconds: float, job: Job, *, first: datetime | None = None) -> None:
        """Run ``job`` every ``seconds`` (from ``first``, else one interval from now), replacing a job of that id."""
        if self.scheduler is None:
            return
        self.scheduler.add_job(
            self._run,
            "interval",
            args=[job],
            seconds=seconds,
            id=job_id,
            replace_existing=True,
            **({} if first is None else {"next_run_time": first}),
        )

    def at(self, job_id: str, when: datetime, job: Job) -> None:
        """Run ``job`` once at ``when``, replacing a job of that id."""
        if self.scheduler is not None:
            self.scheduler.add_job(self._run, "date", args=[job], run_date=when, id=job_id, replace_existing=True)

    def later(self, seconds: float, job_id: str, job: Job, *, keep: bool = False) -> None:
        """Run ``job`` once in ``seconds``; with ``keep``, not when a job of that id is planned already."""
        if keep and self.planned(job_id) is not None:
            return
        self.at(job_id, self.clock() + timedelta(seconds=seconds), job)

    def remove(self, job_id: str) -> None:
        if self.scheduler is not None and self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    def planned(self, job_id: str) -> datetime | None:
        """When the job ``job_id`` runs next, or None when there is no such job."""
        job = self.scheduler.get_job(job_id) if self.scheduler is not None else None
        return None if job is None else job.next_run_time  # type: ignore[no-any-return]

    def due_within(self, seconds: float) -> bool:
        """Whether the next wake-up at a due time (a post due, on any channel) is within ``seconds``."""
        return self.wake_when is not None and self.wake_when <= self.clock() + timedelta(seconds=seconds)

    def wake_at(self, when: datetime | None, job: Job) -> None:
        """Plan the wake-up at the next due time (None: none planned). Only a change touches APScheduler: each
        change wakes the event loop once more, and an idle daemon's cycle plans "no wake-up" every time."""
        if self.scheduler is None:
            return
        if when == self.wake_when and (when is None or self.scheduler.get_job(WAKE) is not None):
            return
        self.wake_when = when
        if when is None:
            self.remove(WAKE)
        else:
            self.at(WAKE, when, job)

    async def stop(self, finish: Callable[[list[asyncio.Task[Any]]], Awaitable[int]]) -> int:
        """Run no more jobs; let the running ones ``finish`` (shutting APScheduler down cancels them mid-await,
        which it logs as a traceback); returns how many ``finish`` cut short."""
        if self.scheduler is None:
            return 0
        self.scheduler.pause()
        cut = await finish(list(self.running))
        self.scheduler.shutdown(wait=False)
        return cut

    async def _run(self, job: Job) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await job()
        except asyncio.CancelledError:
            if not self.is_stopping():
                raise  # cut short by the stop's deadline: not an error of the job
        finally:
            with contextlib.suppress(KeyError):
                self.running.remove(task)  # type: ignore[arg-type]
