"""Pacing: a chat's own wait (its pace, a retry_after) must never hold its bot's other chats back."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import RateLimit
from scheduler.ratelimit import HEADROOM, WINDOW_MARGIN, Limiter, fit_window, pace

BOT = RateLimit("telegram-bot:b", 30, 1)


def chat(name: str) -> tuple[RateLimit, RateLimit]:
    return (RateLimit(f"telegram-chat:{name}", 20, 60), BOT)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_steady_pace_never_waits_at_the_sliding_window() -> None:
    """The pace sits just under the window's share: ``rate`` paced sends span more than the window."""
    assert HEADROOM * WINDOW_MARGIN < 1
    limiter, clock = Limiter(), Clock()
    bot = (BOT,)
    for _ in range(300):
        clock.now += limiter.reserve(bot, clock.now)
        assert limiter.window_wait(bot, clock.now) == 0
        limiter.finished(limiter.sent(bot, clock.now), clock.now + 0.005)  # answered within 5 ms


def test_a_paused_chat_leaves_its_bot_free_for_the_other_chats() -> None:
    limiter, clock = Limiter(), Clock()
    limiter.pause("telegram-chat:a", clock.now + 30)
    assert limiter.own_wait(chat("a"), clock.now) == 30
    # Asking about chat a reserved nothing: chat b of the same bot goes at once.
    assert limiter.reserve(chat("b"), clock.now) == 0


def test_a_chats_own_pace_does_not_move_the_bot() -> None:
    limiter, clock = Limiter(), Clock()
    assert limiter.reserve(chat("a"), clock.now) == 0
    interval = 60 / (20 * HEADROOM)
    assert limiter.own_wait(chat("a"), clock.now) == pytest.approx(interval)  # a waits for its chat's pace
    for name in "bcdefgh":  # the bot's other chats do not wait with it
        assert limiter.reserve(chat(name), clock.now) < 0.5


def test_pace_waits_for_the_own_scope_then_reserves_the_shared_one() -> None:
    limiter, clock = Limiter(), Clock()
    start = clock.now
    limiter.pause("telegram-chat:a", start + 30)
    assert asyncio.run(pace(limiter, chat("a"), clock, clock.sleep))
    assert clock.now == start + 30
    # The bot's place was taken at the end of the pause, not at the start: the bot's next free time is just after.
    assert start + 30 < limiter.not_before("telegram-bot:b") <= start + 30 + 1 / (30 * HEADROOM) + 1e-9


def test_pace_stops_waiting_when_asked_to() -> None:
    limiter, clock = Limiter(), Clock()
    limiter.pause("telegram-chat:a", clock.now + 30)
    assert not asyncio.run(pace(limiter, chat("a"), clock, clock.sleep, stopping=lambda: True))
    assert limiter.not_before("telegram-bot:b") == 0.0  # nothing was reserved on the bot


def test_a_single_scope_is_reserved_ahead_like_a_queue() -> None:
    limiter, clock = Limiter(), Clock()
    token = (RateLimit("vk-token:t", 3, 1, unit="request"),)
    waits = [limiter.reserve(token, clock.now) for _ in range(4)]
    assert limiter.own_wait(token, clock.now) == 0
    assert waits[0] == 0 and waits == sorted(waits) and waits[-1] > 0.9


def test_the_sliding_window_holds_sends_that_went_out_late_and_bunched() -> None:
    """Pacing spaces sends 35 ms apart for a bot of 30 a second; when some go out late and bunch, the window still
    lets at most 30 through in any 1.05 s, as the network counts them."""
    limiter, clock = Limiter(), Clock()
    bot = (BOT,)
    for _ in range(30):  # thirty sends at one moment (they were all late)
        assert limiter.window_wait(bot, clock.now) == 0
        limiter.finished(limiter.sent(bot, clock.now), clock.now)
    assert limiter.window_wait(bot, clock.now) == pytest.approx(1.05)
    clock.now += 1.05
    assert limiter.window_wait(bot, clock.now) == 0


