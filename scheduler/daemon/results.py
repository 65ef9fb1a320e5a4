"""Reading back what was published (``[results]``): each post's results at its planned ages and each channel's
audience once a day, in a job of the timer that runs in the background and never holds up a post.

A run takes the due readings (:func:`scheduler.store.results.due_readings`) of the channels this daemon collects
(:meth:`~scheduler.daemon.membership.Membership.may_read`), and reads them one lease group after another within
a few lanes at once. A read goes only when the channel's rate limits would let a publish go at once (it reserves
its requests there, like a publish) and no post of a channel sharing those limits is being published or falls due
before the read's own pace has passed: posts come first. Readings are stored in small batches.

What goes wrong is said once, not once a reading: a right the token lacks (or a network that cannot give it) rests
that kind of reading on the channel for an hour and is logged once, naming the right; a failed read is stored as
an error reading (tried again at the next planned age), and a channel whose reads keep failing rests for a while.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, timedelta, tzinfo
from functools import partial
from typing import TypeVar

from adapters import Adapter
from adapters.base import Action, PostResults
from adapters.errors import AuthError, NotSupported, PublishError, RateLimited
from scheduler.daemon.membership import Membership
from scheduler.daemon.runtime import Runtime
from scheduler.daemon.timer import Timer
from scheduler.daemon.workers import Workers
from scheduler.errors import DatabaseError
from scheduler.ratelimit import HEADROOM, Limiter, Send
from scheduler.store import results as readings
from scheduler.views import plural, some_of

log = logging.getLogger("smm.results")

T = TypeVar("T")

RESULTS = "results"
FIRST_RUN = 30.0
"""Seconds after the start (or a reload) before the first run: the start's own work comes first."""
PER_RUN = 1000
"""Due readings one run takes; the next run goes on with the rest."""
BATCH = 25
"""Readings stored per write transaction."""
LANES = 4
"""Lease groups read at once (VK's reads take threads that publishing shares)."""
REST = 3600.0
"""Seconds a kind of reading rests on a channel after a missing right or a failed audience read."""
FAILING = 3
"""Failed reads in a row after which a channel's results rest for ``FAILING_REST`` seconds (a network down)."""
FAILING_REST = 900.0
NEAR = 2.0
"""Seconds of margin: a read waits while a post of its scopes falls due within its own pace plus this."""
TOOK_DECAY = 0.9
"""How a channel's longest recent read time fades with each faster read."""
LOOK = 1.0
"""Seconds between two looks while posts have the channel's scopes."""


