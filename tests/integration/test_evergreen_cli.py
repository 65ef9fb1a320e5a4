"""The evergreen pool from the command line: ``smm add --evergreen``, the ``evergreen`` column of ``smm import``,
``smm pool`` (text and JSON), ``smm pool remove`` and the mark of a filled delivery in ``smm queue``.

The clock is pinned to Monday 23 November 2026, 12:00 UTC; channels ``berlin`` and ``ny`` (see test_cli).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from scheduler import evergreen
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.tables import deliveries
from tests.conftest import make_png, write_config
from tests.integration.test_cli import BERLIN, CHANNELS, NOW, Env, one_error_line
from tests.integration.test_import import rejected, write_csv


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    body = CHANNELS + '\n[evergreen]\nfill_ahead = "2d"\ncooldown = "10d"\n'
    config = write_config(tmp_path / "config.toml", db_url, body, outbox=False)
    yield Env(tmp_path, config, db_url, load_config(config, env={}).media_dir)


def fill(env: Env, when: timedelta = timedelta(0)) -> list[evergreen.Fill]:
    """What the daemon's job does for each channel, at NOW + ``when``."""
    config = load_config(env.config, env={})
    db = Database(config.database_url)
    try:
        with db.write() as session:
            return [f for c in config.channels for f in evergreen.fill_slots(session, c, NOW + when).fills]
    finally:
        db.dispose()


def test_an_evergreen_post_goes_into_each_pool_and_not_into_the_queue(env: Env) -> None:
    image = make_png(env.tmp / "cover.png", 4, 3)
    result = env.ok("add", "Our story", "--evergreen", "--media", str(image))
    assert result.out == "added post 1 to the evergreen pool of berlin, ny\n"
    assert env.json("queue") == []
    view = env.json("show", "1")
    assert view["deliveries"] == [] and view["pool"] == ["berlin", "ny"]
    assert [m["name"] for m in view["media"]] == ["cover.png"]
    assert len(list(env.media_dir.rglob("*.png"))) == 1  # stored as a queued post's media are
    shown = env.ok("show", "1").out
    assert "  in the evergreen pool of berlin: never used\n  in the evergreen pool of ny: never used\n" in shown
    assert "deliveries of post 1" not in shown  # it has none: no empty list of them


def test_delete_of_a_post_only_in_the_pool_points_to_pool_remove(env: Env) -> None:
    env.add("Our story", "--evergreen")
    before = env.snapshot()
    assert one_error_line(env("delete", "1")) == (
        "post 1 is only in the evergreen pool, nothing went out to delete; `smm pool remove 1` takes it out of the "
        "evergreen pool of berlin, ny"
    )
    assert "`smm pool remove 1` takes it out of the evergreen pool of ny" in one_error_line(
        env("delete", "1", "--channel", "ny")
    )
    assert env.snapshot() == before


def test_the_json_of_an_evergreen_add_names_its_pools(env: Env) -> None:
    view = env.add("Only in Berlin", "--evergreen", "--channel", "berlin")
    assert view["deliveries"] == [] and view["pool"] == ["berlin"]


@pytest.mark.parametrize("timing", [["--now"], ["--next"], ["--at", "2026-12-01T10:00"]])
def test_evergreen_with_a_time_is_refused(env: Env, timing: list[str]) -> None:
    env.add("already in the pool", "--evergreen")
    before = env.snapshot()
    line = one_error_line(env("add", "x", "--evergreen", *timing))
    assert line == "--evergreen puts the post into the pool, not at a time: leave out --at, --now and --next"
    assert env.snapshot() == before


def test_evergreen_with_an_expiry_is_refused(env: Env) -> None:
    env.add("already in the pool", "--evergreen")
    before = env.snapshot()
    line = one_error_line(env("add", "x", "--evergreen", "--expire-at", "2026-12-01T10:00"))
    assert line == "--evergreen puts the post into the pool, to go out again and again: leave out --expire-at"
    assert env.snapshot() == before