class RacingClock(Clock):
    """Virtual time in which sleepers due at the same moment wake in the reverse of the order they slept: the
    event loop promises no order among equal deadlines, and this is the worst one."""

    def __init__(self) -> None:
        super().__init__()
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, future))
        await future

    async def run(self, tasks: list[asyncio.Task[None]]) -> None:
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if not self.sleepers:
                continue
            due = min(when for when, _ in self.sleepers)
            self.now = due
            for when, future in reversed(self.sleepers):
                if when == due:
                    future.set_result(None)
            self.sleepers = [(when, f) for when, f in self.sleepers if when != due]


def test_sends_waiting_for_a_full_window_go_in_the_order_they_came() -> None:
    """Forty sends reach a bot of 30 a second at once: thirty go, and the other ten wait for the window and then go
    first come, first served. Before, they all slept until the same moment and raced, and a few lost every race."""
    limiter, clock = Limiter(), RacingClock()
    bot = (BOT,)
    passed: list[tuple[int, float]] = []

    async def send(number: int) -> None:
        limiter.finished(await fit_window(limiter, bot, clock, clock.sleep), clock.now)
        passed.append((number, clock.now))

    async def main() -> None:
        tasks = [asyncio.create_task(send(n)) for n in range(40)]
        await clock.run(tasks)

    start = clock.now
    asyncio.run(main())
    assert [n for n, _ in passed] == list(range(40))
    times = [t for _, t in passed]
    assert times[:30] == [start] * 30
    assert times[30:] == [pytest.approx(start + 1.0 * WINDOW_MARGIN)] * 10
    # Never more than 30 in any window the network counts.
    assert all(times[i + 30] - times[i] >= 1.0 for i in range(len(times) - 30))


def test_a_send_waiting_for_its_chats_window_holds_no_place_in_its_bots_queue() -> None:
    limiter, clock = Limiter(), RacingClock()
    slow = (RateLimit("telegram-chat:slow", 1, 60), BOT)
    limiter.finished(limiter.sent(slow, clock.now), clock.now)  # the slow chat's window is full for a minute
    passed: list[str] = []

    async def send(name: str, limits: tuple[RateLimit, ...]) -> None:
        limiter.finished(await fit_window(limiter, limits, clock, clock.sleep), clock.now)
        passed.append(f"{name}@{clock.now - 1000:.0f}")

    async def main() -> None:
        tasks = [asyncio.create_task(send("slow", slow))]
        tasks += [asyncio.create_task(send(f"chat{n}", chat(f"c{n}"))) for n in range(3)]
        await clock.run(tasks)

    asyncio.run(main())
    assert passed == ["chat0@0", "chat1@0", "chat2@0", "slow@63"]


def test_a_send_held_up_on_its_way_counts_until_it_surely_arrived() -> None:
    """The network counted a send somewhere between its start and its answer. One held up on its way (a stalled
    thread) may have arrived right next to the sends after it, so it counts until its answer, less the scope's
    usual round trip, is a window old."""
    limiter, clock = Limiter(), Clock()
    token = (RateLimit("vk-token:t", 3, 1, unit="request"),)
    stalled = limiter.sent(token, clock.now)
    for _ in range(2):
        limiter.finished(limiter.sent(token, clock.now + 0.35), clock.now + 0.36)  # 10 ms: the usual round trip
    # The two answered ones count until 1.40 (started a window and 5 % ago); the stalled one at least as long.
    assert limiter.window_wait(token, clock.now + 1.05) == pytest.approx(0.35)
    limiter.finished(stalled, clock.now + 0.9)  # answered 0.9 s after it started: it may have arrived at 0.89
    assert limiter.window_wait(token, clock.now + 1.05) == pytest.approx(0.35)  # two count until 1.40...
    assert limiter.window_wait(token, clock.now + 1.40) == 0  # ... then only the stalled one (until 1.89)
    limiter.sent(token, clock.now + 1.40)
    limiter.sent(token, clock.now + 1.45)
    assert limiter.window_wait(token, clock.now + 1.50) == pytest.approx(0.39)