class ResultsCollection:
    """The ``results`` job of the timer (every ``[results] interval``) and its runs, one at a time."""

    def __init__(
        self,
        rt: Runtime,
        timer: Timer,
        limiter: Limiter,
        membership: Membership,
        workers: Workers,
        catch_up: Callable[[Mapping[str, tzinfo]], Awaitable[None]],
    ) -> None:
        self.rt = rt
        self.timer = timer
        self.limiter = limiter
        self.membership = membership
        self.workers = workers
        #: The report figures' catch-up that ends each run (:meth:`scheduler.daemon.figures.FigureUpkeep.catch_up`).
        self.catch_up = catch_up
        self.task: asyncio.Task[None] | None = None
        self.resting: dict[tuple[str, str], float] = {}  # (channel, action) -> monotonic time it may go again
        self.said: set[str] = set()
        self.sharing: dict[str, set[str]] = {}
        self.took: dict[str, float] = {}  # a channel's recent read time (the longest, fading)
        #: Readings stored by this process (tests, the bench).
        self.stored = 0

    def plan(self) -> None:
        """The job, from ``FIRST_RUN`` on, while ``[results]`` is enabled (after start and each reload)."""
        rt = self.rt
        if rt.once or not rt.config.results.enabled:
            self.timer.remove(RESULTS)
            return
        audience_only: dict[str, list[str]] = {}  # the reason: its channels
        for name, adapter in rt.adapters.items():
            if "results" in adapter.unsupported and "audience" not in adapter.unsupported:
                audience_only.setdefault(adapter.unsupported["results"], []).append(name)
        for reason, names in audience_only.items():
            which = f"channel {names[0]}" if len(names) == 1 else f"channels {some_of(names)}"
            line = f"{which}: post results are not available ({reason}); only the audience is read"
            self._once(f"unsupported:{reason}:{','.join(names)}", line, logging.INFO)
        first = rt.clock() + timedelta(seconds=FIRST_RUN)
        self.timer.every(RESULTS, rt.config.results.interval, self.job, first=first)

    async def job(self) -> None:
        self.start()

    def start(self) -> None:
        """Start a run, unless one still runs or the daemon stops."""
        if self.rt.stopping or (self.task is not None and not self.task.done()):
            return
        self.task = asyncio.create_task(self.run(), name="results")

    async def run(self) -> None:
        """Read the audience of the channels not read today, then the due results; never raises."""
        rt = self.rt
        try:
            owned = [name for name in rt.adapters if name in rt.config.channel_names]
            owned = [name for name in owned if await self.membership.may_read(name)]
            self.sharing = _sharing({name: rt.adapters[name] for name in owned})
            now = rt.clock()
            ages = rt.config.results.ages
            can_read = [name for name in owned if "results" not in rt.adapters[name].unsupported]
            due = await rt.db_read(readings.due_readings, can_read, ages, now, PER_RUN)
            audience = [name for name in owned if "audience" not in rt.adapters[name].unsupported]
            audience = await rt.db_read(readings.audience_due, audience, now.astimezone(UTC).date())
            lanes: dict[str, tuple[list[str], list[readings.DueReading]]] = {}
            for name in audience:
                lanes.setdefault(rt.adapters[name].lease_group, ([], []))[0].append(name)
            for item in due:
                lanes.setdefault(rt.adapters[item.channel].lease_group, ([], []))[1].append(item)
            gate = asyncio.Semaphore(LANES)

            async def lane(names: list[str], items: list[readings.DueReading]) -> None:
                async with gate:
                    await self._audience(names)
                    await self._results(items)

            # Every lane ends before the run does (a failed one does not leave the others running on their own).
            for failure in await asyncio.gather(*(lane(*work) for work in lanes.values()), return_exceptions=True):
                if isinstance(failure, Exception):
                    self._failed(failure)
            await self.catch_up({c.name: c.timezone for c in rt.config.channels if c.name in owned})
        except Exception as exc:
            self._failed(exc)

    @staticmethod
    def _failed(exc: Exception) -> None:
        if isinstance(exc, DatabaseError):
            log.warning("reading results back: the database failed (%s); trying again at the next run", exc)
        else:  # never let a bug here touch publishing
            log.error("reading results back failed; trying again at the next run", exc_info=exc)

    # -- the readings ---------------------------------------------------------------------------------------

    async def _audience(self, names: list[str]) -> None:
        rt = self.rt
        for name in names:
            adapter = rt.adapters.get(name)
            if adapter is None or self._rests(name, "audience"):
                continue
            try:
                members = await self._read(name, adapter, "audience", adapter.read_audience)
            except PublishError as exc:
                self._rest(name, "audience", REST)
                missing = isinstance(exc, AuthError | NotSupported)
                again = "" if missing else "; trying again in an hour"
                self._once(
                    f"audience:{name}", f"channel {name}: cannot read its audience: {exc}{again}", logging.WARNING
                )
                continue
            if members is None:
                return  # stopping, or the channel is no longer this daemon's
            await rt.db_call(readings.record_audience, name, members, rt.clock())
            self.said.discard(f"audience:{name}")

    async def _results(self, items: list[readings.DueReading]) -> None:
        rt = self.rt
        batch: list[readings.Reading] = []
        failed: dict[str, list[str]] = {}
        in_a_row: dict[str, int] = {}
        try:
            for item in items:
                name = item.channel
                adapter = rt.adapters.get(name)
                if adapter is None or self._rests(name, "results"):
                    continue
                try:
                    found = await self._read(name, adapter, "results", partial(adapter.read_results, item.remote_id))
                except RateLimited as exc:
                    if exc.retry_after:  # the pause the network asked for holds the posts of its scope too
                        for limit in adapter.rate_limits():
                            if exc.scope in (None, limit.scope):
                                self.limiter.pause(limit.scope, rt.monotonic() + exc.retry_after)
                    self._rest(name, "results", exc.retry_after or rt.config.results.interval)
                    continue
                except (AuthError, NotSupported) as exc:
                    self._rest(name, "results", REST)
                    self._once(
                        f"results:{name}",
                        f"channel {name}: cannot read post results: {exc}; the other channels' go on "
                        "(smm doctor shows it)",
                        logging.WARNING,
                    )
                    continue
                except PublishError as exc:
                    batch.append(readings.Reading(item.delivery_id, item.age, rt.clock(), error=str(exc)))
                    failed.setdefault(name, []).append(str(exc))
                    in_a_row[name] = in_a_row.get(name, 0) + 1
                    if in_a_row[name] >= FAILING:
                        self._rest(name, "results", FAILING_REST)
                else:
                    if found is None:
                        return  # stopping, or the channel is no longer this daemon's
                    in_a_row[name] = 0
                    self.said.discard(f"results:{name}")
                    batch.append(self._reading(item, found))
                if len(batch) >= BATCH:
                    await self._store(batch)
        finally:
            if batch:
                await self._store(batch)
            for name, errors in failed.items():
                log.warning(
                    "channel %s: %s of results failed (the last: %s); each is read again at its next planned age",
                    name,
                    plural(len(errors), "reading", "readings"),
                    errors[-1],
                    extra={"channel": name, "action": "results"},
                )

    def _reading(self, item: readings.DueReading, found: PostResults) -> readings.Reading:
        name = item.channel
        if found.gone:
            log.info(
                "post %s is no longer on %s: its results are no longer read",
                item.post_id,
                name,
                extra={"post_id": item.post_id, "channel": name, "action": "gone"},
            )
        for note in found.notes:
            self._once(f"note:{name}:{re.sub(r'[0-9_]+', '#', note)}", f"channel {name}: {note}", logging.INFO)
        return readings.Reading(
            item.delivery_id,
            item.age,
            self.rt.clock(),
            found.views,
            found.likes,
            found.reposts,
            found.comments,
            gone=found.gone,
        )

    async def _store(self, batch: list[readings.Reading]) -> None:
        done, batch[:] = list(batch), []
        self.stored += await self.rt.db_call(readings.record_readings, done)

    # -- posts first ----------------------------------------------------------------------------------------

    async def _read(self, name: str, adapter: Adapter, action: Action, call: Callable[[], Awaitable[T]]) -> T | None:
        """``call()`` once the channel's scopes are free for it (None when the run must end: a stop, or the
        channel is no longer this daemon's), with its requests reserved and recorded like a publish's."""
        rt = self.rt
        limits = adapter.rate_limits()
        requests = float(adapter.requests_for_action(action))
        units = {limit.scope: requests for limit in limits if limit.unit == "request"}
        pace = max((limit.per / (limit.rate * HEADROOM) * units.get(limit.scope, 1.0) for limit in limits), default=0)
        while True:
            if rt.stopping or not self.membership.owns(name):
                return None
            # A read in flight can hold the channel's client (vk_api sends one request at a time): a post due
            # within the read's own time is waited for too.
            horizon = pace + self.took.get(name, 0.0) + NEAR
            wait = max(self.limiter.free_in(limits, rt.monotonic()), self._posts_hold(name, horizon))
            if wait <= 0:
                break
            await rt.sleep(min(wait, LOOK))
        self.limiter.reserve(limits, rt.monotonic(), units)
        send: Send = self.limiter.sent(limits, rt.monotonic(), units)
        try:
            return await call()
        finally:
            Limiter.finished(send, rt.monotonic())
            took = rt.monotonic() - send.start
            self.took[name] = max(took, self.took.get(name, 0.0) * TOOK_DECAY)

    def _posts_hold(self, name: str, horizon: float) -> float:
        """How long posts hold the channel's scopes (0: the read may go), from what the daemon knows in memory: a
        worker publishing a channel that shares them, or a post due within ``horizon`` seconds. The next due time
        of all (the timer's wake-up) clears a read at once; within the read-ahead, the posts due are known by
        channel; past it, a post due anywhere within ``horizon`` holds the read (posts first, no query)."""
        sharing = self.sharing.get(name, {name})
        if any(other in self.workers.tasks for other in sharing):
            return LOOK
        if not self.timer.due_within(horizon):
            return 0.0
        until = self.rt.clock() + timedelta(seconds=horizon)
        ahead = self.rt.ahead
        if ahead.until is not None and ahead.until >= until:
            return LOOK if any(due <= until and channel in sharing for due, channel in ahead.items) else 0.0
        return LOOK

    # -- saying things once ---------------------------------------------------------------------------------

    def _rest(self, name: str, action: str, seconds: float) -> None:
        self.resting[(name, action)] = self.rt.monotonic() + seconds

    def _rests(self, name: str, action: str) -> bool:
        return self.resting.get((name, action), 0.0) > self.rt.monotonic()

    def _once(self, key: str, message: str, level: int) -> None:
        if key not in self.said:
            self.said.add(key)
            log.log(level, "%s", message, extra={"action": "results"})


def _sharing(adapters: dict[str, Adapter]) -> dict[str, set[str]]:
    """Each channel's fellows: the channels that share one of its rate-limit scopes (itself included)."""
    by_scope: dict[str, set[str]] = {}
    for name, adapter in adapters.items():
        for limit in adapter.rate_limits():
            by_scope.setdefault(limit.scope, set()).add(name)
    return {
        name: set().union(*(by_scope[limit.scope] for limit in a.rate_limits())) or {name}
        for name, a in adapters.items()
    }
