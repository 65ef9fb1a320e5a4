"""The content mix rule through ``smm``: slot placement, refusals, --at/--now/--next, --force, reschedule, cancel.

The clock is pinned to Monday 23 November 2026, 12:00 UTC; one outbox channel ``berlin`` on the default slots
(Tuesday and Friday 10:00 CET = 09:00Z). The default rule is at most 2 commercial posts in any 4 deliveries.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import load_config
from tests.conftest import write_config
from tests.integration.test_cli import NOW, Env, due, one_error_line

SLOTS = [
    "2026-11-24T09:00:00Z",
    "2026-11-27T09:00:00Z",
    "2026-12-01T09:00:00Z",
    "2026-12-04T09:00:00Z",
    "2026-12-08T09:00:00Z",
    "2026-12-11T09:00:00Z",
    "2026-12-15T09:00:00Z",
]

BERLIN = """
[[channels]]
name = "berlin"
network = "outbox"
timezone = "Europe/Berlin"
path = "outbox-berlin"
"""


def make_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, body: str = BERLIN, top: str = "") -> Env:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    config = write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=top)
    return Env(tmp_path, config, db_url, load_config(config, env={}).media_dir)


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield make_env(tmp_path, db_url, monkeypatch)


def offer(env: Env, *args: str) -> dict[str, Any]:
    return env.add("offer", "--category", "commercial", *args)


def refused(env: Env, *args: str) -> str:
    before = env.snapshot()
    message = one_error_line(env("add", *args))
    assert env.snapshot() == before
    return message


def test_commercial_posts_fill_slots_while_the_rule_holds(env: Env) -> None:
    assert due(offer(env)) == {"berlin": SLOTS[0]}
    assert due(offer(env)) == {"berlin": SLOTS[1]}
    message = refused(env, "third offer", "--category", "commercial")
    assert message == (
        "channel 'berlin': a commercial post in its next slot (Tue 2026-12-01 10:00 CET) would make 3 of 4 "
        "consecutive deliveries commercial (rule: at most 50% of any 4); the earliest slot that would work is "
        "Tue 2026-12-08 10:00 CET, once 2 more non-commercial posts are queued before it (or give --at with --force)"
    )
    # non-commercial posts are never refused, and they make room as the message said
    assert due(env.add("tip 1")) == {"berlin": SLOTS[2]}
    assert one_error_line(env("add", "x", "--category", "commercial")).count("once 1 more non-commercial post is") == 1
    assert due(env.add("tip 2")) == {"berlin": SLOTS[3]}
    assert due(offer(env)) == {"berlin": SLOTS[4]}


def test_a_commercial_post_goes_past_an_explicit_post_when_that_is_where_the_rule_holds(env: Env) -> None:
    offer(env)  # slot 0
    offer(env)  # slot 1
    env.add("explicit tip", "--at", "2026-12-02T12:00")  # between slots 2 and 3
    env.add("explicit tip", "--at", "2026-12-03T12:00")
    # slot 2 (Tue 1 Dec) would make C C C; slot 3 (Fri 4 Dec) comes after the two tips: C C E E C holds
    assert due(offer(env)) == {"berlin": SLOTS[3]}
    # and the queue carries on after it
    assert due(env.add("tip")) == {"berlin": SLOTS[4]}


def test_force_places_it_anyway(env: Env) -> None:
    offer(env)
    offer(env)
    assert due(offer(env, "--force")) == {"berlin": SLOTS[2]}


def test_explicit_times_that_break_the_rule_are_refused_unless_forced(env: Env) -> None:
    offer(env)
    offer(env)
    message = refused(env, "x", "--category", "commercial", "--at", "2026-11-30T12:00")
    assert message == (
        "channel 'berlin': a commercial post at Mon 2026-11-30 12:00 CET would make 3 of 4 consecutive deliveries "
        "commercial (rule: at most 50% of any 4); no slot in the queue works yet, or give --force"
    )
    now_message = refused(env, "x", "--category", "commercial", "--now")
    assert now_message.startswith("channel 'berlin': a commercial post at Mon 2026-11-23 13:00 CET would make 3 of 4")
    assert due(offer(env, "--at", "2026-11-30T12:00", "--force"))["berlin"] == "2026-11-30T11:00:00Z"
    # an explicit time far enough away is fine
    for _ in range(2):
        env.add("tip")
    assert due(offer(env, "--at", "2027-01-05T12:00"))["berlin"] == "2027-01-05T11:00:00Z"


def test_an_explicit_refusal_names_the_slot_that_would_work(env: Env) -> None:
    offer(env)
    offer(env)
    env.add("tip")
    env.add("tip")
    message = refused(env, "x", "--category", "commercial", "--at", "2026-11-25T12:00")
    assert message.endswith("`smm add` without --at/--now puts it in Tue 2026-12-08 10:00 CET, or give --force")


def test_next_is_refused_when_pushing_the_queue_breaks_the_rule(env: Env) -> None:
    env.add("tip")
    offer(env)
    offer(env)
    message = refused(env, "x", "--category", "commercial", "--next")
    assert message == (
        "channel 'berlin': --next would put 3 commercial posts in 4 consecutive deliveries "
        "(rule: at most 50% of any 4); leave out --next, or give --force"
    )
    view = offer(env, "--next", "--force")
    assert due(view) == {"berlin": SLOTS[0]}
    assert [p["deliveries"][0]["due_at"] for p in env.json("queue")] == SLOTS[:4]


def test_next_is_refused_when_it_moves_the_queue_past_explicit_posts_into_a_breach(env: Env) -> None:
    # C (slot 0), E (explicit), C (slot 1), E (explicit), C (slot 2): at most 2 of any 4.
    offer(env)
    env.add("explicit", "--at", "2026-11-25T12:00")
    offer(env)
    env.add("explicit", "--at", "2026-11-28T12:00")
    offer(env)
    # A tip with --next pushes each offer one slot back, past the explicit posts: E E C E C C.
    message = refused(env, "tip", "--next")
    assert message == (
        "channel 'berlin': --next would put 3 commercial posts in 4 consecutive deliveries "
        "(rule: at most 50% of any 4); leave out --next, or give --force"
    )
    assert due(env.add("tip", "--next", "--force")) == {"berlin": SLOTS[0]}


def test_reschedule_is_refused_where_it_breaks_the_rule_unless_forced(env: Env) -> None:
    for kind in ("commercial", "educational", "commercial", "educational", "commercial"):
        env.add("post", "--category", kind)  # C E C E C on slots 0-4
    before = env.snapshot()
    # moving the tip between the first two offers away leaves C C E C
    assert one_error_line(env("reschedule", "2", "--at", "2027-02-01T12:00")) == (
        "channel 'berlin': moving post 2 to Mon 2027-02-01 12:00 CET would put 3 commercial posts in 4 "
        "consecutive deliveries (rule: at most 50% of any 4); give --force to move it anyway"
    )
    # moving the last offer next to the first one: C C E C E
    assert one_error_line(env("reschedule", "5", "--at", "2026-11-25T12:00")).startswith(
        "channel 'berlin': moving post 5 to Wed 2026-11-25 12:00 CET would put 3 commercial posts in 4"
    )
    assert env.snapshot() == before
    # moving an offer further apart is fine
    env.ok("reschedule", "5", "--at", "2027-01-05T12:00")
    env.ok("reschedule", "2", "--at", "2027-02-01T12:00", "--force")


def test_cancel_is_never_refused_but_says_when_it_breaks_the_mix(env: Env) -> None:
    for kind in ("commercial", "educational", "commercial", "educational", "commercial"):
        env.add("post", "--category", kind)  # C E C E C
    result = env.ok("cancel", "2")
    assert result.out == (
        "cancelled post 2\n"
        "  berlin  cancelled   Fri 2026-11-27 10:00 CET\n"
        "! channel 'berlin': without post 2, 3 of 4 consecutive deliveries from Tue 2026-11-24 10:00 CET are "
        "commercial (rule: at most 50% of any 4): reschedule or cancel one of them\n"
    )
    assert "!" not in env.ok("cancel", "4").out  # C C C: no worse than C C E C
    assert "!" not in env.ok("cancel", "5").out  # cancelling an offer only helps


def test_queue_shows_the_mix_of_channels_with_offers(env: Env) -> None:
    env.add("tip")
    env.add("news", "--category", "news")
    env.add("tip")
    offer(env)
    out = env.ok("queue").out
    assert out.endswith(
        "content mix of the upcoming queue:\n"
        "  berlin: 2 educational, 1 news, 1 commercial (25%), rule: at most 50% of any 4\n"
    )
    offer(env)
    offer(env, "--force")
    assert env.ok("queue").out.splitlines()[-1] == (
        "  berlin: 2 educational, 1 news, 3 commercial (50%), rule: at most 50% of any 4; "
        "BROKEN: 3 commercial in 4 consecutive deliveries up to Fri 2026-12-11 10:00 CET"
    )
    assert env.json("queue")[0]["id"] == 1  # the JSON contract is unchanged


def test_queue_mix_flag_shows_every_channel(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = BERLIN + '\n[[channels]]\nname = "paris"\nnetwork = "outbox"\npath = "outbox-paris"\nmix = false\n'
    env = make_env(tmp_path, db_url, monkeypatch, body)
    env.add("tip")
    assert "content mix" not in env.ok("queue").out
    assert env.ok("queue", "--mix").out.endswith(
        "content mix of the upcoming queue:\n"
        "  berlin: 1 educational, 0 commercial (0%), rule: at most 50% of any 4\n"
        "  paris: 1 educational, 0 commercial (0%), rule: off\n"
    )
    assert env.ok("queue", "--mix", "--channel", "paris").out.endswith(
        "  paris: 1 educational, 0 commercial (0%), rule: off\n"
    )


def test_rule_from_mix_section_and_per_channel(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        BERLIN
        + '\n[[channels]]\nname = "paris"\nnetwork = "outbox"\npath = "outbox-paris"\nmix = false\n'
        + '\n[[channels]]\nname = "rome"\nnetwork = "outbox"\npath = "outbox-rome"\nmix_share = 0.34\nmix_window = 3\n'
    )
    env = make_env(tmp_path, db_url, monkeypatch, body, top="[mix]\nshare = 0.25\nwindow = 4\n")
    utc_slot = "2026-11-24T10:00:00Z"  # paris and rome are on the default UTC schedule
    assert due(env.add("offer", "--category", "commercial")) == {
        "berlin": SLOTS[0],
        "paris": utc_slot,
        "rome": utc_slot,
    }
    message = refused(env, "offer", "--category", "commercial")
    # berlin: 1 of 4 (the [mix] section); rome: 1 of 3 (its own keys); paris: off
    assert message.startswith("channel 'berlin': a commercial post in its next slot (Fri 2026-11-27 10:00 CET) would")
    assert "rule: at most 25% of any 4" in message
    assert "; channel 'rome': " in message and "rule: at most 34% of any 3" in message
    assert "paris" not in message
    assert due(env.add("offer", "--category", "commercial", "--channel", "paris")) == {"paris": "2026-11-27T10:00:00Z"}


def test_share_zero_allows_no_commercial_post(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN + "mix_share = 0\n")
    # refused before the database is touched: a first add leaves no database behind
    assert one_error_line(env("add", "x", "--category", "commercial")) == (
        "the content mix rule of 'berlin' allows no commercial post (share 0); give --force to queue it anyway"
    )
    assert not (tmp_path / "smm.db").exists() or "sqlite" not in db_url
    env.add("tip")
    assert due(env.add("x", "--category", "commercial", "--force")) == {"berlin": SLOTS[1]}


def test_queue_mix_looks_at_the_next_deliveries_only(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scheduler.service.MIX_HORIZON", 3)
    offer(env)
    env.add("tip")
    env.add("tip")
    offer(env)  # the fourth: beyond the horizon
    assert env.ok("queue").out.splitlines()[-1] == (
        "  berlin (the next 3): 2 educational, 1 commercial (33.3%), rule: at most 50% of any 4"
    )
