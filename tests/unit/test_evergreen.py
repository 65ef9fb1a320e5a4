"""Which post of the evergreen pool fills a slot: pure functions of the pool, the slot and ``now`` (how the fill
and the dry-queue warning decide a run of slots with them: tests/integration/test_evergreen_daemon.py)."""

from __future__ import annotations

from datetime import timedelta

from scheduler.evergreen import choose, last_used_text, next_use
from scheduler.store.pool import PoolPost
from tests.conftest import utc

NOW = utc(2026, 12, 1, 8, 0)
SLOT = utc(2026, 12, 1, 10, 0)
COOLDOWN = timedelta(days=30)


def post(post_id: int, *used_days_ago: float, category: str = "educational") -> PoolPost:
    used = tuple(sorted(SLOT - timedelta(days=d) for d in used_days_ago))
    return PoolPost(post_id, "vk-news", category, f"post {post_id}", utc(2026, 1, 1), used)


def chosen(*pool: PoolPost, neighbours: frozenset[int] = frozenset(), commercial_fits: bool = True) -> int | None:
    picked = choose(list(pool), SLOT, COOLDOWN, neighbours=neighbours, commercial_fits=commercial_fits)
    return None if picked is None else picked.post_id


def test_a_post_never_used_comes_first_then_the_one_used_longest_ago() -> None:
    assert chosen(post(1, 40), post(2), post(3, 90)) == 2
    assert chosen(post(1, 40), post(3, 90), post(4, 60)) == 3
    assert chosen(post(5), post(2)) == 2  # ties by id


def test_a_post_used_within_the_cooldown_is_never_chosen() -> None:
    assert chosen(post(1, 29), post(2, 31)) == 2
    assert chosen(post(1, 29.9), post(2, 1)) is None
    assert chosen(post(1, 30)) == 1  # exactly the cooldown ago: allowed


def test_a_later_use_within_the_cooldown_counts_too() -> None:
    # Post 1 was used long ago and is queued again 10 days after the slot: too close either way.
    used = (SLOT - timedelta(days=90), SLOT + timedelta(days=10))
    later = PoolPost(1, "vk-news", "educational", "p", utc(2026, 1, 1), used)
    assert choose([later, post(2, 31)], SLOT, COOLDOWN) == post(2, 31)


def test_never_the_post_of_the_delivery_before_or_after_the_slot() -> None:
    assert chosen(post(1), post(2, 100), neighbours=frozenset({1})) == 2
    assert chosen(post(1), neighbours=frozenset({1})) is None
    assert chosen(post(1, 100), post(2, 50), neighbours=frozenset({1, 7})) == 2
    # With no cooldown the pool could repeat a post at once: the neighbour rule alone forbids it.
    only = [post(1, 0)]
    assert choose(only, SLOT + timedelta(days=1), timedelta(0), neighbours={1}) is None


def test_the_mix_rule_binds_a_commercial_post() -> None:
    offer, story = post(1, category="commercial"), post(2, 45)
    assert chosen(offer, story, commercial_fits=True) == 1
    assert chosen(offer, story, commercial_fits=False) == 2
    assert chosen(offer, commercial_fits=False) is None


def test_an_empty_pool_fills_nothing() -> None:
    assert chosen() is None


def test_next_use_and_how_a_last_use_reads() -> None:
    assert next_use(post(1), COOLDOWN, NOW) == NOW
    assert next_use(post(1, 10), COOLDOWN, NOW) == SLOT + timedelta(days=20)
    assert next_use(post(1, 400), COOLDOWN, NOW) == NOW
    assert last_used_text(None, NOW) == "never used"
    assert last_used_text(NOW - timedelta(days=41, hours=3), NOW) == "last used 41 days ago"
    assert last_used_text(NOW + timedelta(days=3), NOW) == "next used in 3 days"


def test_a_cancelled_fill_counts_for_the_cooldown_but_is_no_use() -> None:
    cancelled = PoolPost(1, "vk-news", "educational", "p", utc(2026, 1, 1), (), (SLOT,))
    assert choose([cancelled], SLOT, COOLDOWN) is None  # not put straight back where a person took it out
    assert choose([cancelled], SLOT + COOLDOWN, COOLDOWN) == cancelled
    assert (cancelled.last_used, next_use(cancelled, COOLDOWN, NOW)) == (None, SLOT + COOLDOWN)
