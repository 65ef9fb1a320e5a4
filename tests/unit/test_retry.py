"""Short retries inside one call: the first try runs without tenacity, which takes over after a transient failure."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from adapters.errors import PermanentError, TransientError
from scheduler.config import RetryConfig
from scheduler.retry import call_with_retries, decide

POLICY = RetryConfig(in_call_attempts=3, in_call_max_wait=1.0)


class Script:
    """A send that fails with the given errors in turn, then succeeds; it counts its calls and their pacing."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.paced = 0
        self.retries: list[tuple[BaseException, float]] = []

    async def send(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"sent on call {self.calls}"

    async def pace(self) -> None:
        self.paced += 1

    def on_retry(self, exc: BaseException, sleep: float) -> None:
        self.retries.append((exc, sleep))

    def run(self, policy: RetryConfig = POLICY) -> str:
        return asyncio.run(call_with_retries(self.send, policy, before_attempt=self.pace, on_retry=self.on_retry))


def test_a_send_that_succeeds_is_called_once() -> None:
    script = Script()
    assert script.run() == "sent on call 1"
    assert (script.calls, script.paced, script.retries) == (1, 1, [])


def test_transient_failures_are_retried_each_paced_and_reported_with_its_wait() -> None:
    first, second = TransientError("busy", retry_after=0.01), TransientError("busy again", retry_after=0.02)
    script = Script(first, second)
    assert script.run() == "sent on call 3"
    assert (script.calls, script.paced) == (3, 3)
    assert script.retries == [(first, 0.01), (second, 0.02)]


def test_the_last_transient_failure_is_raised_after_the_in_call_attempts() -> None:
    errors = [TransientError(f"down {i}", retry_after=0.01) for i in range(3)]
    script = Script(*errors, TransientError("never reached"))
    with pytest.raises(TransientError) as raised:
        script.run()
    assert raised.value is errors[2]
    assert (script.calls, script.paced, len(script.retries)) == (3, 3, 2)


def test_a_wait_longer_than_the_in_call_maximum_is_left_to_the_durable_retry() -> None:
    long = TransientError("flood", retry_after=30.0)
    script = Script(long)
    with pytest.raises(TransientError) as raised:
        script.run()
    assert raised.value is long
    assert (script.calls, script.retries) == (1, [])


def test_one_in_call_attempt_means_no_retry() -> None:
    script = Script(TransientError("busy", retry_after=0.01))
    with pytest.raises(TransientError):
        script.run(RetryConfig(in_call_attempts=1))
    assert (script.calls, script.retries) == (1, [])


@pytest.mark.parametrize("first", [False, True])
def test_a_permanent_error_is_never_retried(first: bool) -> None:
    refused = PermanentError("refused")
    script = Script(refused) if first else Script(TransientError("busy", retry_after=0.01), refused)
    with pytest.raises(PermanentError) as raised:
        script.run()
    assert raised.value is refused
    assert script.calls == (1 if first else 2)


def test_giving_up_names_the_attempts_in_the_right_number() -> None:
    due = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert decide(1, due, due, RetryConfig(max_attempts=1)).reason == "gave up after 1 attempt"
    assert decide(2, due, due, RetryConfig(max_attempts=2)).reason == "gave up after 2 attempts"
    too_old = RetryConfig(max_age=timedelta(seconds=10))
    assert decide(1, due, due, too_old, rng=random.Random(0)).reason.startswith("gave up after 1 attempt over ")
