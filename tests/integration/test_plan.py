"""``smm plan`` and what it shows: text variants, UTM-tagged links, hashtags, escaping, the Telegram split.

The clock is pinned to Monday 23 November 2026, 12:00 UTC; channels are on the default UTC slots.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import MediaFile, OutgoingPost
from adapters.telegram import TelegramAdapter
from scheduler.config import load_config
from scheduler.render import PostContent, render
from tests.conftest import make_png, write_config
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.fakes.telegram import make_png as png_bytes
from tests.integration.test_cli import NOW, Env, one_error_line

CHANNELS = """
[utm]
enabled = true
campaign = "always-on"

[[channels]]
name = "site"
network = "outbox"
path = "outbox"
hashtags = ["#acme", "smm"]

[[channels]]
name = "tg"
network = "telegram"
chat_id = "@acme"
token_env = "SMM_TG_TOKEN"
parse_mode = "HTML"
hashtags = ["#acme", "#acme_news"]

[[channels]]
name = "tgmd"
network = "telegram"
chat_id = "@acme_md"
token_env = "SMM_TG_TOKEN"
parse_mode = "MarkdownV2"
utm_source = "tg"
utm_campaign = "md-default"

[[channels]]
name = "vk"
network = "vk"
group_id = 1
token_env = "SMM_VK_TOKEN"
utm = false
hashtags = ["#acme"]
"""


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    monkeypatch.delenv("SMM_TG_TOKEN", raising=False)  # adding and planning never read a token
    config = write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False)
    yield Env(tmp_path, config, db_url, load_config(config, env={}).media_dir)


def plan(env: Env, *args: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(env.ok("plan", "--json", *args).out)
    return items


def by_channel(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["channel"]: item for item in items}


def test_plan_renders_each_channel_exactly(env: Env) -> None:
    env.ok(
        "add",
        "Tom & Jerry: https://example.org/a?b=1&c=2",
        "--link",
        "https://example.org/a?b=1&c=2#top",
        "--text-for",
        "telegram=<b>Tom &amp; Jerry</b>: https://example.org/a?b=1&amp;c=2",
        "--campaign",
        "spring sale",
        "--utm-content",
        "hero",
        "--channel",
        "site",
        "--channel",
        "tg",
        "--channel",
        "vk",
    )
    items = by_channel(plan(env))
    tags = "utm_source={}&utm_medium=social&utm_campaign=spring%20sale&utm_content=hero"
    site = tags.format("outbox")
    assert items["site"]["text"] == f"Tom & Jerry: https://example.org/a?b=1&c=2&{site}\n\n#acme #smm"
    assert items["site"]["link"] == f"https://example.org/a?b=1&c=2&{site}#top"
    html = tags.format("telegram").replace("&", "&amp;")
    assert items["tg"]["text"] == (
        f"<b>Tom &amp; Jerry</b>: https://example.org/a?b=1&amp;c=2&amp;{html}\n\n#acme #acme_news"
    )
    assert items["tg"]["link"] == f"https://example.org/a?b=1&c=2&{tags.format('telegram')}#top"
    assert items["tg"]["requests"] == [
        "sendMessage to @acme: text of 258 characters, with the link on its own line at the end, parse_mode HTML, "
        f"link preview of {items['tg']['link']}"
    ]
    assert items["tg"]["problems"] == []
    # utm = false: untouched; hashtags still apply
    assert items["vk"]["text"] == "Tom & Jerry: https://example.org/a?b=1&c=2\n\n#acme"
    assert items["vk"]["link"] == "https://example.org/a?b=1&c=2#top"
    assert items["vk"]["requests"] == ["one vk post: text of 49 characters, link https://example.org/a?b=1&c=2#top"]


def test_channel_defaults_and_markdown_v2(env: Env) -> None:
    env.ok("add", r"Read https://example\.org/a\_b now\!", "--channel", "tgmd")
    item = plan(env)[0]
    assert (
        item["text"]
        == r"Read https://example\.org/a\_b?utm\_source\=tg&utm\_medium\=social&utm\_campaign\=md\-default now\!"
    )
    assert item["problems"] == []


def test_plan_text_output(env: Env) -> None:
    picture = make_png(env.tmp / "photo.png", 4, 3)
    env.ok("add", "Hello <i>world</i>", "--media", str(picture), "--channel", "tg")
    assert env.ok("plan").out == (
        "post 1 -> tg (telegram, educational) at Tue 2026-11-24 10:00 UTC\n"
        "  | Hello <i>world</i>\n"
        "  | \n"
        "  | #acme #acme_news\n"
        "  1. sendPhoto to @acme: photo.png, caption of 29 characters, parse_mode HTML\n"
    )


def test_plan_shows_the_album_then_the_text_when_the_text_is_too_long_for_a_caption(env: Env) -> None:
    pictures = [str(make_png(env.tmp / f"p{i}.png", 4 + i, 3)) for i in range(3)]
    text = "word " * 300
    env.ok("add", text, *[a for p in pictures for a in ("--media", p)], "--channel", "tg", "--link", "https://x.org")
    item = plan(env)[0]
    assert item["requests"][0] == "sendMediaGroup to @acme: album of 3 photos (p0.png, p1.png, p2.png), no caption"
    assert item["requests"][1].startswith("sendMessage to @acme: text of ")
    assert item["requests"][1].endswith(
        "characters, with the link on its own line at the end, parse_mode HTML, link preview of "
        "https://x.org?utm_source=telegram&utm_medium=social&utm_campaign=always-on"
    )
    assert len(item["requests"]) == 2


def test_plan_channel_limit_and_empty(env: Env) -> None:
    assert env.ok("plan").out.startswith("nothing is queued (")
    env.ok("add", "one")
    env.ok("add", "two")
    assert [(i["post_id"], i["channel"]) for i in plan(env, "--channel", "vk")] == [(1, "vk"), (2, "vk")]
    assert len(plan(env, "--limit", "3")) == 3
    assert len(plan(env, "--limit", "0")) == 8
    assert one_error_line(env("plan", "--channel", "nope")) == "unknown channel 'nope'; configured: site, tg, tgmd, vk"


def test_hashtags_never_overflow_and_a_caption_stays_a_caption(env: Env) -> None:
    # 4096 - len("\n\n#acme") = 4089: the first hashtag fits exactly, the second does not.
    env.ok("add", "x" * 4089, "--channel", "tg")
    assert plan(env)[0]["text"] == "x" * 4089 + "\n\n#acme"
    env.ok("cancel", "1")
    env.ok("add", "x" * 4090, "--channel", "tg")
    assert plan(env)[0]["text"] == "x" * 4090
    env.ok("cancel", "2")
    # with a photo, a 1000-character caption stays a caption: "#acme_news" (+ "\n\n#acme ") does not fit in 1024
    picture = str(make_png(env.tmp / "p.png"))
    env.ok("add", "y" * 1010, "--media", picture, "--channel", "tg")
    item = plan(env)[0]
    assert item["text"] == "y" * 1010 + "\n\n#acme"
    assert item["requests"] == ["sendPhoto to @acme: p.png, caption of 1017 characters, parse_mode HTML"]


def test_a_hashtag_the_text_has_is_not_repeated(env: Env) -> None:
    env.ok("add", "News from #ACME.", "--channel", "tg")
    assert plan(env)[0]["text"] == "News from #ACME.\n\n#acme_news"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["x", "--text-for", "twitter=hi"],
            "--text-for 'twitter': not a network; use one of vk, telegram, facebook, ok, outbox",
        ),
        (
            ["x", "--channel", "vk", "--text-for", "telegram=hi"],
            "--text-for telegram: the post goes to no telegram channel",
        ),
        (["x", "--text-for", "telegram= "], "--text-for telegram: the text is empty"),
        (
            ["x", "--text-for", "telegram"],
            "--text-for 'telegram': write NETWORK=TEXT, e.g. --text-for telegram='Hello'",
        ),
        (["x", "--text-for", "vk=a", "--text-for", "VK=b"], "--text-for vk is given twice"),
        (["x", "--text-for", "vk=a\x00b"], "--text-for vk: the text contains a NUL byte"),
        (
            ["x", "--channel", "tg", "--text-for", "telegram=" + "z" * 4097],
            "channel 'tg' (--text-for telegram): the text is 4097 characters long; telegram allows 4096",
        ),
        (
            ["x", "--channel", "tg", "--text-for", "telegram=<b>bold"],
            "channel 'tg' (--text-for telegram): HTML: <b> opened at line 1, column 1 is never closed",
        ),
        (["x", "--campaign", " "], "--campaign is empty"),
        (["x", "--campaign", "a\nb"], "--campaign 'a\\nb' must be one line without control characters"),
        (["x", "--utm-content", "c" * 129], "--utm-content is 129 characters long; at most 128"),
    ],
)
def test_bad_variants_and_tags_write_nothing(env: Env, args: list[str], message: str) -> None:
    env.ok("add", "existing")
    before = env.snapshot()
    assert one_error_line(env("add", *args)) == message
    assert env.snapshot() == before


def test_the_main_text_is_checked_only_where_no_variant_replaces_it(env: Env) -> None:
    # Too long for Telegram, fine for the outbox: a Telegram variant makes the post valid.
    long = "x" * 5000
    assert "channel 'tg': the text is 5000" in one_error_line(env("add", long, "--channel", "site", "--channel", "tg"))
    env.ok("add", long, "--channel", "site", "--channel", "tg", "--text-for", "telegram=short")
    items = by_channel(plan(env))
    assert items["tg"]["text"].startswith("short\n\n")
    assert items["site"]["text"].startswith("x" * 5000)


def test_show_prints_the_marketing_fields(env: Env) -> None:
    env.ok(
        "add", "hi", "--channel", "tg", "--text-for", "telegram=<b>hi</b>", "--campaign", "c1", "--utm-content", "u1"
    )
    out = env.ok("show", "1").out
    assert "  text: hi\n  text for telegram: <b>hi</b>\n" in out
    assert "  campaign: c1\n  utm_content: u1\n" in out
    assert set(env.json("show", "1")) == {"id", "text", "link", "category", "media", "created_at", "deliveries"}


def test_render_from_a_stored_post_uses_every_field(env: Env) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from scheduler.models import Post

    env.ok("add", "https://x.org", "--channel", "tg", "--text-for", "telegram=https://y.org", "--campaign", "c")
    config = load_config(env.config, env={})
    engine = create_engine(env.db_url)
    with Session(engine) as session:
        post = session.get(Post, 1)
        assert post is not None
        content = PostContent.from_post(post)
    engine.dispose()
    out = render(content, config.channel("tg"), config.media_dir)
    assert out.text == "https://y.org?utm_source=telegram&amp;utm_medium=social&amp;utm_campaign=c\n\n#acme #acme_news"


# -- the Telegram preview says what the adapter really sends ------------------------------------------------------


def _publish(fake: FakeTelegram, post: OutgoingPost, mode: str) -> list[str]:
    adapter = TelegramAdapter(DEFAULT_TOKEN, "@testchannel", api_url=fake.url, parse_mode=mode)

    async def main() -> None:
        try:
            await adapter.publish(post)
        finally:
            await adapter.aclose()

    asyncio.run(main())
    methods = [record["method"] for record in fake.published]
    return [m for i, m in enumerate(methods) if m != "sendMediaGroup" or i == 0 or methods[i - 1] != m]


@pytest.mark.parametrize(
    ("text", "photos", "link"),
    [
        ("hello", 0, None),
        ("hello", 0, "https://x.org"),
        ("caption", 1, None),
        ("caption", 3, "https://x.org"),
        ("long " * 250, 1, None),
        ("long " * 250, 2, "https://x.org"),
        ("", 2, None),
    ],
)
def test_telegram_preview_matches_what_publish_sends(tmp_path: Path, text: str, photos: int, link: str | None) -> None:
    media = []
    for i in range(photos):
        path = tmp_path / f"p{i}.png"
        path.write_bytes(png_bytes(4 + i, 3))
        media.append(MediaFile(path, "image/png", path.stat().st_size, 4 + i, 3))
    post = OutgoingPost(text=text, link=link, media=tuple(media))
    preview = TelegramAdapter.preview(post, {"chat_id": "@testchannel", "parse_mode": "HTML"})
    fake = FakeTelegram()
    fake.start()
    try:
        sent = _publish(fake, post, "HTML")
    finally:
        fake.stop()
    assert [line.split(" ", 1)[0] for line in preview] == sent


def test_preview_loads_no_client_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from adapters import adapter_class\n"
        "from adapters.base import OutgoingPost\n"
        "for network in ('telegram', 'vk', 'facebook', 'ok', 'outbox'):\n"
        "    assert adapter_class(network).preview(OutgoingPost('hi', 'https://x.org'), {})\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('telegram', 'vk_api', 'httpx', 'requests')])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


# -- what the daemon sends ----------------------------------------------------------------------------------------

DAEMON_CONFIG = """
[utm]
enabled = true

