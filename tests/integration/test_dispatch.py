"""The publishing state machine with time under control: claims, outcomes, reconciliation, late policies.

No daemon process and no sleeping: a :class:`FakeAdapter` plays the network, a settable clock plays time, and the
database is real (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from adapters.base import RateLimit
from adapters.errors import AmbiguousError, AuthError, ContentRejected, RateLimited, TransientError
from scheduler import store, watch
from scheduler.config import Config, load_config
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.models import Attempt, Delivery, Status
from scheduler.publisher import Publisher, apply_late_policy
from scheduler.ratelimit import Limiter
from scheduler.service import resolve_post, show_post
from tests.conftest import write_config
from tests.fakes.adapter import FakeAdapter, applied

START = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Moscow


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


class World:
    """A config, a database, a clock and a publisher wired together."""

    def __init__(self, tmp_path: Path, db_url: str, body: str = "") -> None:
        top = '[schedule]\ntimezone = "Europe/Moscow"\n[retry]\nin_call_attempts = 1\nmax_attempts = 3\n'
        top += '[daemon]\nreconcile_delay = "60s"\nlate_grace = "15m"\n'
        self.config: Config = load_config(write_config(tmp_path / "config.toml", db_url, body, extra_top=top))
        self.db = Database(self.config.database_url)
        self.db.check_schema()
        self.clock = Clock(START)
        self.limiter = Limiter()
        self.publisher = Publisher(self.config, self.db_call, self.limiter, self.clock, self.clock.monotonic)
        self.channel = self.config.channel("outbox")

    async def db_call(self, fn: Any, *args: Any) -> Any:
        with self.db.write() as session:
            return fn(session, *args)

    def sync(self, fn: Any, *args: Any) -> Any:
        with self.db.write() as session:
            return fn(session, *args)

    def add(self, text: str = "hello", **kw: Any) -> int:
        post = NewPost(text=text, channels=["outbox"], now="at" not in kw, **kw)
        view = add_post(self.config, self.db, post, self.clock())
        return int(view["id"])

    def claim(self) -> store.Claim | None:
        return self.sync(store.claim, "outbox", self.clock(), "me", timedelta(minutes=5))

    def publish(self, adapter: FakeAdapter) -> store.Claim:
        claim = self.claim()
        assert claim is not None
        asyncio.run(self.publisher.publish(claim, adapter, self.channel))
        return claim

    def delivery(self, post_id: int) -> dict[str, Any]:
        return show_post(self.db, post_id)["deliveries"][0]

    def reconcile(self, adapter: FakeAdapter) -> None:
        for delivery_id in self.sync(store.expired_leases, self.clock(), set()):
            claim = self.sync(store.take_over, delivery_id, self.clock(), "me", timedelta(minutes=5))
            assert claim is not None
            asyncio.run(self.publisher.reconcile(claim, adapter, self.channel))

    def open_attempts(self) -> int:
        with self.db.read() as session:
            return int(session.scalar(select(func.count()).where(Attempt.outcome.is_(None))) or 0)


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> World:
    w = World(tmp_path, db_url)
    yield w
    w.db.dispose()


def test_success_records_the_remote_post(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter()
    world.publish(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "published"
    assert d["remote_url"] == "fake://1"
    assert d["published_at"] == "2026-12-01T07:00:00Z"
    assert [p.text for p in adapter.published] == ["hello"]
    assert world.open_attempts() == 0


def test_claim_takes_the_oldest_due_and_never_twice(world: World) -> None:
    first, second = world.add("one"), world.add("two")
    c1, c2 = world.claim(), world.claim()
    assert c1 is not None and c2 is not None
    assert (c1.post_id, c2.post_id) == (first, second)
    assert world.claim() is None
    assert world.open_attempts() == 2


def test_a_claim_opens_its_attempt_and_says_whether_the_channel_has_more_due(world: World) -> None:
    # On PostgreSQL the claim is one statement (data-modifying CTEs); on SQLite two: both must say the same.
    world.add("one")
    world.add("two")
    c1 = world.claim()
    assert c1 is not None and c1.more_due and c1.attempt_number == 1 and c1.content.text == "one"
    with world.db.read() as session:
        opened = session.execute(
            select(Attempt.id, Attempt.number, Attempt.owner).where(Attempt.delivery_id == c1.delivery_id)
        ).one()
    assert opened == (c1.attempt_id, 1, "me")
    c2 = world.claim()
    assert c2 is not None and not c2.more_due and c2.content.text == "two"


def test_transient_error_schedules_a_durable_retry_then_fails(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter()
    adapter.script = [TransientError("HTTP 502 from the API")] * 3
    world.publish(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "queued"
    assert "502" in d["last_error"]
    retry_at = datetime.fromisoformat(d["next_attempt_at"].replace("Z", "+00:00"))
    assert START + timedelta(seconds=24) <= retry_at <= START + timedelta(seconds=36)  # 30 s ± 20 %
    assert world.claim() is None  # not before its time
    world.clock.advance(40)
    world.publish(adapter)
    world.clock.advance(3600)
    world.publish(adapter)  # third attempt: max_attempts = 3
    d = world.delivery(post_id)
    assert d["status"] == "failed"
    assert "gave up after 3 attempts" in d["last_error"] and f"smm retry {post_id}" in d["last_error"]
    assert adapter.published == []


def test_one_info_line_a_post_and_a_retrys_start_stands_out(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="smm")
    post_id = world.add()
    adapter = FakeAdapter()
    adapter.script = [TransientError("HTTP 502 from the API")]
    world.publish(adapter)
    world.clock.advance(40)
    world.publish(adapter)
    failed, *rest = [r.getMessage() for r in caplog.records if r.name == "smm.publish"]
    assert failed.startswith(f"post {post_id} to outbox: temporary failure (HTTP 502 from the API); retry scheduled")
    assert rest == [
        f"publishing post {post_id} to outbox (attempt 2)",
        f"published post {post_id} to outbox: fake://1",
    ]


def test_retry_after_longer_than_the_backoff_wins_and_pauses_the_scope(world: World) -> None:
    post_id = world.add()
    scope = RateLimit("chat:1", 20, 60)
    adapter = FakeAdapter(limits=(scope,))
    adapter.script = [RateLimited("Too Many Requests", retry_after=600)]
    world.publish(adapter)
    retry_at = datetime.fromisoformat(world.delivery(post_id)["next_attempt_at"].replace("Z", "+00:00"))
    assert retry_at == START + timedelta(seconds=600)
    assert world.limiter.not_before("chat:1") == pytest.approx(world.clock.mono + 600)


def test_permanent_error_fails_at_once_and_flags_the_channel(world: World) -> None:
    post_id, other = world.add(), world.add("other")
    adapter = FakeAdapter()
    adapter.script = [AuthError("the bot token was rejected: create a new one with @BotFather")]
    world.publish(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "failed" and "BotFather" in d["last_error"]
    assert d["attempts"] == 1
    from scheduler.service import queue_notes

    assert any("needs attention" in n and "BotFather" in n for n in queue_notes(world.config, world.db))
    world.publish(adapter)  # the channel's other posts still go out; success clears the flag
    assert world.delivery(other)["status"] == "published"
    assert not any("needs attention" in n for n in queue_notes(world.config, world.db))


def test_content_rejection_does_not_mark_the_channel(world: World) -> None:
    world.add()
    adapter = FakeAdapter()
    adapter.script = [ContentRejected("message is too long")]
    world.publish(adapter)
    from scheduler.service import queue_notes

    assert queue_notes(world.config, world.db) == []


def test_ambiguous_outcome_keeps_the_attempt_open_then_read_back_finds_the_post(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter(can_read_back=True)
    adapter.script = [applied(AmbiguousError("read timeout after sending"))]
    world.publish(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "publishing" and "outcome unknown" in d["last_error"]
    assert world.open_attempts() == 1
    world.reconcile(adapter)  # the lease has not expired yet: nothing happens
    assert world.delivery(post_id)["status"] == "publishing"
    world.clock.advance(61)
    world.reconcile(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "published" and d["remote_url"] == "fake://1"
    assert len(adapter.published) == 1
    assert world.open_attempts() == 0


def test_ambiguous_outcome_not_found_is_sent_again_exactly_once(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter(can_read_back=True)
    adapter.script = [AmbiguousError("connection dropped")]  # not applied: the network has nothing
    world.publish(adapter)
    world.clock.advance(61)
    world.reconcile(adapter)
    assert world.delivery(post_id)["status"] == "queued"
    world.publish(adapter)
    assert world.delivery(post_id)["status"] == "published"
    assert len(adapter.published) == 1


def test_read_back_failure_keeps_checking_then_gives_up_as_unknown(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter(can_read_back=True)
    adapter.script = [AmbiguousError("timeout")]
    world.publish(adapter)
    world.clock.advance(61)
    adapter.read_back = [TransientError("API down")]
    world.reconcile(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "publishing" and "could not read outbox back" in d["last_error"]
    world.clock.advance(86400 + 120)
    adapter.read_back = [TransientError("API still down")]
    world.reconcile(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "unknown" and f"smm resolve {post_id}" in d["last_error"]


def test_unreadable_network_holds_as_unknown_and_resolve_settles_it(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter(can_read_back=False)
    adapter.script = [applied(AmbiguousError("read timeout"))]
    world.publish(adapter)
    world.clock.advance(61)
    world.reconcile(adapter)
    d = world.delivery(post_id)
    assert d["status"] == "unknown"
    assert "cannot be read back" in d["last_error"] and f"smm resolve {post_id} --published" in d["last_error"]
    assert len(adapter.published) == 1  # nothing was resent
    view = resolve_post(world.config, world.db, post_id, world.clock(), published=True, url="https://t.me/x/5")
    assert view["deliveries"][0]["status"] == "published"
    assert view["deliveries"][0]["remote_url"] == "https://t.me/x/5"
    assert world.open_attempts() == 0


def test_on_uncertain_retry_sends_again(tmp_path: Path, db_url: str) -> None:
    w = World(tmp_path, db_url)
    object.__setattr__(w.channel, "on_uncertain", "retry")
    post_id = w.add()
    adapter = FakeAdapter(can_read_back=False)
    adapter.script = [applied(AmbiguousError("read timeout"))]
    w.publish(adapter)
    w.clock.advance(61)
    w.reconcile(adapter)
    assert w.delivery(post_id)["status"] == "queued"
    w.publish(adapter)
    assert w.delivery(post_id)["status"] == "published"
    assert len(adapter.published) == 2  # the documented price of on_uncertain = "retry"
    w.db.dispose()


def test_idempotent_network_resends_with_the_same_key_at_once(world: World) -> None:
    post_id = world.add()
    adapter = FakeAdapter(can_read_back=False, idempotent_window=3600)
    adapter.script = [AmbiguousError("timeout")]
    claim = world.publish(adapter)
    assert world.delivery(post_id)["status"] == "publishing"
    world.reconcile(adapter)  # no reconcile delay for a network with a dedup key
    assert world.delivery(post_id)["status"] == "queued"
    world.publish(adapter)
    assert [p.key for p in adapter.published] == [claim.key]


def test_a_late_writer_cannot_overwrite_a_settled_attempt(world: World) -> None:
    post_id = world.add()
    claim = world.claim()
    assert claim is not None
    assert world.sync(store.record_unknown, claim, world.clock(), "settled elsewhere")
    assert not world.sync(store.record_published, claim, world.clock(), "9", "fake://9")
    assert world.delivery(post_id)["status"] == "unknown"


def test_take_over_refuses_a_live_lease(world: World) -> None:
    world.add()
    claim = world.claim()
    assert claim is not None
    assert world.sync(store.take_over, claim.delivery_id, world.clock(), "other", timedelta(minutes=5)) is None
    world.clock.advance(301)
    taken = world.sync(store.take_over, claim.delivery_id, world.clock(), "other", timedelta(minutes=5))
    assert taken is not None and taken.open_since == START


def _overdue(world: World, minutes: int, text: str = "late") -> int:
    post_id = world.add(text)
    with world.db.write() as session:
        d = session.scalar(select(Delivery).where(Delivery.post_id == post_id))
        assert d is not None
        d.due_at = d.next_attempt_at = world.clock() - timedelta(minutes=minutes)
    return post_id


@pytest.mark.parametrize(
    ("policy", "status", "fragment"),
    [
        ("publish", "queued", "publishing it now"),
        ("skip", "failed", "skipped"),
        ("reslot", "queued", "moved to the next free slot, Fri 2026-12-04 10:00 MSK"),
    ],
)
def test_late_policies(world: World, policy: str, status: str, fragment: str) -> None:
    object.__setattr__(world.channel, "late_policy", policy)
    within, beyond = _overdue(world, 10, "within grace"), _overdue(world, 120, "beyond grace")
    cutoff = world.clock() - world.config.daemon.late_grace
    lines = world.sync(apply_late_policy, world.config, cutoff, world.clock(), set())
    assert len(lines) == 1 and fragment in lines[0] and f"post {beyond}" in lines[0]
    assert world.delivery(within)["status"] == "queued"
    d = world.delivery(beyond)
    assert d["status"] == status
    if policy == "skip":
        assert d["last_error"].startswith("missed:")
    if policy == "reslot":
        assert d["due_at"] == "2026-12-04T07:00:00Z"


def test_reslot_gives_each_late_delivery_its_own_slot(world: World) -> None:
    a, b = _overdue(world, 60 * 24, "a"), _overdue(world, 60 * 23, "b")
    cutoff = world.clock() - world.config.daemon.late_grace
    world.sync(apply_late_policy, world.config, cutoff, world.clock(), set())
    assert world.delivery(a)["due_at"] == "2026-12-04T07:00:00Z"
    assert world.delivery(b)["due_at"] == "2026-12-08T07:00:00Z"


def test_reslot_cancels_a_delivery_whose_post_expires_before_its_new_slot(world: World) -> None:
    """Not moved past its expiry in silence: cancelled as an expired one is, and said so; its slot stays free."""
    expiring, other = _overdue(world, 120, "a sale that ends today"), _overdue(world, 100, "b")
    with world.db.write() as session:
        session.execute(
            update(Delivery).where(Delivery.post_id == expiring).values(delete_at=world.clock() + timedelta(hours=6))
        )
    cutoff = world.clock() - world.config.daemon.late_grace
    lines = world.sync(apply_late_policy, world.config, cutoff, world.clock(), set())
    assert lines[0] == (
        f"post {expiring} to outbox (due 2026-12-01 05:00 UTC) is 2 h late, and it expires "
        "(Tue 2026-12-01 16:00 MSK) before the next free slot, Fri 2026-12-04 10:00 MSK: cancelled "
        "(late_policy = reslot)"
    )
    cancelled = world.delivery(expiring)
    assert (cancelled["status"], cancelled["note"]) == ("cancelled", "cancelled: the post expired before it went out")
    assert cancelled["due_at"] == "2026-12-01T05:00:00Z"
    assert world.delivery(other)["due_at"] == "2026-12-04T07:00:00Z"  # the slot it would have had


@pytest.mark.parametrize("policy", ["publish", "skip", "reslot"])
def test_a_late_delivery_whose_post_expired_while_down_is_cancelled_whatever_the_policy(
    world: World, policy: str
) -> None:
    """A sale that ended while no daemon ran is not announced late (then taken down): cancelled, and said so."""
    object.__setattr__(world.channel, "late_policy", policy)
    expired = _overdue(world, 120, "a sale that ended an hour ago")
    with world.db.write() as session:
        session.execute(
            update(Delivery).where(Delivery.post_id == expired).values(delete_at=world.clock() - timedelta(hours=1))
        )
    cutoff = world.clock() - world.config.daemon.late_grace
    lines = world.sync(apply_late_policy, world.config, cutoff, world.clock(), set())
    assert lines == [
        f"post {expired} to outbox (due 2026-12-01 05:00 UTC) is 2 h late, and its post expired "
        "(Tue 2026-12-01 09:00 MSK) while smm was not running: cancelled"
    ]
    cancelled = world.delivery(expired)
    assert (cancelled["status"], cancelled["note"]) == ("cancelled", "cancelled: the post expired before it went out")


def test_reslot_with_a_full_queue_takes_a_slot_no_post_holds(world: World) -> None:
    """The next free slot after now, not one of the slots the queue already holds before its last post."""
    queued = [add_post(world.config, world.db, NewPost(text=t, channels=["outbox"]), world.clock()) for t in "ab"]
    held = [int(view["id"]) for view in queued]
    late = _overdue(world, 120, "late")
    cutoff = world.clock() - world.config.daemon.late_grace
    lines = world.sync(apply_late_policy, world.config, cutoff, world.clock(), set())
    taken = {world.delivery(p)["due_at"] for p in held}
    assert taken == {"2026-12-04T07:00:00Z", "2026-12-08T07:00:00Z"}
    assert world.delivery(late)["due_at"] == "2026-12-11T07:00:00Z"
    assert "moved to the next free slot, Fri 2026-12-11 10:00 MSK" in lines[0]


def test_release_returns_an_unsent_claim_to_the_queue(world: World) -> None:
    post_id = world.add()
    claim = world.claim()
    assert claim is not None
    assert world.sync(store.release, claim, world.clock(), "never sent")
    d = world.delivery(post_id)
    assert d["status"] == "queued" and d["attempts"] == 0
    assert world.open_attempts() == 0


def test_status_values_are_the_documented_ones() -> None:
    assert [s.value for s in Status] == [
        "queued",
        "publishing",
        "published",
        "failed",
        "cancelled",
        "unknown",
        "deleted",
    ]


def test_an_in_call_retry_waits_without_holding_the_hosts_slot(world: World) -> None:
    """The per-host slot bounds requests in flight; a retry waiting out a retry_after (or its place behind a busy
    bot) must not hold it, or ten such waits stop every channel on that host."""
    import dataclasses

    world.publisher.config = dataclasses.replace(
        world.config, retry=dataclasses.replace(world.config.retry, in_call_attempts=2)
    )
    post_id = world.add()
    adapter = FakeAdapter()
    adapter.script = [RateLimited("Too Many Requests", retry_after=0.2), None]
    claim = world.claim()
    assert claim is not None
    slot = asyncio.Semaphore(1)
    events: list[str] = []

    async def neighbour() -> None:
        await asyncio.sleep(0.05)  # the publish has failed once and is waiting to retry
        async with slot:
            events.append(f"neighbour sent after {adapter.attempts} attempt(s)")

    async def both() -> None:
        await asyncio.gather(world.publisher.publish(claim, adapter, world.channel, slot), neighbour())

    asyncio.run(both())
    assert events == ["neighbour sent after 1 attempt(s)"]
    assert adapter.attempts == 2
    assert world.delivery(post_id)["status"] == "published"


def test_a_cycles_look_reads_what_is_due_expired_and_next(world: World) -> None:
    def look(exclude: frozenset[int] = frozenset()) -> watch.Look:
        return world.sync(watch.look, seen, world.clock(), world.clock(), set(exclude))

    seen = 0
    idle = look()
    assert (idle.new, idle.newest, idle.due, idle.expired, idle.next_wake) == ([], 0, [], [], None)
    first = world.add("now")
    later = world.add("in ten minutes", at="2026-12-01 10:10")
    routine = look()
    assert [d.post_id for d in routine.new] == [first, later] and routine.newest > 0
    assert routine.due == ["outbox"] and routine.expired == []
    assert routine.next_wake == START + timedelta(minutes=10)  # what is due now does not hide the next one
    seen = routine.newest
    claim = world.claim()  # leased for 5 minutes
    assert claim is not None and claim.post_id == first
    busy = look()
    assert (busy.new, busy.due, busy.expired) == ([], [], [])
    assert busy.next_wake == START + timedelta(minutes=5)  # the lease's end comes before the next post
    world.clock.advance(6 * 60)
    expired = look()
    assert expired.expired == [claim.delivery_id] and expired.next_wake == START + timedelta(minutes=10)
    assert look(exclude=frozenset({claim.delivery_id})).expired == []


def test_run_once_looks_only_at_what_was_due_at_its_start(world: World) -> None:
    # `smm run --once` passes its start as due_at: a post due after it is not this run's, but is the next wake-up.
    start = world.clock()
    world.add("due at the start")
    world.add("due half a minute later", at="2026-12-01 10:00:30")
    world.clock.advance(30)
    look = world.sync(watch.look, 0, start, world.clock(), set())
    assert look.due == ["outbox"] and look.expired == []
    assert look.next_wake == START + timedelta(seconds=30)
    later = world.sync(watch.look, 0, world.clock(), world.clock(), set())
    assert later.due == ["outbox"] and later.next_wake is None
