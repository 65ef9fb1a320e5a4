"""Pacing: one generic cell rate (GCRA) bucket per scope, each with its own "not before" time.

A publish reserves one unit (or as many as it makes requests) in every scope its channel belongs to (the chat,
the bot, the token); it waits until all of them allow it. A network's "slow down" (``retry_after``, usage headers)
pauses only the scope it concerns, so one throttled chat or token never slows the others.

A channel's first scope is its own (the chat); the others are shared (the bot). A publish holds a place in the
shared scopes only once its own scope lets it go: a bucket keeps one "next free" time, so a place reserved for a
chat that must wait 30 s (a ``retry_after``, or its 20-a-minute pace) would have moved the whole bot's next free
time 30 s ahead, and every other chat of the bot would have waited with it.

Pacing plans sends ahead; the networks count the sends they received in a sliding window. A send that went out
late (the database was busy) lets the next ones bunch, and a window of 30 may then hold 31. So each send is also
recorded as it happens, from the moment it may go until its answer came back: the network counted it somewhere in
between. A recorded send stops counting in a scope's window once it started ``per`` seconds ago (with a margin
for the network's clock) and its answer came back ``per`` seconds ago, less the scope's usual round trip (the
least of its recorded sends'): a request held up on its way (a stalled thread, a slow link) counts until it
surely arrived, while the usual travel time of a healthy link costs nothing. A new send waits while ``rate``
sends still count. Sends wait for a window in the order they came (:func:`fit_window`): sends that slept until
the same moment used to race, and a few lost for a minute.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from adapters.base import RateLimit

WINDOW_MARGIN = 1.05
"""The sliding window is taken 5 % longer than the network's: its clock and ours differ, and a request takes a
moment to arrive."""


HEADROOM = 0.952
"""Pacing runs at this share of each declared rate: the networks' windows do not see our clock. It sits just under
what the sliding window allows (``rate`` sends in ``per`` x 1.05, 95.24 % of a rate), so a steady pace never waits
at the window, and a burst drains at the window's share rather than below it. Above the window's share, the pace
would build a backlog at the window, in the host slots (and before the window's turns were first come, first
served, a few posts straggled far behind the burst)."""


ROUND_TRIPS = 32
"""A scope's usual round trip is the least of its last this many."""


