"""The ``smm`` command end to end, in-process, on SQLite and on PostgreSQL.

The clock is pinned: ``scheduler.cli.now`` returns Monday 23 November 2026, 12:00 UTC. The two channels are
outboxes in different zones, both on the default slots (Tuesday and Friday at 10:00 local):

- ``berlin`` (Europe/Berlin, UTC+1 in November): Tue 24 Nov 09:00Z, Fri 27 Nov 09:00Z, Tue 1 Dec 09:00Z, ...
- ``ny`` (America/New_York, UTC-5 in November): Tue 24 Nov 15:00Z, Fri 27 Nov 15:00Z, Tue 1 Dec 15:00Z, ...

Bad input must exit 2 with one line on stderr and write nothing: each such test compares every row of every table
and the media store before and after.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import create_engine, inspect, text

import scheduler
from scheduler.config import load_config
from scheduler.db import SCHEMA_HEAD
from tests.conftest import CliResult, make_png, run_cli, utc, write_config

NOW = utc(2026, 11, 23, 12, 0)
REPO = Path(__file__).resolve().parents[2]

CHANNELS = """
[[channels]]
name = "berlin"
network = "outbox"
timezone = "Europe/Berlin"
path = "outbox-berlin"

[[channels]]
name = "ny"
network = "outbox"
timezone = "America/New_York"
path = "outbox-ny"
"""

# The default slots from NOW, in UTC.
BERLIN = ["2026-11-24T09:00:00Z", "2026-11-27T09:00:00Z", "2026-12-01T09:00:00Z", "2026-12-04T09:00:00Z"]
NY = ["2026-11-24T15:00:00Z", "2026-11-27T15:00:00Z", "2026-12-01T15:00:00Z", "2026-12-04T15:00:00Z"]

DISABLED = re.compile(r"smm: warning: channel '[^']+' is disabled \(\S+: environment variable SMM_\w+ is not set\)")
POST_KEYS = {"id", "text", "link", "category", "media", "created_at", "deliveries"}
DELIVERY_KEYS = {
    "channel",
    "network",
    "status",
    "due_at",
    "attempts",
    "published_at",
    "remote_id",
    "remote_url",
    "last_error",
    "next_attempt_at",
    "note",
    "network_scheduled_at",
    "delete_at",
    "deleted_at",
    "pool_use",
}
MEDIA_KEYS = {"name", "sha256", "mime", "size", "width", "height"}


@dataclass
class Env:
    tmp: Path
    config: Path
    db_url: str
    media_dir: Path

    def __call__(self, *args: str) -> CliResult:
        return run_cli(*args, config=self.config)

    def ok(self, *args: str) -> CliResult:
        """Run ``smm``; it must succeed with nothing on stderr but the notes that a database was created and that a
        channel whose secret is not set (the tests of queueing need none) is disabled."""
        result = self(*args)
        err = "".join(
            line
            for line in result.err.splitlines(True)
            if not line.startswith("smm: created a new database") and not DISABLED.match(line)
        )
        assert (result.code, err) == (0, ""), result
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").out)

    def add(self, *args: str) -> dict[str, Any]:
        view: dict[str, Any] = self.json("add", *args)
        return view

    def sql(self, statement: str, **params: Any) -> list[Any]:
        engine = create_engine(self.db_url)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def snapshot(self) -> dict[str, Any]:
        """Every row of every table, and every file of the media store."""
        engine = create_engine(self.db_url)
        try:
            existing = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        tables = {
            name: sorted(tuple(str(v) for v in row) for row in self.sql(f"SELECT * FROM {name}"))
            for name in ("posts", "deliveries", "attempts", "channel_states", "pool")
            if name in existing
        }
        files = (
            sorted(str(p.relative_to(self.media_dir)) for p in self.media_dir.rglob("*"))
            if self.media_dir.exists()
            else []
        )
        return {"tables": tables, "media": files}


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    config = write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False)
    yield Env(tmp_path, config, db_url, load_config(config, env={}).media_dir)


def test_the_first_add_says_it_created_the_database(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, CHANNELS, outbox=False)
    assert run_cli("add", "x", "--channel", "nope", config=config).code == 2
    assert not (tmp_path / "smm.db").exists()  # refused input leaves no database behind
    first = run_cli("add", "hello", config=config)
    assert first.code == 0
    assert first.err.startswith("smm: created a new database at ")
    assert run_cli("add", "again", config=config).err == ""


def test_reading_commands_never_create_a_database(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, CHANNELS, outbox=False)
    result = run_cli("queue", config=config)
    assert result.code == 0
    assert "no database at" in result.out and "`smm add` creates it" in result.out
    assert not (tmp_path / "smm.db").exists()


POST_COMMANDS = [
    ("show", "99"),
    ("cancel", "99"),
    ("reschedule", "99", "--at", "2027-01-01T10:00"),
    ("retry", "99"),
    ("resolve", "99", "--retry"),
    ("stats", "99"),
]


@pytest.mark.parametrize("args", POST_COMMANDS)
def test_a_post_id_with_no_database_yet_is_no_such_post(tmp_path: Path, sqlite_url: str, args: tuple[str, ...]) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, CHANNELS, outbox=False)
    assert one_error_line(run_cli(*args, config=config)) == (
        f"no post with id 99: no database at {tmp_path / 'smm.db'} yet: nothing was queued with this config "
        f"({config}); `smm add` creates it"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def due(view: dict[str, Any]) -> dict[str, str]:
    return {d["channel"]: d["due_at"] for d in view["deliveries"]}


def one_error_line(result: CliResult, code: int = 2) -> str:
    assert result.code == code, result
    assert result.out == "", result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("smm: error: "), result.err
    return lines[0][len("smm: error: ") :]


# -- smm add ------------------------------------------------------------------------------------------------------


def test_add_prints_the_post_and_each_channels_local_time(env: Env) -> None:
    result = env.ok("add", "Hello")
    assert result.out == (
        "queued post 1\n"
        "  berlin  queued      Tue 2026-11-24 10:00 CET\n"
        "  ny      queued      Tue 2026-11-24 10:00 EST\n"
    )


def test_add_fills_slots_first_in_first_out_per_channel(env: Env) -> None:
    views = [env.add(f"post {i}") for i in range(3)]
    assert [v["id"] for v in views] == [1, 2, 3]
    assert [due(v) for v in views] == [{"berlin": BERLIN[i], "ny": NY[i]} for i in range(3)]
    # a post on one channel only takes that channel's next slot; the other channel's queue is untouched
    assert due(env.add("ny only", "--channel", "ny")) == {"ny": NY[3]}
    assert due(env.add("both again")) == {"berlin": BERLIN[3], "ny": "2026-12-08T15:00:00Z"}


def test_add_skips_a_slot_taken_by_an_explicit_time(env: Env) -> None:
    env.add("explicit", "--channel", "berlin", "--at", "2026-11-24T10:00")
    assert due(env.add("queued", "--channel", "berlin")) == {"berlin": BERLIN[1]}


def test_add_at_without_offset_is_read_in_each_channels_zone(env: Env) -> None:
    view = env.add("at local", "--at", "2026-12-02T15:00")
    assert due(view) == {"berlin": "2026-12-02T14:00:00Z", "ny": "2026-12-02T20:00:00Z"}
    out = env.ok("show", str(view["id"])).out
    assert "  berlin  queued      Wed 2026-12-02 15:00 CET\n" in out
    assert "  ny      queued      Wed 2026-12-02 15:00 EST\n" in out


@pytest.mark.parametrize("when", ["2026-12-02T15:00+03:00", "2026-12-02T12:00Z", "2026-12-02 12:00:00+00:00"])
def test_add_at_with_an_offset_is_one_instant_everywhere(env: Env, when: str) -> None:
    assert due(env.add("at utc", "--at", when)) == {"berlin": "2026-12-02T12:00:00Z", "ny": "2026-12-02T12:00:00Z"}


def test_add_at_in_the_repeated_hour_takes_the_first_occurrence(env: Env) -> None:
    view = env.add("fall back", "--channel", "berlin", "--at", "2027-10-31T02:30")
    assert due(view) == {"berlin": "2027-10-31T00:30:00Z"}


def test_add_now(env: Env) -> None:
    view = env.add("urgent", "--now")
    assert due(view) == {"berlin": "2026-11-23T12:00:00Z", "ny": "2026-11-23T12:00:00Z"}
    # --now does not take a slot: the next queued post still gets the first one
    assert due(env.add("queued")) == {"berlin": BERLIN[0], "ny": NY[0]}


def test_add_next_pushes_the_queue_back_one_slot(env: Env) -> None:
    a = env.add("A")
    b = env.add("B")
    explicit = env.add("explicit", "--channel", "berlin", "--at", "2026-12-01T10:00")  # = BERLIN[2]
    c = env.add("C", "--next", "--channel", "berlin")
    assert due(c) == {"berlin": BERLIN[0]}
    posts = {p["id"]: due(p) for p in env.json("queue")}
    assert posts[a["id"]] == {"berlin": BERLIN[1], "ny": NY[0]}  # ny untouched
    assert posts[b["id"]] == {"berlin": BERLIN[3], "ny": NY[1]}  # BERLIN[2] is the explicit post's
    assert posts[explicit["id"]] == {"berlin": BERLIN[2]}


def test_add_channel_repeated_and_unknown(env: Env) -> None:
    assert due(env.add("twice", "--channel", "berlin", "--channel", "berlin")) == {"berlin": BERLIN[0]}
    assert set(due(env.add("both", "--channel", "ny", "--channel", "berlin"))) == {"berlin", "ny"}
    before = env.snapshot()
    assert one_error_line(env("add", "x", "--channel", "berlin", "--channel", "paris")) == (
        "unknown channel 'paris'; configured: berlin, ny"
    )
    assert env.snapshot() == before


def test_add_media_is_copied_into_the_store(env: Env) -> None:
    picture = make_png(env.tmp / "pic.png", 3, 2)
    data = picture.read_bytes()
    view = env.add("with a picture", "--media", str(picture))
    (item,) = view["media"]
    assert item == {
        "name": "pic.png",
        "sha256": item["sha256"],
        "mime": "image/png",
        "size": len(data),
        "width": 3,
        "height": 2,
    }
    stored = env.media_dir / item["sha256"][:2] / f"{item['sha256']}.png"
    assert stored.read_bytes() == data
    picture.unlink()  # the queue no longer needs the user's file
    assert env.json("show", str(view["id"]))["media"] == [item]
    assert "  media: pic.png (image/png 3x2, " in env.ok("show", str(view["id"])).out


def test_add_link_and_category(env: Env) -> None:
    view = env.add("read this", "--link", "https://example.org/a?b=1", "--category", "news")
    assert (view["link"], view["category"]) == ("https://example.org/a?b=1", "news")
    assert env.add("default category")["category"] == "educational"
    assert env.add("", "--link", "https://example.org/only-a-link")["text"] == ""


@pytest.mark.parametrize("command", ["add", "queue", "show"])
def test_json_has_exactly_the_documented_keys(env: Env, command: str) -> None:
    picture = make_png(env.tmp / "p.png")
    view = env.add("contract", "--media", str(picture), "--link", "https://example.org")
    data = {"add": view, "queue": env.json("queue")[0], "show": env.json("show", "1")}[command]
    assert set(data) == POST_KEYS
    # `smm show` adds each delivery's attempt history; the rest is the same contract.
    extra = {"history"} if command == "show" else set()
    assert {frozenset(d) for d in data["deliveries"]} == {frozenset(DELIVERY_KEYS | extra)}
    assert {frozenset(m) for m in data["media"]} == {frozenset(MEDIA_KEYS)}


def test_json_values_and_time_format(env: Env) -> None:
    view = env.add("contract", "--link", "https://example.org")
    assert {k: view[k] for k in ("id", "text", "link", "category", "media", "created_at")} == {
        "id": 1,
        "text": "contract",
        "link": "https://example.org",
        "category": "educational",
        "media": [],
        "created_at": "2026-11-23T12:00:00Z",
    }
    assert view["deliveries"][0] | {"next_attempt_at": None, "note": None, "network_scheduled_at": None} == {
        "channel": "berlin",
        "network": "outbox",
        "status": "queued",
        "due_at": BERLIN[0],
        "attempts": 0,
        "published_at": None,
        "remote_id": None,
        "remote_url": None,
        "last_error": None,
        "next_attempt_at": None,
        "note": None,
        "network_scheduled_at": None,
        "delete_at": None,
        "deleted_at": None,
        "pool_use": None,
    }
    for key in ("created_at",):
        assert datetime.fromisoformat(view[key].replace("Z", "+00:00")).utcoffset() is not None


def test_text_is_kept_exactly(env: Env) -> None:
    text_ = "Привет 👋\n\tsecond line  with  spaces  \r\n«quotes» & <b>markup</b>"
    view = env.add(text_)
    assert view["text"] == text_
    assert env.json("show", str(view["id"]))["text"] == text_


def test_json_prints_user_content_unredacted(env: Env) -> None:
    link = "https://example.org/confirm?token=abc123"
    view = env.add("Use the code: access_token=xyz in the form", "--link", link)
    assert view["link"] == link
    assert "access_token=xyz" in view["text"]


# -- smm queue ----------------------------------------------------------------------------------------------------


def test_queue_table_and_json(env: Env) -> None:
    env.add("first post")
    env.add("second post", "--channel", "ny")
    assert env.ok("queue").out == (
        "POST  CHANNEL  STATUS  WHEN                      TRIES  TEXT\n"
        "1     berlin   queued  Tue 2026-11-24 10:00 CET  0      first post\n"
        "1     ny       queued  Tue 2026-11-24 10:00 EST  0      first post\n"
        "2     ny       queued  Fri 2026-11-27 10:00 EST  0      second post\n"
    )
    posts = env.json("queue")
    assert isinstance(posts, list)
    assert [(p["id"], due(p)) for p in posts] == [
        (1, {"berlin": BERLIN[0], "ny": NY[0]}),
        (2, {"ny": NY[1]}),
    ]


def test_queue_empty(env: Env) -> None:
    assert env.ok("queue").out.startswith("the queue is empty (")  # and there is no database yet
    assert env.json("queue") == []
    env.add("x")
    env.ok("cancel", "1")
    assert env.ok("queue").out == "the queue is empty\n"


def test_queue_orders_by_time_not_by_id(env: Env) -> None:
    env.add("late", "--at", "2027-01-01T10:00")
    env.add("soon")
    assert [p["text"] for p in env.json("queue")] == ["soon", "late"]


def test_queue_all_channel_and_limit(env: Env) -> None:
    for i in range(3):
        env.add(f"post {i}")
    env.ok("cancel", "2")
    assert [p["id"] for p in env.json("queue")] == [1, 3]
    everything = env.json("queue", "--all")
    assert [p["id"] for p in everything] == [1, 2, 3]
    assert {d["status"] for d in everything[1]["deliveries"]} == {"cancelled"}
    assert [[d["channel"] for d in p["deliveries"]] for p in env.json("queue", "--channel", "ny")] == [["ny"], ["ny"]]
    assert [p["id"] for p in env.json("queue", "--limit", "1")] == [1]
    table = env.ok("queue", "--limit", "1").out
    assert table.endswith("... 1 more post (use --limit 0 to list all)\n")
    assert [p["id"] for p in env.json("queue", "--limit", "0")] == [1, 3]
    assert one_error_line(env("queue", "--channel", "paris")) == "unknown channel 'paris'; configured: berlin, ny"


# -- show, cancel, reschedule, retry, resolve ---------------------------------------------------------------------


def test_show(env: Env) -> None:
    env.add("line one\nline two", "--link", "https://example.org", "--category", "ugc")
    assert env.ok("show", "1").out == (
        "post 1 (ugc), created Mon 2026-11-23 12:00 UTC\n"
        "  text: line one\n"
        "        line two\n"
        "  link: https://example.org\n"
        "deliveries of post 1\n"
        "  berlin  queued      Tue 2026-11-24 10:00 CET\n"
        "  ny      queued      Tue 2026-11-24 10:00 EST\n"
    )
    shown = env.json("show", "1")
    assert (shown["id"], shown["text"], due(shown)) == (1, "line one\nline two", {"berlin": BERLIN[0], "ny": NY[0]})


def test_cancel_then_cancel_again(env: Env) -> None:
    env.add("to cancel")
    assert env.ok("cancel", "1").out == (
        "cancelled post 1\n"
        "  berlin  cancelled   Tue 2026-11-24 10:00 CET\n"
        "  ny      cancelled   Tue 2026-11-24 10:00 EST\n"
    )
    before = env.snapshot()
    assert one_error_line(env("cancel", "1")) == "post 1 has nothing to cancel: berlin is cancelled, ny is cancelled"
    assert env.snapshot() == before
    # the cancelled post's slots are free again for the next post
    assert due(env.add("next")) == {"berlin": BERLIN[0], "ny": NY[0]}


def test_cancel_one_channel(env: Env) -> None:
    env.add("two channels")
    assert "  ny      queued" in env.ok("cancel", "1", "--channel", "berlin").out
    assert {d["channel"]: d["status"] for d in env.json("show", "1")["deliveries"]} == {
        "berlin": "cancelled",
        "ny": "queued",
    }


def test_cancelling_a_published_post_is_refused(env: Env) -> None:
    env.add("gone out")
    env.sql("UPDATE deliveries SET status = 'published', published_at = due_at, remote_id = 'r1'")
    before = env.snapshot()
    assert one_error_line(env("cancel", "1")) == "post 1 has nothing to cancel: berlin is published, ny is published"
    assert env.snapshot() == before


def test_reschedule(env: Env) -> None:
    env.add("move me")
    env.add("stay")
    out = env.ok("reschedule", "1", "--at", "2026-12-10T08:00").out
    assert out == (
        "rescheduled post 1\n"
        "  berlin  queued      Thu 2026-12-10 08:00 CET\n"
        "  ny      queued      Thu 2026-12-10 08:00 EST\n"
    )
    assert due(env.json("show", "1")) == {"berlin": "2026-12-10T07:00:00Z", "ny": "2026-12-10T13:00:00Z"}
    # a rescheduled post keeps its time; queue placement continues after the last queued post
    assert due(env.add("after")) == {"berlin": BERLIN[2], "ny": NY[2]}
    before = env.snapshot()
    assert one_error_line(env("reschedule", "1", "--at", "2020-01-01T00:00Z")).startswith(
        "--at '2020-01-01T00:00Z' is in the past (now is 2026-11-23 "
    )
    assert one_error_line(env("reschedule", "1", "--at", "soon")).startswith("--at 'soon' is not an ISO 8601 date-time")
    assert env.snapshot() == before


def test_retry_a_failed_delivery(env: Env) -> None:
    env.add("will fail")
    env.sql("UPDATE deliveries SET status = 'failed', attempts = 3, last_error = 'boom' WHERE channel = 'berlin'")
    out = env.ok("retry", "1").out
    assert out.startswith("re-queued post 1\n  berlin  queued")
    shown = env.json("show", "1")
    berlin = next(d for d in shown["deliveries"] if d["channel"] == "berlin")
    assert (berlin["status"], berlin["attempts"]) == ("queued", 0)
    assert env.sql("SELECT next_attempt_at FROM deliveries WHERE channel = 'berlin'")[0][0] is not None
    before = env.snapshot()
    assert one_error_line(env("retry", "1")) == (
        "post 1 has no failed or unknown delivery to retry: berlin is queued, ny is queued"
    )
    assert env.snapshot() == before


def test_a_retried_delivery_no_longer_shows_its_old_error(tmp_path: Path, sqlite_url: str) -> None:
    # A real failure: the outbox folder cannot be created under a file. The daemon runs on the real clock.
    (tmp_path / "a-file").write_text("")
    body = '[daemon]\nqueue_warning_days = 1\n\n[[channels]]\nname = "box"\nnetwork = "outbox"\npath = "a-file/box"\n'
    config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False)
    assert run_cli("add", "will fail", "--now", config=config).code == 0
    daemon = run_cli("run", "--once", config=config)
    assert daemon.code == 0, daemon
    assert "within 1 day; queue more posts" in daemon.err
    failed = json.loads(run_cli("show", "1", "--json", config=config).out)["deliveries"][0]
    assert failed["status"] == "failed" and "cannot write to the outbox" in failed["last_error"]

    result = run_cli("retry", "1", config=config)
    assert result.code == 0, result
    assert result.out.startswith("re-queued post 1\n  box  queued  ")
    assert "outbox" not in result.out and "smm retry" not in result.out
    shown = json.loads(run_cli("show", "1", "--json", config=config).out)["deliveries"][0]
    assert (shown["status"], shown["attempts"], shown["last_error"]) == ("queued", 0, None)
    assert [(a["attempt"], a["outcome"]) for a in shown["history"]] == [(1, "permanent")]
    assert shown["history"][0]["error"] == failed["last_error"]  # the history keeps what happened


def test_resolve_an_unknown_delivery(env: Env) -> None:
    env.add("in doubt")
    env.sql("UPDATE deliveries SET status = 'unknown', attempts = 1")
    assert env.ok("queue").out.splitlines()[:2] == [
        "! channel 'berlin': 1 delivery in doubt: check the channel, then `smm resolve ID --published` or `--retry`",
        "! channel 'ny': 1 delivery in doubt: check the channel, then `smm resolve ID --published` or `--retry`",
    ]
    # the message names the option the user gave
    assert one_error_line(env("resolve", "1", "--published", "--url", "example.org/p", "--channel", "berlin")) == (
        "--url 'example.org/p' is not an http(s) URL"
    )
    env.ok("resolve", "1", "--published", "--url", "https://example.org/p/1", "--channel", "berlin")
    env.ok("resolve", "1", "--retry")
    states = {d["channel"]: (d["status"], d["remote_url"]) for d in env.json("show", "1")["deliveries"]}
    assert states == {"berlin": ("published", "https://example.org/p/1"), "ny": ("queued", None)}
    before = env.snapshot()
    assert one_error_line(env("resolve", "1", "--retry")) == (
        "post 1 has no unknown delivery to resolve: berlin is published, ny is queued"
    )
    assert one_error_line(env("resolve", "1")) == "give exactly one of --published and --retry"
    assert env.snapshot() == before


@pytest.mark.parametrize("args", POST_COMMANDS)
def test_unknown_post_id(env: Env, args: tuple[str, ...]) -> None:
    env.add("one post")
    before = env.snapshot()
    assert one_error_line(env(*args)) == "no post with id 99"
    assert env.snapshot() == before


# -- smm db upgrade, --version ------------------------------------------------------------------------------------


def test_db_upgrade_is_idempotent(env: Env) -> None:
    where = str(env.tmp / "smm.db") if env.db_url.startswith("sqlite") else env.db_url
    assert env.ok("db", "upgrade").out == f"database {where} upgraded from schema none to {SCHEMA_HEAD}\n"
    assert env.ok("db", "upgrade").out == f"database {where} is up to date (schema {SCHEMA_HEAD})\n"
    env.ok("add", "works")


def test_a_database_from_a_newer_smm(env: Env) -> None:
    env.add("existing")
    env.sql("UPDATE alembic_version SET version_num = '0099'")
    where = str(env.tmp / "smm.db") if env.db_url.startswith("sqlite") else env.db_url
    before = env.snapshot()
    assert one_error_line(env("add", "x"), code=1) == (
        f"database {where} is at schema 0099, this smm needs {SCHEMA_HEAD}: run `smm db upgrade` "
        "(or upgrade smm if the database is newer)"
    )
    assert one_error_line(env("db", "upgrade"), code=1) == (
        f"database {where} is at schema 0099, which this smm ({scheduler.__version__}) does not know: "
        "a newer smm has upgraded it; upgrade smm"
    )
    assert env.snapshot() == before


def test_a_failed_migration_is_one_clear_line(env: Env) -> None:
    env.sql("CREATE TABLE posts (id INTEGER PRIMARY KEY)")  # in the way of the first migration
    where = str(env.tmp / "smm.db") if env.db_url.startswith("sqlite") else env.db_url
    message = one_error_line(env("db", "upgrade"), code=1)
    assert message.startswith(f"database {where}: upgrade to schema head failed: "), message
    assert "already exists" in message
    assert env.sql("SELECT COUNT(*) FROM posts") == [(0,)]


def test_version(env: Env) -> None:
    assert env.ok("--version").out == f"smm, version {scheduler.__version__}\n"


# -- bad input: exit 2, one line, nothing written -----------------------------------------------------------------


def media(tmp: Path) -> dict[str, Path]:
    make_png(tmp / "good.png")
    (tmp / "folder").mkdir()
    (tmp / "notes.png").write_text("not a picture")
    (tmp / "empty.jpg").write_bytes(b"")
    return {"good": tmp / "good.png", "folder": tmp / "folder", "text": tmp / "notes.png", "empty": tmp / "empty.jpg"}


BAD_ADDS = [
    ("unknown-channel", ["x", "--channel", "paris"], "unknown channel 'paris'; configured: berlin, ny"),
    (
        "malformed-date",
        ["x", "--at", "next tuesday"],
        "--at 'next tuesday' is not an ISO 8601 date-time such as 2026-12-01T10:00 or 2026-12-01T10:00+03:00",
    ),
    (
        "impossible-date",
        ["x", "--at", "2026-02-30T10:00"],
        "--at '2026-02-30T10:00' is not an ISO 8601 date-time such as 2026-12-01T10:00 or 2026-12-01T10:00+03:00",
    ),
    (
        "date-without-time",
        ["x", "--at", "2026-12-01"],
        "--at '2026-12-01' has no time of day; give one, e.g. 2026-12-01T10:00",
    ),
    (
        "past-date",
        ["x", "--at", "2026-11-23T12:59"],
        "--at '2026-11-23T12:59' is in the past (now is 2026-11-23 13:00 CET)",
    ),
    (
        "exactly-now",
        ["x", "--at", "2026-11-23T12:00Z"],
        "--at '2026-11-23T12:00Z' is in the past (now is 2026-11-23 13:00 CET)",
    ),
    (
        "skipped-by-dst",
        ["x", "--at", "2027-03-28T02:30"],  # fine in New York, skipped in Berlin: nothing is written for either
        "--at '2027-03-28T02:30': 2027-03-28 02:30 does not exist in Europe/Berlin (the clocks skip it)",
    ),
    (
        "skipped-by-dst-ny",
        ["x", "--channel", "ny", "--at", "2027-03-14T02:15"],
        "--at '2027-03-14T02:15': 2027-03-14 02:15 does not exist in America/New_York (the clocks skip it)",
    ),
    (
        "missing-media",
        ["x", "--media", "{good}", "--media", "{tmp}/missing.png"],
        "media {tmp}/missing.png: no such file",
    ),
    ("directory-media", ["x", "--media", "{folder}"], "media {folder}: is a directory, not an image file"),
    (
        "non-image",
        ["x", "--media", "{good}", "--media", "{text}"],
        "media {text}: not an image smm can publish (JPEG, PNG, GIF, WebP, BMP or TIFF)",
    ),
    ("empty-file", ["x", "--media", "{empty}"], "media {empty}: the file is empty"),
    (
        "text-too-long",
        ["x" * 100_001, "--media", "{good}"],
        "channel 'berlin': the text is 100001 characters long; outbox allows 100000; "
        "channel 'ny': the text is 100001 characters long; outbox allows 100000",
    ),
    (
        "empty-text",
        [""],
        "channel 'berlin': the post has no text, link or media; channel 'ny': the post has no text, link or media",
    ),
    (
        "blank-text",
        [" \n\t "],
        "channel 'berlin': the post has no text, link or media; channel 'ny': the post has no text, link or media",
    ),
    ("nul-byte", ["a\x00b"], "the text contains a NUL byte"),
    ("control-character", ["\x1b[31mred"], "the text contains the control character U+001B at position 1"),
    ("delete-character", ["ab\x7f"], "the text contains the control character U+007F at position 3"),
    ("bad-link", ["x", "--link", "example.org"], "--link 'example.org' is not an http(s) URL"),
    ("javascript-link", ["x", "--link", "javascript:alert(1)"], "--link 'javascript:alert(1)' is not an http(s) URL"),
    (
        "too-many-media",
        ["x"] + ["--media", "{good}"] * 21,
        "channel 'berlin': 21 media files; outbox allows 20; channel 'ny': 21 media files; outbox allows 20",
    ),
    ("two-modes", ["x", "--now", "--next"], "give at most one of --at, --now and --next"),
    ("at-and-now", ["x", "--now", "--at", "2027-01-01T10:00"], "give at most one of --at, --now and --next"),
]


@pytest.mark.parametrize(("args", "message"), [(a, m) for _, a, m in BAD_ADDS], ids=[i for i, _, _ in BAD_ADDS])
def test_bad_add_writes_nothing(env: Env, args: list[str], message: str) -> None:
    env.add("an existing post", "--media", str(make_png(env.tmp / "existing.png", 2, 2)))
    paths = {k: str(v) for k, v in media(env.tmp).items()} | {"tmp": str(env.tmp)}
    before = env.snapshot()
    result = env("add", *[a.format(**paths) if "{" in a else a for a in args])
    assert one_error_line(result) == message.format(**paths)
    assert env.snapshot() == before


def test_text_that_is_not_valid_unicode(env: Env) -> None:
    # A non-UTF-8 argument (here a Latin-1 "é") reaches Python as a lone surrogate.
    env.add("existing")
    before = env.snapshot()
    assert one_error_line(env("add", "caf\udce9")) == "the text is not valid Unicode at position 4"
    assert env.snapshot() == before


def test_a_link_longer_than_the_database_keeps_is_bad_input(env: Env) -> None:
    env.add("existing")
    picture = make_png(env.tmp / "p.png")
    before = env.snapshot()
    link = "https://example.org/" + "a" * 2100
    assert one_error_line(env("add", "x", "--link", link, "--media", str(picture))) == (
        f"--link is {len(link)} characters long; at most 2048"
    )
    assert env.snapshot() == before


def test_no_channels_configured(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url, outbox=False)
    assert one_error_line(run_cli("add", "x", config=config)) == (
        f"no channels are configured in {config}: add a [[channels]] table"
    )
    assert run_cli("queue", config=config).out.startswith("the queue is empty")


def test_bad_add_on_an_empty_database_writes_no_post(env: Env) -> None:
    assert one_error_line(env("add", "x", "--channel", "paris")).startswith("unknown channel")
    assert env.snapshot()["tables"].get("posts", []) == []
    assert env.snapshot()["media"] == []


def test_add_on_a_channel_smm_cannot_read_the_secret_of_queues_and_warns(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    monkeypatch.delenv("SMM_TG_TOKEN", raising=False)
    token = tmp_path / "vk-token"
    body = (
        '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@smm_test"\ntoken_env = "SMM_TG_TOKEN"\n\n'
        f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = 1\ntoken_file = "{token}"\n\n'
        '[[channels]]\nname = "fb"\nnetwork = "facebook"\npage_id = 1\ntoken_credential = "fb-token"\n'
    )
    config = write_config(tmp_path / "config.toml", sqlite_url, body)
    config.chmod(0o600)
    result = run_cli("add", "hello", config=config)
    assert result.code == 0, result
    assert [line.split()[:2] for line in result.out.splitlines()[1:]] == [
        ["outbox", "queued"],
        ["tg", "queued"],
        ["vk", "queued"],
        ["fb", "queued"],
    ]
    # A systemd credential is not checked outside the service: an operator's shell has no $CREDENTIALS_DIRECTORY.
    assert result.err.splitlines() == [
        f"smm: created a new database at {tmp_path / 'smm.db'}",
        "smm: warning: channel 'tg' is disabled (channels[1].token_env: environment variable SMM_TG_TOKEN is not "
        "set); the post waits there",
        f"smm: warning: channel 'vk' is disabled (channels[2].token_file: cannot read {token}: No such file or "
        "directory); the post waits there",
    ]

    monkeypatch.setenv("SMM_TG_TOKEN", "123:not-real")
    token.write_text("vk1.a.not-real")
    token.chmod(0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "credentials"))
    result = run_cli("add", "again", "--channel", "tg", "--channel", "vk", "--channel", "fb", "--json", config=config)
    assert result.code == 0, result
    assert result.err == (
        f"smm: warning: channel 'fb' is disabled (channels[3].token_credential: cannot read "
        f"{tmp_path}/credentials/fb-token: No such file or directory); the post waits there\n"
    )
    assert "not-real" not in result.out + result.err


def test_text_too_long_for_telegram(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    monkeypatch.delenv("SMM_TG_TOKEN", raising=False)  # adding needs no token (it warns, below)
    body = '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@smm_test"\ntoken_env = "SMM_TG_TOKEN"\n'
    config = write_config(tmp_path / "config.toml", db_url, body)
    result = run_cli("add", "x" * 4097, config=config)
    message = one_error_line(result)
    assert message.startswith("channel 'tg': ") and "4096" in message, message
    assert "channel 'outbox'" not in message
    assert run_cli("add", "x" * 4096, config=config).code == 0


@pytest.mark.parametrize(
    "args",
    [("add", "x", "--category", "gossip"), ("queue", "--limit", "-1"), ("show", "abc"), ("add", "--bogus")],
)
def test_usage_errors_are_one_line_too(env: Env, args: tuple[str, ...]) -> None:
    env.add("existing")
    before = env.snapshot()
    one_error_line(env(*args))
    assert env.snapshot() == before


def test_a_row_longer_than_a_one_column_header(env: Env) -> None:
    path = env.tmp / "posts.csv"
    path.write_text("text\nhello\ntoo,many\n")
    env.add("existing")
    before = env.snapshot()
    assert one_error_line(env("import", str(path))) == f"{path}:3: 2 fields, but the header names 1 column"
    assert env.snapshot() == before


def test_a_media_path_with_a_line_break_stays_on_one_line(env: Env) -> None:
    env.add("existing")
    before = env.snapshot()
    message = one_error_line(env("add", "x", "--media", str(env.tmp / "two\nlines.png")))
    assert message.endswith(": no such file")
    assert env.snapshot() == before


# -- config and database trouble ----------------------------------------------------------------------------------


def test_malformed_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[database\nurl = 1\n")
    message = one_error_line(run_cli("add", "x", config=config))
    assert message.startswith(f"{config}: invalid TOML: ")
    assert not (tmp_path / "smm.db").exists()


def test_config_with_an_unknown_key(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "config.toml", db_url, '[schedule]\ntimezone = "UTC"\ncolor = "red"\n')
    assert one_error_line(run_cli("add", "x", config=config)) == (
        f"{config}: schedule.color: unknown key (known here: slots, timezone)"
    )
    assert not (tmp_path / "smm.db").exists()


def test_config_discovery(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # ./config.toml (the tests run in tmp_path), then $SMM_CONFIG over it, then --config over both
    write_config(tmp_path / "config.toml", db_url, outbox=False)
    assert one_error_line(run_cli("add", "x")) == (
        f"no channels are configured in {tmp_path}/config.toml: add a [[channels]] table"
    )
    other = write_config(tmp_path / "other.toml", db_url, CHANNELS, outbox=False)
    monkeypatch.setenv("SMM_CONFIG", str(other))
    assert run_cli("add", "x").code == 0
    assert one_error_line(run_cli("add", "x", config=tmp_path / "config.toml")).startswith("no channels")


def test_config_warnings_go_to_stderr(tmp_path: Path, db_url: str) -> None:
    token = tmp_path / "token"
    token.write_text("123:not-real")
    token.chmod(0o644)
    body = f'[[channels]]\nname = "vk"\nnetwork = "vk"\ngroup_id = 1\ntoken_file = "{token}"\n'
    config = write_config(tmp_path / "config.toml", db_url, body)
    config.chmod(0o600)
    result = run_cli("queue", config=config)
    assert result.code == 0
    assert result.err.endswith(
        f"WARNING smm.cli: {config}: channels[1].token_file: {token} is readable or writable by other users "
        "(mode 644): chmod 600 it\n"
    )
    assert "123:not-real" not in result.err + result.out


# What each command needs besides the options to get as far as reading its config. A new command fails
# test_global_options_after_the_command until it is listed here.
COMMAND_ARGS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("add",): ("text",),
    ("queue",): (),
    ("show",): ("1",),
    ("cancel",): ("1",),
    ("delete",): ("1",),
    ("reschedule",): ("1", "--now"),
    ("retry",): ("1",),
    ("resolve",): ("1", "--retry"),
    ("plan",): (),
    ("import",): ("posts.csv",),
    ("import-feed",): ("feed.xml",),
    ("db", "upgrade"): (),
    ("run",): ("--once",),
    ("doctor",): (),
    ("report",): (),
    ("comments",): (),
    ("pool",): (),
    ("pool", "remove"): ("1",),
    ("alerts", "test"): (),
    ("stats",): ("1",),
}


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command, those imported when used (``RootGroup.lazy``) too; a group that runs by itself is one."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield (*prefix, name)
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_global_options_after_the_command(tmp_path: Path, sqlite_url: str) -> None:
    from scheduler.cli import cli

    assert set(command_paths(cli)) == set(COMMAND_ARGS)
    good = write_config(tmp_path / "config.toml", sqlite_url, CHANNELS, outbox=False)
    missing = tmp_path / "missing.toml"
    (tmp_path / "posts.csv").write_text("text\nhello\n")
    root, http = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, http.level
    try:
        for path, args in COMMAND_ARGS.items():
            # The --config after the command's name wins over the one before it; -v before and -v after add up.
            result = run_cli("-v", *path, *args, "--config", str(missing), "-v", config=good)
            assert (result.code, result.out) == (2, ""), (path, result)
            assert f"{missing}: no such file" in result.err, (path, result)
            assert (root.level, http.level) == (logging.DEBUG, logging.DEBUG), path
            root.setLevel(logging.WARNING)
            http.setLevel(logging.WARNING)
            result = run_cli(*path, *args, "-v", config=missing)
            assert result.code == 2 and f"{missing}: no such file" in result.err, (path, result)
            assert (root.level, http.level) == (logging.DEBUG, logging.WARNING), path
        assert one_error_line(run_cli("db", "--config", str(missing), "upgrade", config=good)) == (
            f"{missing}: no such file"
        )
        assert run_cli("add", "hello", "--config", str(good), config=missing).code == 0
    finally:
        root.setLevel(levels[0])
        http.setLevel(levels[1])


def test_missing_config(tmp_path: Path) -> None:
    assert one_error_line(run_cli("queue", config=tmp_path / "nope.toml")) == f"{tmp_path}/nope.toml: no such file"


def test_unreachable_postgresql(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", "postgresql+psycopg://smm:s3cret-pw@127.0.0.1:1/smm")
    picture = make_png(tmp_path / "p.png")
    for args in (("add", "x", "--media", str(picture)), ("queue",), ("db", "upgrade")):
        message = one_error_line(run_cli(*args, config=config), code=1)
        assert message.startswith("database postgresql+psycopg://smm:***@127.0.0.1:1/smm is unavailable: "), message
        assert "s3cret-pw" not in message
    assert not (tmp_path / "media").exists()


def test_sqlite_in_a_missing_folder(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path}/no/such/dir/smm.db")
    assert one_error_line(run_cli("add", "x", config=config), code=1) == (
        f"cannot create the database {tmp_path}/no/such/dir/smm.db: the directory {tmp_path}/no/such/dir does not exist"
    )


def test_sqlite_database_that_is_a_folder_or_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()
    config = write_config(tmp_path / "a.toml", f"sqlite:///{tmp_path}/folder.db")
    assert one_error_line(run_cli("queue", config=config), code=1) == f"database {tmp_path}/folder.db is a directory"
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n" * 100)
    config = write_config(tmp_path / "b.toml", f"sqlite:///{tmp_path}/notes.db")
    assert one_error_line(run_cli("add", "x", config=config), code=1) == (
        f"database {tmp_path}/notes.db is not an SQLite database, or it is damaged: file is not a database"
    )
    assert (tmp_path / "notes.db").read_text() == "these are my notes, not a database\n" * 100


def test_the_quickstart_leaves_nothing_for_git_to_track(tmp_path: Path) -> None:
    # The Quickstart's steps after the install, in a repository with the project's .gitignore.
    for name in (".gitignore", "config.example.toml"):
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "config.toml").write_bytes((tmp_path / "config.example.toml").read_bytes())
    assert run_cli("add", "Hello from smm-scheduler", "--now").code == 0
    assert run_cli("run", "--once").code == 0
    assert (tmp_path / "smm.db.lock").exists() and any((tmp_path / "outbox").iterdir())
    status = subprocess.run(
        ["git", "-C", str(tmp_path), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.splitlines() == ["?? .gitignore", "?? config.example.toml"]


def test_the_unit_file_installs_as_the_readme_does() -> None:
    unit = (REPO / "packaging" / "systemd" / "smm-scheduler.service").read_text()
    section = (REPO / "README.md").read_text().split("## Running as a systemd service")[1]
    steps = section.split("```sh\n")[1].split("```")[0].splitlines()
    assert [line[4:] for line in unit.splitlines() if line.startswith("#   ")] == steps
    assert "/opt/smm-scheduler/bin/pip install ." in steps[1]  # from the checkout, as the Quickstart
    documentation = re.search(r"^Documentation=file:(\S+)$", unit, re.MULTILINE)
    assert documentation is not None, "Documentation= names the installed README"
    assert f"README.md {documentation.group(1)}" in steps[2]
    assert "pypi" not in unit.lower()


# -- smm add stays light ------------------------------------------------------------------------------------------

HEAVY = ("telegram", "vk_api", "httpx", "apscheduler", "alembic", "requests", "tenacity", "apprise")


def test_version_and_help_load_no_database_library() -> None:
    code = (
        "import sys\n"
        "from scheduler.cli import main\n"
        "for args in (['--version'], ['--help'], ['add', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg', 'sqlite3')])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_add_and_import_load_no_network_client_daemon_or_orm(tmp_path: Path, db_url: str) -> None:
    # A channel of every network whose adapter exists, so that `add` validates against each adapter class.
    networks = {
        "vk": 'group_id = 1\ntoken_env = "SMM_T"',
        "telegram": 'chat_id = "@smm_test"\ntoken_env = "SMM_T"',
        "facebook": 'page_id = 1\ntoken_env = "SMM_T"',
        "ok": 'group_id = 1\napplication_key = "K"\napplication_secret_env = "SMM_S"\ntoken_env = "SMM_T"',
    }
    body = "".join(
        f'[[channels]]\nname = "{n}"\nnetwork = "{n}"\n{keys}\n\n'
        for n, keys in networks.items()
        if (REPO / "adapters" / f"{n}.py").exists()
    )
    config = write_config(tmp_path / "config.toml", db_url, body)
    assert run_cli("db", "upgrade", config=config).code == 0  # Alembic runs here, not in the measured process
    picture = make_png(tmp_path / "p.png", 10, 10)
    rows = tmp_path / "rows.csv"
    rows.write_text("text,at\nfrom a file,2030-01-01T10:00\n")
    code = (
        "import json, sys\n"
        "from scheduler.cli import main\n"
        f"for args in (['add', 'light', '--media', {str(picture)!r}], ['import', {str(rows)!r}]):\n"
        "    try:\n"
        f"        main(['--config', {str(config)!r}, *args])\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.splitlines()[-1])
    assert result.stdout.startswith("queued post 1\n")
    assert "imported 1 post (" in result.stdout
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    assert "scheduler.daemon" not in modules
    # The ORM (60 ms to import, 30 ms more to map the classes): `add` and `import` work on Core tables.
    assert [m for m in modules if m.startswith(("sqlalchemy.orm", "scheduler.models"))] == []


def test_a_command_leaves_the_whole_database_in_its_file(tmp_path: Path) -> None:
    # SQLite keeps recent commits in smm.db-wal until its last connection closes: a command must close them, so
    # that copying smm.db after `smm add` copies the post too (the process itself skips its final collection).
    from tests.support import smm

    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}")
    for args in (("add", "kept in the file"), ("queue",), ("db", "upgrade")):
        result = smm(*args, config=config)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in tmp_path.glob("smm.db*")) == ["smm.db"], args
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "smm.db").read_bytes())
    engine = create_engine(f"sqlite:///{copy}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT text FROM posts")).scalars().all() == ["kept in the file"]
    engine.dispose()
    # A command that refuses the database (made by a newer version) closes it too.
    engine = create_engine(f"sqlite:///{tmp_path / 'smm.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    refused = smm("queue", config=config)
    assert refused.returncode == 1 and "ffff" in refused.stderr, refused.stderr
    assert sorted(p.name for p in tmp_path.glob("smm.db*")) == ["smm.db"]