def test_an_evergreen_post_is_validated_as_a_queued_one(env: Env) -> None:
    env.add("already in the pool", "--evergreen")
    before = env.snapshot()
    assert "control character" in one_error_line(env("add", "bad\x1b[2J", "--evergreen"))
    assert "is not an http(s) URL" in one_error_line(env("add", "x", "--link", "ftp://a", "--evergreen"))
    assert env.snapshot() == before


def test_pool_lists_uses_and_when_each_post_may_be_used_again(env: Env) -> None:
    env.add("Evergreen A", "--evergreen", "--channel", "berlin")
    env.add("Evergreen B", "--evergreen", "--channel", "berlin")
    fills = fill(env)  # Tue 24 Nov 10:00 Berlin is empty and within 2 days
    assert [(f.post_id, f.slot.isoformat()) for f in fills] == [(1, "2026-11-24T09:00:00+00:00")]
    entries = env.json("pool")
    assert entries == [
        {
            "post_id": 1,
            "channel": "berlin",
            "category": "educational",
            "text": "Evergreen A",
            "added_at": "2026-11-23T12:00:00Z",
            "uses": 1,
            "last_used": BERLIN[0],
            "next_use": "2026-12-04T09:00:00Z",
            "last_published": None,
            "queued_fill": BERLIN[0],
        },
        {
            "post_id": 2,
            "channel": "berlin",
            "category": "educational",
            "text": "Evergreen B",
            "added_at": "2026-11-23T12:00:00Z",
            "uses": 0,
            "last_used": None,
            "next_use": None,
            "last_published": None,
            "queued_fill": None,
        },
    ]
    text = env.ok("pool", "--channel", "berlin").out.splitlines()
    assert " ".join(text[0].split()) == "POST CHANNEL USES LAST USED QUEUED FILL MAY BE USED TEXT"
    # Its one use is still queued: not "last used" on a day to come.
    assert " ".join(text[1].split()) == (
        "1 berlin 1 never Tue 2026-11-24 10:00 CET Fri 2026-12-04 10:00 CET Evergreen A"
    )
    assert " ".join(text[2].split()) == "2 berlin 0 never - now Evergreen B"
    assert env.ok("pool", "--channel", "ny").out == "the evergreen pool is empty on channel ny\n"


def test_last_used_is_the_last_use_that_went_out_and_a_queued_fill_is_shown_apart(env: Env) -> None:
    env.add("Evergreen A", "--evergreen", "--channel", "berlin")
    env.add("A queued post", "--channel", "berlin", "--at", "2026-11-27T10:00")  # between its two uses
    (first,) = fill(env)
    db = Database(env.db_url)
    try:
        with db.write() as session:
            session.execute(
                update(deliveries)
                .where(deliveries.c.post_id == first.post_id)
                .values(status="published", published_at=first.slot, remote_id="1")
            )
    finally:
        db.dispose()
    assert [f.slot.isoformat() for f in fill(env, timedelta(days=10))] == ["2026-12-04T09:00:00+00:00"]
    (entry,) = env.json("pool")
    assert (entry["uses"], entry["last_used"], entry["last_published"], entry["queued_fill"], entry["next_use"]) == (
        2,
        BERLIN[3],
        BERLIN[0],
        BERLIN[3],
        "2026-12-14T09:00:00Z",
    )
    line = " ".join(env.ok("pool").out.splitlines()[1].split())
    assert line == ("1 berlin 2 Tue 2026-11-24 10:00 CET Fri 2026-12-04 10:00 CET Mon 2026-12-14 10:00 CET Evergreen A")
    assert (
        "  in the evergreen pool of berlin: 2 uses, last used Tue 2026-11-24 10:00 CET, queued fill "
        "Fri 2026-12-04 10:00 CET, may be used again Mon 2026-12-14 10:00 CET\ndeliveries of post 1\n"
    ) in env.ok("show", "1").out