class Send:
    """A send as the sliding windows see it: when it could first arrive, and when it had surely arrived."""

    __slots__ = ("end", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.end = math.inf  # in flight

    def settles(self, per: float, round_trip: float, now: float) -> float:
        """From when a new send cannot share the network's ``per``-second window with this one (at the soonest,
        while it is in flight)."""
        answered = min(self.end, now)
        return max(self.start + per * WINDOW_MARGIN, answered - round_trip + per)


@dataclass
class _Bucket:
    interval: float  # seconds per unit
    tolerance: float  # how far ahead of now the theoretical arrival time may run (burst)
    tat: float = 0.0  # theoretical arrival time of the next unit


class Limiter:
    """Rate limits per scope, on a monotonic clock in seconds. Not thread-safe: use from one event loop."""

    def __init__(self, burst: float = 1.0, headroom: float = HEADROOM) -> None:
        """``headroom``: pace at this share of each declared rate, so that the network's own sliding windows
        (which do not see our clock) are never quite reached."""
        self._buckets: dict[str, _Bucket] = {}
        self._pauses: dict[str, float] = {}
        self._sent: dict[str, list[Send]] = {}
        self._trips: dict[str, deque[float]] = {}  # the last round trips of the sends that left a scope's window
        self._turns: dict[str, asyncio.Lock] = {}
        self._burst = burst
        self._headroom = headroom

    def _bucket(self, limit: RateLimit) -> _Bucket:
        interval = limit.per / (limit.rate * self._headroom)
        bucket = self._buckets.get(limit.scope)
        if bucket is None or bucket.interval != interval:
            bucket = _Bucket(interval=interval, tolerance=interval * (self._burst - 1), tat=bucket.tat if bucket else 0)
            self._buckets[limit.scope] = bucket
        return bucket

    def reserve(
        self, limits: Sequence[RateLimit], now: float, cost: dict[str, float] | None = None, *, ahead: bool = False
    ) -> float:
        """Reserve a publish in every scope of ``limits``; returns how many seconds to wait before sending it.

        ``ahead``: the publish goes first in every queue, only the networks' pauses hold it (a retry that already
        waited its turn once); the queued ones behind it move one place back."""
        if not limits:
            return 0.0
        buckets = [(self._bucket(limit), (cost or {}).get(limit.scope, 1.0)) for limit in limits]
        queued = max(b.tat - b.tolerance for b, _ in buckets)
        start = max(now, self.paused_until(limits) if ahead else queued)
        for bucket, units in buckets:
            bucket.tat = max(bucket.tat, start) + bucket.interval * units
        return start - now

    def window_wait(self, limits: Sequence[RateLimit], now: float) -> float:
        """How long until one more send fits every scope's sliding window: at most ``rate`` sends in any ``per``
        seconds as the network counts them, whenever each of the sends recorded by :meth:`sent` arrived there.
        (While a send the window waits for is in flight, this is when to look again.)"""
        wait = 0.0
        for limit in limits:
            sent = self._sent.get(limit.scope)
            if not sent:
                continue
            trips = self._trips.setdefault(limit.scope, deque(maxlen=ROUND_TRIPS))
            round_trip = min([s.end - s.start for s in sent if s.end != math.inf] + list(trips), default=0.0)
            counting = []
            for send in sent:
                settles = send.settles(limit.per, round_trip, now)
                if settles > now or send.end == math.inf:
                    counting.append((settles, send))
                else:
                    trips.append(send.end - send.start)
            sent[:] = [s for _, s in counting]
            size = max(1, int(limit.rate))
            if len(counting) >= size:
                times = sorted(t for t, _ in counting)
                wait = max(wait, times[len(counting) - size] - now)
        return wait

    def sent(self, limits: Sequence[RateLimit], now: float, units: dict[str, float] | None = None) -> Send:
        """Record a send (``units`` requests in a scope counted in requests) that may go from ``now``; give the
        returned :class:`Send` to :meth:`finished` when its answer is back."""
        send = Send(now)
        for limit in limits:
            sent = self._sent.setdefault(limit.scope, [])
            sent.extend([send] * max(1, int((units or {}).get(limit.scope, 1.0))))
        return send

    @staticmethod
    def finished(send: Send, now: float) -> None:
        """The send's answer (or its error) came back at ``now``: the network has counted it by then."""
        send.end = min(send.end, now)

    def turn(self, scope: str) -> asyncio.Lock:
        """The queue of sends waiting for ``scope``'s sliding window, first come, first served."""
        lock = self._turns.get(scope)
        if lock is None:
            lock = self._turns[scope] = asyncio.Lock()
        return lock

    def free_in(self, limits: Sequence[RateLimit], now: float) -> float:
        """How long until a send in every scope of ``limits`` would go at once, reserving nothing: behind what is
        reserved there, the network's pauses and each scope's sliding window. Work that must never hold up a
        publish (reading results back) goes only when this is 0."""
        queued = max(
            (b.tat - b.tolerance for b in (self._buckets.get(limit.scope) for limit in limits) if b), default=0
        )
        return max(0.0, queued - now, self.paused_until(limits) - now, self.window_wait(limits, now))

    def own_wait(self, limits: Sequence[RateLimit], now: float) -> float:
        """How long the channel's own scope (the first of ``limits``) holds a publish back, reserving nothing."""
        if len(limits) < 2:  # a single scope is reserved ahead like any queue: nothing else moves with it
            return 0.0
        bucket = self._bucket(limits[0])
        return max(0.0, bucket.tat - bucket.tolerance - now)

    def pause(self, scope: str, until: float) -> None:
        """Nothing more in ``scope`` before ``until`` (the network said ``retry_after``)."""
        bucket = self._buckets.get(scope)
        if bucket is None:
            bucket = self._buckets[scope] = _Bucket(interval=0.0, tolerance=0.0)
        bucket.tat = max(bucket.tat, until)
        self._pauses[scope] = max(self._pauses.get(scope, 0.0), until)

    def paused_until(self, limits: Sequence[RateLimit]) -> float:
        """Until when the network asked any of these scopes to pause (0 when none did)."""
        return max((self._pauses.get(limit.scope, 0.0) for limit in limits), default=0.0)

    def not_before(self, scope: str) -> float:
        bucket = self._buckets.get(scope)
        return bucket.tat if bucket else 0.0


async def pace(
    limiter: Limiter,
    limits: Sequence[RateLimit],
    monotonic: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    stopping: Callable[[], bool] = lambda: False,
    *,
    retry: bool = False,
) -> bool:
    """Wait until a publish in ``limits`` may go, and reserve it: first the channel's own scope, then, from that
    moment, its place in the shared ones (see the module's docstring). False when ``stopping`` cut the wait short
    (then nothing is reserved in the shared scopes, or the reservation is simply left unused).

    ``retry``: the publish waited its turn once and the network turned it away (a 429): it keeps its place at the
    front instead of queueing again behind a burst (a minute behind a busy bot); the pause the network asked for
    still holds, and the sliding window still keeps the scope under its rate."""
    while (wait := limiter.own_wait(limits, monotonic())) > 0:
        await sleep(wait)
        if stopping():
            return False
    wait = limiter.reserve(limits, monotonic(), ahead=retry)
    if wait > 0:
        await sleep(wait)
    return not stopping()


async def fit_window(
    limiter: Limiter,
    limits: Sequence[RateLimit],
    monotonic: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    units: dict[str, float] | None = None,
) -> Send:
    """Wait until one more send fits every scope's sliding window, then record it as sent (``units`` requests in
    a scope counted in requests); pass the returned :class:`Send` to :meth:`Limiter.finished` once it is answered.

    Sends take their turn at each scope in the order they arrived, the channel's own scope first, then the shared
    ones: a send waiting for its chat's window holds no place in its bot's queue. (The order is the same for every
    send, so two sends never wait for each other's scopes.) Without the turns, the sends waiting for a scope all
    slept until the same moment and raced; the event loop wakes equal deadlines in no fixed order, so a few lost
    again and again.
    """
    async with AsyncExitStack() as turns:
        taken: set[str] = set()
        for index, limit in enumerate(limits):
            if limit.scope not in taken:  # a turn is not re-entrant
                taken.add(limit.scope)
                await turns.enter_async_context(limiter.turn(limit.scope))
            # The scopes already held cannot fill up: every send to them waits behind this one.
            while (wait := limiter.window_wait(limits[index : index + 1], monotonic())) > 0:
                await sleep(wait)
        return limiter.sent(limits, monotonic(), units)
