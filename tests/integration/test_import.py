"""``smm import FILE.csv``: validation of every row first, line numbers, nothing written on error, slots, dry run.

The clock is pinned to Monday 23 November 2026, 12:00 UTC. Channels: ``berlin`` and ``ny`` (outboxes on the default
Tuesday/Friday 10:00 slots, see test_cli) and ``tg`` (Telegram, HTML).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import load_config
from tests.conftest import make_png, write_config
from tests.integration.test_cli import BERLIN, CHANNELS, NOW, NY, Env, due, one_error_line

TG = """
[[channels]]
name = "tg"
network = "telegram"
chat_id = "@acme"
token_env = "SMM_TG_TOKEN"
parse_mode = "HTML"
"""


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    config = write_config(tmp_path / "config.toml", db_url, CHANNELS + TG, outbox=False)
    yield Env(tmp_path, config, db_url, load_config(config, env={}).media_dir)


def write_csv(env: Env, rows: list[list[str]], name: str = "posts.csv", delimiter: str = ",") -> Path:
    path = env.tmp / name
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def queue(env: Env) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = env.json("queue", "--limit", "0")
    return posts


def rejected(env: Env, path: Path, *args: str) -> list[str]:
    """The error lines of a refused import, after checking that it wrote nothing."""
    before = env.snapshot()
    result = env("import", str(path), *args)
    assert result.code == 2, result
    assert result.out == ""
    assert env.snapshot() == before
    lines = result.err.splitlines()
    assert all(line.startswith("smm: error: ") for line in lines), result.err
    return [line[len("smm: error: ") :] for line in lines]


def test_rows_go_into_slots_in_file_order_around_explicit_times(env: Env) -> None:
    env.add("already queued", "--channel", "berlin")
    path = write_csv(
        env,
        [
            ["text", "channels", "at", "link", "category"],
            ["first", "berlin;ny", "", "https://example.org/1", "news"],
            ["explicit", "berlin", "2026-11-27T10:00", "", ""],  # takes berlin's second slot
            ["second", "berlin, ny", "", "", "ugc"],
            ["everywhere", "", "", "", ""],
        ],
    )
    result = env.ok("import", str(path))
    assert result.out == (
        "imported 4 posts (8 deliveries) from posts.csv\n"
        "  berlin: 4 deliveries, Fri 2026-11-27 10:00 CET to Tue 2026-12-08 10:00 CET\n"
        "  ny: 3 deliveries, Tue 2026-11-24 10:00 EST to Tue 2026-12-01 10:00 EST\n"
        "  tg: 1 delivery, Tue 2026-11-24 10:00 UTC\n"
    )
    assert result.err == ""  # no progress bar for a small file off a terminal
    posts = {p["text"]: p for p in queue(env)}
    assert due(posts["already queued"]) == {"berlin": BERLIN[0]}
    assert due(posts["first"]) == {"berlin": BERLIN[2], "ny": NY[0]}
    assert due(posts["explicit"]) == {"berlin": BERLIN[1]}
    assert due(posts["second"]) == {"berlin": BERLIN[3], "ny": NY[1]}
    assert due(posts["everywhere"]) == {"berlin": "2026-12-08T09:00:00Z", "ny": NY[2], "tg": "2026-11-24T10:00:00Z"}
    assert (posts["first"]["link"], posts["first"]["category"], posts["second"]["category"]) == (
        "https://example.org/1",
        "news",
        "ugc",
    )
    # the queue carries on after the import
    assert due(env.add("after", "--channel", "ny")) == {"ny": NY[3]}


def test_media_campaign_and_variants(env: Env) -> None:
    (env.tmp / "pics").mkdir()
    make_png(env.tmp / "pics" / "a.png", 4, 3)
    make_png(env.tmp / "pics" / "b.png", 5, 3)
    path = write_csv(
        env,
        [
            ["text", "channels", "media", "campaign", "utm_content", "text_for_telegram"],
            ["two pictures", "berlin;tg", "pics/a.png; pics/b.png", "spring", "hero", "<b>two</b> pictures"],
        ],
    )
    env.ok("import", str(path))
    view = env.json("show", "1")
    assert [m["name"] for m in view["media"]] == ["a.png", "b.png"]
    assert "  text for telegram: <b>two</b> pictures\n" in env.ok("show", "1").out
    assert "  campaign: spring\n  utm_content: hero\n" in env.ok("show", "1").out
    plan = {i["channel"]: i for i in env.json("plan")}
    assert plan["tg"]["text"] == "<b>two</b> pictures"
    assert plan["tg"]["requests"][0].startswith("sendMediaGroup to @acme: album of 2 photos (a.png, b.png)")


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_written(env: Env) -> None:
    env.add("existing")
    path = write_csv(
        env,
        [
            ["text", "channels", "at", "link", "category", "media"],
            ["fine", "berlin", "", "", "", ""],
            ["unknown channel", "paris", "", "", "", ""],
            ["two\nlines\nof text", "berlin", "", "", "", ""],  # a record over three lines is fine
            ["bad time", "berlin", "tomorrow", "", "", ""],
            ["bad link", "", "", "example.org", "", ""],
            ["bad category", "", "", "", "gossip", ""],
            ["missing media", "berlin", "", "", "", "nope.png"],
            ["x" * 4097, "tg", "", "", "", ""],
            ["past", "berlin", "2026-11-01T10:00", "", "", ""],
            ["", "", "", "", "", ""],  # an empty row is skipped
            ["too", "many", "", "", "", "", "fields"],
        ],
    )
    assert rejected(env, path) == [
        f"{path}:3: unknown channel 'paris'; configured: berlin, ny, tg",
        f"{path}:7: at 'tomorrow' is not an ISO 8601 date-time such as 2026-12-01T10:00 or 2026-12-01T10:00+03:00",
        f"{path}:8: link 'example.org' is not an http(s) URL",
        f"{path}:9: category 'gossip' is not one of entertaining, educational, commercial, ugc, news",
        f"{path}:10: media {env.tmp}/nope.png: no such file",
        f"{path}:11: channel 'tg': the text is 4097 characters long; telegram allows 4096",
        f"{path}:12: at '2026-11-01T10:00' is in the past (now is 2026-11-23 13:00 CET)",
        f"{path}:14: 7 fields, but the header names 6 columns",
    ]


def test_many_bad_rows_are_capped(env: Env) -> None:
    env.add("existing")
    path = write_csv(env, [["text", "channels"]] + [["x", "nowhere"]] * 60)
    lines = rejected(env, path)
    assert len(lines) == 51
    assert lines[0] == f"{path}:2: unknown channel 'nowhere'; configured: berlin, ny, tg"
    assert lines[-1] == "... and 10 more invalid rows; nothing was imported"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "{path}: the file is empty; the first line names the columns"),
        (
            b"text,colour\nx,red\n",
            "{path}:1: unknown column 'colour'; the columns are text, channels, at, media, link, "
            "category, campaign, utm_content, evergreen, expire_at, text_for_<vk|telegram|facebook|ok|outbox>",
        ),
        (b"text,text\nx,y\n", "{path}:1: the column 'text' is given twice"),
        (b"channels,at\nberlin,\n", "{path}:1: the header names no text, media or link column"),
        (b"text\n", "{path}: no rows to import"),
        (b"text\nok\ncaf\xe9\n", "{path}:3: not UTF-8 text (save the file as UTF-8)"),
    ],
)
def test_bad_files(env: Env, content: bytes, message: str) -> None:
    path = env.tmp / "bad.csv"
    path.write_bytes(content)
    env.add("existing")
    before = env.snapshot()
    assert one_error_line(env("import", str(path))) == message.format(path=path)
    assert env.snapshot() == before


def test_missing_file_and_folder(env: Env) -> None:
    assert one_error_line(env("import", str(env.tmp / "nope.csv"))) == f"{env.tmp}/nope.csv: no such file"
    assert one_error_line(env("import", str(env.tmp))) == f"{env.tmp}: is a directory, not a CSV file"


def test_semicolon_and_tab_delimited_files_and_a_byte_order_mark(env: Env) -> None:
    path = write_csv(env, [["text", "channels"], ["semi", "berlin,ny"]], delimiter=";")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    env.ok("import", str(path))
    tabbed = write_csv(env, [["channels", "text"], ["ny", "tabbed"]], "t.tsv", delimiter="\t")
    env.ok("import", str(tabbed))
    assert {p["text"]: sorted(due(p)) for p in queue(env)} == {"semi": ["berlin", "ny"], "tabbed": ["ny"]}


def test_dry_run_shows_what_would_be_queued_and_writes_nothing(env: Env) -> None:
    path = write_csv(env, [["text", "channels"], ["hello there", "berlin;ny"], ["second", "ny"]])
    # before any database exists
    result = env.ok("import", str(path), "--dry-run")
    assert result.out == (
        "line 2: berlin  Tue 2026-11-24 10:00 CET  hello there\n"
        "line 2: ny  Tue 2026-11-24 10:00 EST  hello there\n"
        "line 3: ny  Fri 2026-11-27 10:00 EST  second\n"
        "would import 2 posts (3 deliveries) from posts.csv\n"
        "  berlin: 1 delivery, Tue 2026-11-24 10:00 CET\n"
        "  ny: 2 deliveries, Tue 2026-11-24 10:00 EST to Fri 2026-11-27 10:00 EST\n"
        "nothing was written (--dry-run)\n"
    )
    assert not (env.tmp / "smm.db").exists() or "sqlite" not in env.db_url
    env.add("existing", "--channel", "ny")
    before = env.snapshot()
    assert "line 3: ny  Tue 2026-12-01 10:00 EST  second\n" in env.ok("import", str(path), "--dry-run").out
    assert env.snapshot() == before


def test_commercial_rows_that_break_the_mix_are_errors_unless_forced(env: Env) -> None:
    rows = [["text", "channels", "category"]] + [[f"offer {i}", "berlin", "commercial"] for i in range(3)]
    rows += [["tip", "berlin", ""], ["offer 3", "berlin", "commercial"], ["offer 4", "berlin", "commercial"]]
    path = write_csv(env, rows)
    env.add("existing", "--channel", "ny")
    assert rejected(env, path) == [
        f"{path}:4: channel 'berlin': a commercial post at Tue 2026-12-01 10:00 CET makes 3 of 4 consecutive "
        "deliveries commercial (rule: at most 50% of any 4); move the row, give it an 'at', or import with --force",
        f"{path}:6: channel 'berlin': a commercial post at Tue 2026-12-08 10:00 CET makes 3 of 4 consecutive "
        "deliveries commercial (rule: at most 50% of any 4); move the row, give it an 'at', or import with --force",
        f"{path}:7: channel 'berlin': a commercial post at Fri 2026-12-11 10:00 CET makes 3 of 4 consecutive "
        "deliveries commercial (rule: at most 50% of any 4); move the row, give it an 'at', or import with --force",
    ]
    env.ok("import", str(path), "--force")
    assert len(queue(env)) == 7


def test_commercial_rows_are_judged_with_the_queue_already_there(env: Env) -> None:
    env.add("offer", "--category", "commercial", "--channel", "berlin")
    env.add("offer", "--category", "commercial", "--channel", "berlin")
    path = write_csv(env, [["text", "channels", "category"], ["tip", "berlin", ""], ["offer", "berlin", "commercial"]])
    assert rejected(env, path)[0].startswith(f"{path}:3: channel 'berlin': a commercial post at Fri 2026-12-04 10:00")


def test_ten_thousand_rows(env: Env) -> None:
    path = write_csv(
        env, [["text", "channels", "link"]] + [[f"post {i}", "ny", f"https://e.org/{i}"] for i in range(10_000)]
    )
    result = env("import", str(path))
    assert result.code == 0, result
    assert result.out.startswith("imported 10,000 posts (10,000 deliveries) from posts.csv\n")
    assert result.err.startswith("importing posts.csv")  # the progress bar, for a large file even off a terminal
    rows = env.sql("SELECT p.text, d.due_at, d.key FROM deliveries d JOIN posts p ON p.id = d.post_id ORDER BY p.id")
    assert len(rows) == 10_000
    assert [r[0] for r in rows[:2]] == ["post 0", "post 1"]
    times = [str(r[1]) for r in rows]
    assert times == sorted(times) and len(set(times)) == 10_000
    assert len({r[2] for r in rows}) == 10_000
    # the daemon's queries see them as any other post
    assert env.json("queue", "--limit", "1")[0]["text"] == "post 0"
    assert env.json("show", "10000")["deliveries"][0]["due_at"] == str(rows[-1][1]).replace(" ", "T")[:19] + "Z"


def test_the_summary_lists_twenty_channels_and_counts_the_rest(tmp_path: Path, db_url: str) -> None:
    # An agency's import across thousands of channels must not print a line per channel.
    names = [f"c{i:02d}" for i in range(23)]
    body = "".join(f'[[channels]]\nname = "{n}"\nnetwork = "outbox"\npath = "out-{n}"\n\n' for n in names)
    env = Env(tmp_path, write_config(tmp_path / "config.toml", db_url, body, outbox=False), db_url, tmp_path)
    path = write_csv(env, [["text", "channels"], ["everywhere", ""], ["twice on c22", "c22"]])
    lines = env.ok("import", str(path)).out.splitlines()
    assert lines[0] == "imported 2 posts (24 deliveries) from posts.csv"
    assert [line.split(":")[0] for line in lines[1:21]] == [f"  {n}" for n in names[:20]]
    assert lines[21:] == ["  ... and 3 more channels (4 deliveries)"]


def test_a_row_and_smm_add_get_the_same_check_with_the_field_named_as_the_user_wrote_it(
    tmp_path: Path, db_url: str
) -> None:
    # One validation for both: an unknown channel lists the same (at most 20) configured names; a field's message
    # names the CSV column where `smm add` names its option.
    names = [f"c{i:02d}" for i in range(23)]
    body = "".join(f'[[channels]]\nname = "{n}"\nnetwork = "outbox"\npath = "out-{n}"\n\n' for n in names)
    env = Env(tmp_path, write_config(tmp_path / "config.toml", db_url, body + TG, outbox=False), db_url, tmp_path)
    env.add("existing", "--channel", "c00")
    added = one_error_line(env("add", "hi", "--channel", "paris"))
    assert added.startswith("unknown channel 'paris'; configured: c00, c01,")
    path = write_csv(
        env,
        [
            ["text", "channels", "link", "campaign", "text_for_telegram"],
            ["x", "paris", "", "", ""],
            ["x", "c00", "ftp://example.org", "", ""],
            ["x", "c00", "", "a\tb", ""],
            ["x", "c00", "", "", "hallo"],
        ],
    )
    assert rejected(env, path) == [
        f"{path}:2: {added}",
        f"{path}:3: link 'ftp://example.org' is not an http(s) URL",
        f"{path}:4: campaign 'a\\tb' must be one line without control characters",
        f"{path}:5: text_for_telegram: the post goes to no telegram channel",
    ]
    for args, message in [
        (["--link", "ftp://example.org"], "--link 'ftp://example.org' is not an http(s) URL"),
        (["--campaign", "a\tb"], "--campaign 'a\\tb' must be one line without control characters"),
        (["--text-for", "telegram=hallo"], "--text-for telegram: the post goes to no telegram channel"),
    ]:
        assert one_error_line(env("add", "x", "--channel", "c00", *args)) == message
