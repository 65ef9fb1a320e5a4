"""Retry policy as data: short retries inside one call (tenacity), durable backoff in the database beyond that."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from adapters.errors import TransientError
from scheduler.config import RetryConfig
from scheduler.timefmt import format_duration
from scheduler.views import plural

T = TypeVar("T")
log = logging.getLogger("smm.retry")


@dataclass(frozen=True)
class Decision:
    """What to do after a transient failure: retry at ``retry_at``, or give up (``retry_at`` is None)."""

    retry_at: datetime | None
    reason: str


def backoff(attempts: int, policy: RetryConfig, rng: random.Random | None = None) -> float:
    """Seconds before durable retry number ``attempts``: exponential from ``backoff_base``, capped, ±20 % jitter."""
    rng = rng or random.Random()
    base = min(policy.backoff_cap, policy.backoff_base * (2 ** max(0, attempts - 1)))
    return float(base * rng.uniform(0.8, 1.2))


def decide(
    attempts: int,
    due_at: datetime,
    now: datetime,
    policy: RetryConfig,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """After ``attempts`` failed transiently: when to try again, within ``max_attempts`` and ``max_age``."""
    if attempts >= policy.max_attempts:
        return Decision(None, f"gave up after {plural(attempts, 'attempt', 'attempts')}")
    if retry_after and retry_after >= policy.backoff_base:
        # The network's own long wait, exactly: the channel's scope is paused that long, and a jittered retry
        # would let the channel's next post overtake this one when the pause ends.
        delay = retry_after
    else:
        delay = max(backoff(attempts, policy, rng), retry_after or 0.0)
    retry_at = now + timedelta(seconds=delay)
    if retry_at - due_at > policy.max_age:
        age = now - due_at
        return Decision(
            None,
            f"gave up after {plural(attempts, 'attempt', 'attempts')} over {format_duration(age)} "
            f"(max_age {format_duration(policy.max_age)})",
        )
    return Decision(retry_at, f"attempt {attempts} of {policy.max_attempts}")


class _RetryAfterWait:
    """Wait what the network asked for, else exponential with jitter (1 s, 2 s, 4 s ... capped)."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after:
            return float(exc.retry_after)
        return float(min(self.cap, 2 ** (state.attempt_number - 1)) * random.uniform(0.5, 1.0))


class _RetryAfterTooLong(stop_base):
    """Stop when the network asks for a longer pause than we are willing to sleep inside one call."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return isinstance(exc, TransientError) and (exc.retry_after or 0) > self.cap


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryConfig,
    *,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run ``fn``, retrying :class:`TransientError` a few times over seconds; anything else propagates at once.

    A ``retry_after`` longer than ``in_call_max_wait`` stops the in-call retries: the caller schedules a durable
    retry instead of sleeping inside the call.
    """
    # The first try goes without tenacity, whose machinery costs more CPU than most sends (a busy daemon sends many
    # posts a second); after a transient failure, tenacity takes over and is handed that failure as its own first
    # attempt.
    if before_attempt is not None:
        await before_attempt()
    try:
        return await fn()
    except TransientError as exc:
        first: TransientError | None = exc

    async def again() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        if before_attempt is not None:
            await before_attempt()
        return await fn()

    wait = _RetryAfterWait(policy.in_call_max_wait)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc, state.upcoming_sleep)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(policy.in_call_attempts) | _RetryAfterTooLong(policy.in_call_max_wait),
        wait=wait,
        reraise=True,
        before_sleep=before_sleep,
    )
    async for attempt in retrying:
        with attempt:
            return await again()
    raise AssertionError("unreachable: tenacity re-raises the last error")