def test_queue_marks_a_delivery_filled_from_the_pool(env: Env) -> None:
    env.add("Evergreen A", "--evergreen", "--channel", "berlin")
    env.add("A queued post", "--channel", "berlin", "--at", "2026-12-01T10:00")
    fill(env)
    posts = env.json("queue")
    assert [(p["id"], p["deliveries"][0]["pool_use"]) for p in posts] == [(1, 1), (2, None)]
    lines = env.ok("queue").out.splitlines()
    assert any("[evergreen, use 1] Evergreen A" in line and "berlin" in line for line in lines), lines
    assert not any("[evergreen" in line for line in lines if "A queued post" in line)


def test_pool_remove_takes_a_post_out_and_an_unknown_id_is_one_line(env: Env) -> None:
    env.add("Evergreen A", "--evergreen")
    assert env.ok("pool", "remove", "1").out == "removed post 1 from the evergreen pool of berlin, ny\n"
    assert env.json("pool") == []
    assert one_error_line(env("pool", "remove", "1")) == "post 1 is in no evergreen pool"
    assert one_error_line(env("pool", "remove", "42")) == "post 42 is in no evergreen pool"
    assert fill(env) == []  # a removed post fills nothing


def test_pool_errors_are_one_line(env: Env) -> None:
    assert one_error_line(env("pool", "--channel", "paris")).startswith("unknown channel 'paris'; configured:")
    assert one_error_line(env("pool", "remove", "x")).startswith("Invalid value for 'POST_ID'")


def test_pool_without_a_database_is_empty(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url)
    from tests.conftest import run_cli

    assert run_cli("pool", "--json", config=config).out == "[]\n"
    result = run_cli("pool", "remove", "3", config=config)
    assert result.code == 2 and result.err.startswith("smm: error: post 3 is in no evergreen pool: no database")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("value", ["true", "YES", "1", "yes "])
def test_an_evergreen_row_goes_into_the_pool(env: Env, value: str) -> None:
    path = write_csv(
        env,
        [["text", "channels", "evergreen"], ["queued", "berlin", ""], ["pooled", "berlin", value], ["no", "ny", "no"]],
    )
    result = env.ok("import", str(path))
    assert result.out.splitlines()[:2] == [
        "imported 3 posts (2 deliveries) from posts.csv",
        "  evergreen pool: 1 post (no delivery until one fills a slot)",
    ]
    assert [p["text"] for p in env.json("queue")] == ["queued", "no"]
    assert [(e["post_id"], e["channel"]) for e in env.json("pool")] == [(2, "berlin")]


def test_a_dry_run_shows_evergreen_rows_as_going_into_the_pool(env: Env) -> None:
    path = write_csv(env, [["text", "evergreen"], ["pooled", "1"]])
    lines = env.ok("import", str(path), "--dry-run").out.splitlines()
    assert lines[:2] == ["line 2: berlin  evergreen pool  pooled", "line 2: ny  evergreen pool  pooled"]
    assert env.json("pool") == []


def test_a_bad_evergreen_value_or_one_with_a_time_is_a_row_error(env: Env) -> None:
    env.add("already in the pool", "--evergreen")
    path = write_csv(
        env, [["text", "at", "evergreen"], ["a", "", "maybe"], ["b", "2026-12-01T10:00", "yes"], ["c", "", "0"]]
    )
    assert rejected(env, path) == [
        f"{path}:2: evergreen 'maybe' is not one of true, false, yes, no, 1, 0",
        f"{path}:3: an evergreen row goes into the pool, not at a time: leave 'at' empty",
    ]


def test_an_evergreen_row_with_an_expiry_is_a_row_error(env: Env) -> None:
    env.add("already in the pool", "--evergreen")
    path = write_csv(env, [["text", "evergreen", "expire_at"], ["a", "yes", "2026-12-01T10:00"], ["b", "no", ""]])
    assert rejected(env, path) == [
        f"{path}:2: an evergreen row goes out again and again: leave 'expire_at' empty",
    ]