def test_the_usual_round_trip_costs_nothing() -> None:
    """A link 100 ms away: each answer comes 100 ms after its send, and a steady pace still never waits."""
    limiter, clock = Limiter(), Clock()
    bot = (BOT,)
    for _ in range(300):
        clock.now += limiter.reserve(bot, clock.now)
        assert limiter.window_wait(bot, clock.now) == 0
        send = limiter.sent(bot, clock.now)
        limiter.finished(send, clock.now + 0.1)


def test_one_slow_send_does_not_hold_back_the_sends_that_left_the_window() -> None:
    """An upload still in flight counts once; the sends after it that were answered leave the window in time."""
    limiter, clock = Limiter(), Clock()
    token = (RateLimit("vk-token:t", 3, 1, unit="request"),)
    limiter.sent(token, clock.now)  # a big upload, in flight for a long while
    limiter.finished(limiter.sent(token, clock.now + 0.1), clock.now + 0.11)
    limiter.finished(limiter.sent(token, clock.now + 0.2), clock.now + 0.21)
    assert limiter.window_wait(token, clock.now + 1.0) == pytest.approx(0.15)
    assert limiter.window_wait(token, clock.now + 1.15) == 0  # the upload still counts, alone


def test_a_scope_listed_twice_takes_its_turn_once() -> None:
    limiter, clock = Limiter(), Clock()
    twice = (BOT, BOT)

    async def main() -> float:
        # A second take of the same (non re-entrant) turn would wait for itself forever: wait_for would time out.
        send = await asyncio.wait_for(fit_window(limiter, twice, clock, clock.sleep), 1)
        limiter.finished(send, clock.now)
        return send.start

    assert asyncio.run(main()) == clock.now  # it went at once


def test_the_window_counts_requests_where_the_network_does() -> None:
    limiter, clock = Limiter(), Clock()
    token = (RateLimit("vk-token:t", 3, 1, unit="request"),)
    limiter.finished(limiter.sent(token, clock.now, {"vk-token:t": 3}), clock.now)  # an upload: three requests
    assert limiter.window_wait(token, clock.now + 0.5) == pytest.approx(0.55)
    assert limiter.window_wait(token, clock.now + 1.05) == 0


def test_a_retry_keeps_its_place_at_the_front_of_a_busy_bots_queue() -> None:
    limiter, clock = Limiter(), Clock()
    interval = 1 / (30 * HEADROOM)
    for i in range(300):  # a burst: ten seconds of the bot's pace reserved by 300 chats
        limiter.reserve(chat(f"c{i}"), clock.now)
    queue_end = limiter.not_before("telegram-bot:b")
    assert queue_end == pytest.approx(clock.now + 300 * interval)
    # Chat r met a 429 with retry_after=2: it waits the pause, then goes first, not ten seconds later.
    start = clock.now
    limiter.pause("telegram-chat:r", start + 2)
    assert asyncio.run(pace(limiter, chat("r"), clock, clock.sleep, retry=True))
    assert clock.now == start + 2
    # Everyone behind it moved one place back; a fresh publish still queues at the end.
    assert limiter.not_before("telegram-bot:b") == pytest.approx(queue_end + interval)
    assert limiter.reserve(chat("late"), clock.now) == pytest.approx(queue_end + interval - clock.now)


def test_a_retry_ahead_still_respects_every_pause_of_its_scopes() -> None:
    limiter, clock = Limiter(), Clock()
    limiter.pause("telegram-bot:b", clock.now + 5)  # the whole bot was told to wait
    assert limiter.reserve(chat("r"), clock.now, ahead=True) == 5