[[channels]]
name = "site"
network = "outbox"
path = "outbox"
hashtags = ["#acme"]
"""


def _published(tmp_path: Path, sqlite_url: str, *args: str) -> str:
    from tests.support import outbox_folders, smm

    config = write_config(tmp_path / "config.toml", sqlite_url, DAEMON_CONFIG, outbox=False)
    assert smm("add", *args, "--now", config=config).returncode == 0
    result = smm("run", "--once", config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = outbox_folders(tmp_path / "outbox")
    return (folder / "post.txt").read_text(encoding="utf-8")


def test_the_daemon_sends_channel_tagging_and_hashtags(tmp_path: Path, sqlite_url: str) -> None:
    text = _published(tmp_path, sqlite_url, "Read https://acme.example/a")
    assert text == "Read https://acme.example/a?utm_source=outbox&utm_medium=social\n\n#acme\n"


def test_the_daemon_sends_the_variant_and_the_posts_campaign(tmp_path: Path, sqlite_url: str) -> None:
    text = _published(
        tmp_path, sqlite_url, "main text", "--text-for", "outbox=Read https://acme.example/a", "--campaign", "spring"
    )
    assert text == "Read https://acme.example/a?utm_source=outbox&utm_medium=social&utm_campaign=spring\n\n#acme\n"
