"""Feed import: ``smm import-feed`` from files and over HTTP, bad feeds, and :func:`poll_feeds` for the daemon.

Feeds are served by a small site on :class:`~tests.fakes.base.FakeServer` (with ETag support). The clock is pinned to
Monday 23 November 2026, 12:00 UTC; ``berlin`` is an outbox on Tuesday/Friday 10:00 CET, ``tg`` a Telegram channel.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import load_config
from scheduler.db import Database
from scheduler.feeds import next_poll, poll_feeds
from tests.conftest import write_config
from tests.fakes.base import FakeRequest, FakeResponse, FakeServer, Fault
from tests.integration.test_cli import BERLIN, NOW, Env, due, one_error_line


def rss(*items: tuple[str, str, str, str], title: str = "Acme blog") -> bytes:
    """An RSS 2.0 feed with items ``(guid, title, description HTML, pubDate)``, newest first as feeds list them."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{name}</title><link>https://acme.example/{guid}</link>"
        f"<description>{description}</description><pubDate>{date}</pubDate></item>"
        for guid, name, description, date in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'.encode()


FIRST = (
    "a-1",
    "First &amp; foremost",
    "&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;",
    "Mon, 16 Nov 2026 10:00:00 GMT",
)
SECOND = ("a-2", "Second &lt;tips&gt;", "Two &amp; more", "Thu, 19 Nov 2026 10:00:00 GMT")
THIRD = ("a-3", "Third", "Three", "Sun, 22 Nov 2026 10:00:00 GMT")


class FakeSite(FakeServer):
    """Serves ``pages[path] = (content type, body)``, with ETags and 304 answers."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.route("/", self._page)

    def _page(self, request: FakeRequest) -> FakeResponse:
        if request.path not in self.pages:
            return FakeResponse(404, b"not found", "text/plain")
        kind, body = self.pages[request.path]
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
        if request.headers.get("if-none-match") == etag:
            return FakeResponse(304, b"", kind, {"ETag": etag})
        return FakeResponse(200, body, kind, {"ETag": etag})


@pytest.fixture
def site() -> Iterator[FakeSite]:
    server = FakeSite()
    server.start()
    yield server
    server.stop()


TG = """
[[channels]]
name = "tg"
network = "telegram"
chat_id = "@acme"
token_env = "SMM_TG_TOKEN"
parse_mode = "HTML"
"""


def feeds_table(site: FakeSite, **extra: str) -> str:
    keys = {"name": '"blog"', "url": f'"{site.url}/feed.xml"', "channels": '["berlin"]', "timeout": '"2s"'} | extra
    return "\n[[feeds]]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def make_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, body: str) -> Env:
    monkeypatch.setattr("scheduler.cli.now", lambda: NOW)
    config = write_config(tmp_path / "config.toml", db_url, body, outbox=False)
    return Env(tmp_path, config, db_url, load_config(config, env={}).media_dir)


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite) -> Iterator[Env]:
    body = BERLIN_CHANNEL + TG + feeds_table(site)
    yield make_env(tmp_path, db_url, monkeypatch, body)


BERLIN_CHANNEL = '[[channels]]\nname = "berlin"\nnetwork = "outbox"\ntimezone = "Europe/Berlin"\npath = "out"\n'


def texts(env: Env) -> list[tuple[str, str | None, dict[str, str]]]:
    return [(p["text"], p["link"], due(p)) for p in env.json("queue", "--limit", "0")]


# -- smm import-feed ----------------------------------------------------------------------------------------------


def test_a_file_is_queued_oldest_first_and_each_entry_only_once(env: Env) -> None:
    feed = env.tmp / "feed.xml"
    feed.write_bytes(rss(SECOND, FIRST))
    result = env.ok("import-feed", str(feed))
    assert result.out == f"feed {str(feed)!r}: 2 new entries queued (posts 1, 2) (0 already seen)\n"
    assert texts(env) == [
        (
            "First & foremost\n\nHello world",
            "https://acme.example/a-1",
            {"berlin": BERLIN[0], "tg": "2026-11-24T10:00:00Z"},
        ),
        (
            "Second <tips>\n\nTwo & more",
            "https://acme.example/a-2",
            {"berlin": BERLIN[1], "tg": "2026-11-27T10:00:00Z"},
        ),
    ]
    # the Telegram channel (HTML) gets the same text, escaped for its parse mode
    plan = {(i["post_id"], i["channel"]): i for i in env.json("plan")}
    assert plan[(2, "tg")]["text"] == "Second &lt;tips&gt;\n\nTwo &amp; more"
    assert plan[(2, "tg")]["problems"] == []
    assert env.ok("import-feed", str(feed)).out == f"feed {str(feed)!r}: nothing new (2 already seen)\n"
    feed.write_bytes(rss(THIRD, SECOND, FIRST))
    assert env.ok("import-feed", str(feed)).out == f"feed {str(feed)!r}: 1 new entry queued (post 3) (2 already seen)\n"
    assert texts(env)[-1][0] == "Third\n\nThree"


def test_a_configured_feed_over_http_with_its_template(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    template = '"{title} ({published}, {feed})\\n{link}"'
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL + feeds_table(site, template=template))
    site.pages["/feed.xml"] = ("application/rss+xml", rss(FIRST))
    assert env.ok("import-feed", "--feed", "blog").out == "feed 'blog': 1 new entry queued (post 1) (0 already seen)\n"
    assert texts(env) == [
        (
            "First & foremost (2026-11-16, Acme blog)\nhttps://acme.example/a-1",
            "https://acme.example/a-1",
            {"berlin": BERLIN[0]},
        )
    ]
    assert site.requests[-1].headers["user-agent"].startswith("smm-scheduler/")
    # the same URL given by hand is the same feed: nothing new
    assert env.ok("import-feed", f"{site.url}/feed.xml").out == "feed 'blog': nothing new (1 already seen)\n"


def test_mark_seen_remembers_without_queueing(env: Env, site: FakeSite) -> None:
    site.pages["/feed.xml"] = ("application/rss+xml", rss(SECOND, FIRST))
    out = env.ok("import-feed", "--feed", "blog", "--mark-seen").out
    assert out == "feed 'blog': 2 entries marked as seen without queueing them (0 already seen)\n"
    site.pages["/feed.xml"] = ("application/rss+xml", rss(THIRD, SECOND, FIRST))
    env.ok("import-feed", "--feed", "blog")
    assert [t for t, _, _ in texts(env)] == ["Third\n\nThree"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "page", "message"),
    [
        ("/missing.xml", None, "{url}: the server answered HTTP 404 Not Found"),
        (
            "/index.html",
            ("text/html", b'<!DOCTYPE html><html><head><link rel="alternate" type="application/rss+xml" href="/rss">'),
            "{url}: an HTML page, not a feed; it names its feed: smm import-feed {site}/rss",
        ),
        (
            "/page",
            ("text/html", b"<html><body>hi</body></html>"),
            "{url}: an HTML page, not a feed; give the address of its RSS or Atom feed",
        ),
        ("/junk", ("text/plain", b"just words"), "{url}: not an RSS or Atom feed (<unknown>:2:0: syntax error)"),
        ("/empty", ("application/rss+xml", b""), "{url}: empty, not a feed"),
        ("/none.xml", ("application/rss+xml", rss()), "{url}: the feed has no entries"),
    ],
)
def test_bad_feeds_are_one_clear_line(
    env: Env, site: FakeSite, path: str, page: tuple[str, bytes] | None, message: str
) -> None:
    env.add("existing")
    if page is not None:
        site.pages[path] = page
    before = env.snapshot()
    url = f"{site.url}{path}"
    assert one_error_line(env("import-feed", url)) == message.format(url=url, site=site.url)
    assert env.snapshot() == before


def test_unreachable_slow_and_missing_feeds(env: Env, site: FakeSite) -> None:
    env.add("existing")
    before = env.snapshot()
    url = f"http://127.0.0.1:{_closed_port()}/feed.xml"
    assert one_error_line(env("import-feed", url)).startswith(f"{url}: cannot fetch: ")
    site.pages["/feed.xml"] = ("application/rss+xml", rss(FIRST))
    site.inject("/feed.xml", Fault.delay(3))
    assert (
        one_error_line(env("import-feed", "--feed", "blog"))
        == f"{site.url}/feed.xml: no answer within 2 s; try again later"
    )
    assert one_error_line(env("import-feed", str(env.tmp / "nope.xml"))) == f"{env.tmp}/nope.xml: no such file"
    assert one_error_line(env("import-feed", "--feed", "nope")) == "unknown feed 'nope'; configured: blog"
    assert one_error_line(env("import-feed")) == "give the feed's URL or file, or --feed NAME"
    assert env.snapshot() == before


def test_telegram_channels_of_two_parse_modes_cannot_share_one_feed_text(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    plain = TG.replace('name = "tg"', 'name = "tg-plain"').replace('parse_mode = "HTML"', 'parse_mode = "none"')
    markdown = TG.replace('name = "tg"', 'name = "tg-md"').replace('"HTML"', '"MarkdownV2"')
    table = feeds_table(site, channels='["tg", "tg-plain", "tg-md"]')
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL + TG + plain + markdown + table)
    env.add("existing")
    site.pages["/feed.xml"] = ("application/rss+xml", rss(FIRST))
    before = env.snapshot()
    assert one_error_line(env("import-feed", "--feed", "blog")) == (
        "feed 'blog': entry 'First & foremost': its Telegram channels use different parse modes, so one Telegram "
        "text cannot suit them all: list the channels of one parse mode in the feed's channels (nothing was queued)"
    )
    assert env.snapshot() == before


def test_an_entry_that_cannot_be_published_stops_the_import(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    table = feeds_table(site, channels='["tg"]', max_summary="5000")
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL + TG + table)
    env.add("existing")
    long = ("a-9", "Long", "word " * 1000, "Mon, 16 Nov 2026 10:00:00 GMT")
    site.pages["/feed.xml"] = ("application/rss+xml", rss(long, FIRST))
    before = env.snapshot()
    assert one_error_line(env("import-feed", "--feed", "blog")) == (
        "feed 'blog': entry 'Long': channel 'tg' (--text-for telegram): the text is 5005 characters long; telegram "
        "allows 4096; channel 'tg' (--text-for telegram): with the link appended the text is 5030 characters long; "
        "telegram allows 4096 (nothing was queued)"
    )
    assert env.snapshot() == before


def test_commercial_entries_wait_for_the_mix(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL + feeds_table(site, category='"commercial"'))
    site.pages["/feed.xml"] = ("application/rss+xml", rss(THIRD, SECOND, FIRST))
    lines = env.ok("import-feed", "--feed", "blog").out.splitlines()
    assert lines[0] == "feed 'blog': 2 new entries queued (posts 1, 2), 1 waiting for the content mix (0 already seen)"
    assert lines[1].startswith("feed 'blog': entry 'Third' waits: channel 'berlin': a commercial post in its next slot")
    env.add("tip")
    env.add("tip")
    assert env.ok("import-feed", "--feed", "blog").out.startswith("feed 'blog': 1 new entry queued (post 5)")


def test_entries_with_one_id_the_first_of_the_feed_wins(env: Env) -> None:
    feed = env.tmp / "feed.xml"
    no_guid = "<item><title>{}</title><link>https://acme.example/same</link></item>"
    feed.write_bytes(
        rss(SECOND, ("a-2", "Second again", "copy", "Wed, 18 Nov 2026 10:00:00 GMT"), FIRST).replace(
            b"</channel>", (no_guid.format("Linked") + no_guid.format("Linked again")).encode() + b"</channel>"
        )
    )
    result = env("import-feed", str(feed), "-v")
    assert result.code == 0, result
    assert result.out.startswith(f"feed {str(feed)!r}: 3 new entries queued (posts 1, 2, 3)")
    assert "entry 'Second again' has the id 'a-2' of an earlier entry; the first one is kept" in result.err
    assert "entry 'Linked again' has the id 'https://acme.example/same' of an earlier entry" in result.err
    assert sorted(t.split("\n")[0] for t, _, _ in texts(env)) == ["First & foremost", "Linked", "Second <tips>"]
    assert env.ok("import-feed", str(feed)).out == f"feed {str(feed)!r}: nothing new (3 already seen)\n"


def test_relative_links_are_resolved_against_the_feeds_url_after_redirects(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL + feeds_table(site, url=f'"{site.url}/old"'))
    site.route("/old", lambda request: FakeResponse(301, b"", "text/plain", {"Location": "/blog/feed.xml"}))
    items = (
        "<item><guid>a-1</guid><title>Root</title><link>/posts/1</link></item>"
        "<item><guid>a-2</guid><title>Near</title><link>posts/2?x=1</link></item>"
        "<item><title>Guid only</title><guid>g/4</guid></item>"
        '<item xml:base="/other/"><guid>a-3</guid><title>Based</title><link>p/3</link></item>'
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    site.pages["/blog/feed.xml"] = ("application/rss+xml", body.encode())
    env.ok("import-feed", "--feed", "blog")
    assert sorted(link or "" for _, link, _ in texts(env)) == [
        f"{site.url}/blog/g/4",
        f"{site.url}/blog/posts/2?x=1",
        f"{site.url}/other/p/3",
        f"{site.url}/posts/1",
    ]
    # entries keep the ids they were remembered by before links were resolved (xml:base alone applies to them)
    ids = sorted(row[0] for row in env.sql("SELECT entry_id FROM feed_entries"))
    assert ids == ["/other/a-3", "a-1", "a-2", "g/4"]


def test_tags_leave_a_space_only_where_they_break_the_line(env: Env) -> None:
    feed = env.tmp / "feed.xml"
    html = "see &lt;a href='x'&gt;bench&lt;/a&gt;). &lt;p&gt;One&lt;/p&gt;&lt;p&gt;two&lt;br/&gt;three&lt;/p&gt;"
    feed.write_bytes(rss(("a-1", "A &lt;b&gt;bold&lt;/b&gt;, title", html, "Mon, 16 Nov 2026 10:00:00 GMT")))
    env.ok("import-feed", str(feed))
    assert texts(env)[0][0] == "A bold, title\n\nsee bench). One two three"


@pytest.mark.parametrize(
    ("head", "hint"),
    [
        (
            '<base href="/other/"><link type="application/atom+xml" data-href="x" href="f.xml?a=1&amp;b=2">',
            "{site}/other/f.xml?a=1&b=2",
        ),
        ("<link rel=alternate type='application/rss+xml; charset=utf-8' href=feed.xml>", "{site}/blog/feed.xml"),
    ],
)
def test_an_html_page_names_its_feed_by_an_absolute_url(env: Env, site: FakeSite, head: str, hint: str) -> None:
    site.route("/moved", lambda request: FakeResponse(302, b"", "text/plain", {"Location": "/blog/index.html"}))
    site.pages["/blog/index.html"] = ("text/html", f"<!DOCTYPE html><html><head>{head}</head></html>".encode())
    url = f"{site.url}/moved"
    expected = f"{url}: an HTML page, not a feed; it names its feed: smm import-feed {hint.format(site=site.url)}"
    assert one_error_line(env("import-feed", url)) == expected
    page = env.tmp / "page.html"
    page.write_bytes(site.pages["/blog/index.html"][1])
    assert one_error_line(env("import-feed", str(page))).endswith(
        "an HTML page, not a feed; it names its feed by an address relative to the page's own, "
        f"{hint.format(site='').removeprefix('/blog/')!r}: give the feed's full URL"
    )


# -- poll_feeds, for the daemon -----------------------------------------------------------------------------------


def daemon_view(env: Env) -> tuple[Any, Database]:
    config = load_config(env.config, env={})
    db = Database(config.database_url)
    db.check_schema(create=True)
    return config, db


def test_poll_feeds_reads_each_feed_once_per_interval_with_conditional_requests(env: Env, site: FakeSite) -> None:
    config, db = daemon_view(env)
    try:
        assert next_poll(config, db, NOW) == NOW
        site.pages["/feed.xml"] = ("application/rss+xml", rss(SECOND, FIRST))
        assert poll_feeds(config, db, NOW) == ["feed 'blog': 2 new entries queued (posts 1, 2) (0 already seen)"]
        assert poll_feeds(config, db, NOW + timedelta(minutes=59)) == []  # its interval (1h) has not passed
        assert next_poll(config, db, NOW) == NOW + timedelta(hours=1)
        assert poll_feeds(config, db, NOW + timedelta(hours=1)) == ["feed 'blog': not modified since the last poll"]
        assert site.requests[-1].headers.get("if-none-match")
        site.pages["/feed.xml"] = ("application/rss+xml", rss(THIRD, SECOND, FIRST))
        assert poll_feeds(config, db, NOW + timedelta(hours=2)) == [
            "feed 'blog': 1 new entry queued (post 3) (2 already seen)"
        ]
        assert len(env.json("queue")) == 3
    finally:
        db.dispose()


def test_poll_feeds_turns_errors_into_lines_and_remembers_rejected_entries(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    body = BERLIN_CHANNEL + TG + feeds_table(site, channels='["tg"]', max_summary="5000")
    env = make_env(tmp_path, db_url, monkeypatch, body)
    config, db = daemon_view(env)
    try:
        assert poll_feeds(config, db, NOW) == [
            f"feed 'blog': {site.url}/feed.xml: the server answered HTTP 404 Not Found"
        ]
        assert env.sql("SELECT last_error FROM feed_states")[0][0].endswith("HTTP 404 Not Found")
        long = ("a-9", "Long", "word " * 1000, "Mon, 16 Nov 2026 10:00:00 GMT")
        site.pages["/feed.xml"] = ("application/rss+xml", rss(long, FIRST))
        lines = poll_feeds(config, db, NOW + timedelta(hours=1))
        assert lines[0] == "feed 'blog': 1 new entry queued (post 1), 1 rejected (0 already seen)"
        assert lines[1].startswith(
            "feed 'blog': entry 'Long' rejected: channel 'tg' (--text-for telegram): the text is"
        )
        assert env.sql("SELECT last_error FROM feed_states")[0][0] is None
        # the rejected entry is remembered (with why) and not tried again
        notes = env.sql("SELECT title, post_id, note FROM feed_entries ORDER BY title")
        assert [(n[0], n[1]) for n in notes] == [("First & foremost", 1), ("Long", None)]
        assert "5005 characters" in notes[1][2]
        assert poll_feeds(config, db, NOW + timedelta(hours=2))[0] == "feed 'blog': not modified since the last poll"
    finally:
        db.dispose()


def test_one_feeds_failure_of_any_kind_never_stops_the_polling_of_the_others(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, site: FakeSite
) -> None:
    dups = tmp_path / "dups.xml"
    dups.write_bytes(rss(SECOND, ("a-2", "Second again", "copy", "Wed, 18 Nov 2026 10:00:00 GMT"), FIRST))
    far = tmp_path / "far.xml"  # feedparser reads this date as the year 10000
    far.write_bytes(rss(("f-1", "Far", "Future", "9999-12-31T23:59:59-10:00")))
    tables = (
        f'\n[[feeds]]\nname = "dups"\nurl = "{dups}"\n'
        f'\n[[feeds]]\nname = "far"\nurl = "{far}"\n'
        '\n[[feeds]]\nname = "bad"\nurl = "http://[::1/feed.xml"\n' + feeds_table(site)
    )
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL + tables)
    site.pages["/feed.xml"] = ("application/rss+xml", rss(THIRD))
    config, db = daemon_view(env)
    try:
        lines = poll_feeds(config, db, NOW)
        assert lines[:2] == [
            "feed 'dups': 2 new entries queued (posts 1, 2) (0 already seen)",
            "feed 'far': 1 new entry queued (post 3) (0 already seen)",
        ]
        assert lines[2].startswith("feed 'bad': http://[::1/feed.xml: not a valid URL")
        assert lines[3] == "feed 'blog': 1 new entry queued (post 4) (0 already seen)"
        errors = dict(env.sql("SELECT feed, last_error FROM feed_states"))
        assert errors["bad"].startswith("http://[::1/feed.xml: not a valid URL")
        assert [errors[name] for name in ("dups", "far", "blog")] == [None, None, None]
        # each is read again at its next interval, the failed one too
        again = poll_feeds(config, db, NOW + timedelta(hours=1))
        assert [line.split(":")[0] for line in again] == ["feed 'dups'", "feed 'far'", "feed 'bad'", "feed 'blog'"]
    finally:
        db.dispose()


def test_poll_feeds_without_feeds(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, db_url, monkeypatch, BERLIN_CHANNEL)
    config, db = daemon_view(env)
    try:
        assert poll_feeds(config, db, NOW) == []
        assert next_poll(config, db, NOW) is None
    finally:
        db.dispose()


def test_the_marketing_modules_load_no_network_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import scheduler.cli, scheduler.service, scheduler.importer, scheduler.plan, scheduler.feeds\n"
        "heavy = ('feedparser', 'httpx', 'telegram', 'vk_api', 'requests', 'apscheduler', 'alembic')\n"
        "print([m for m in sys.modules if m.split('.')[0] in heavy])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_the_daemon_polls_its_feeds_and_logs_what_it_queued(tmp_path: Path, sqlite_url: str) -> None:
    from tests.support import smm

    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss(SECOND, FIRST))
    body = BERLIN_CHANNEL + f'\n[[feeds]]\nname = "blog"\nurl = "{feed}"\nchannels = ["berlin"]\n'
    config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False)
    first = smm("run", "--once", config=config)
    assert first.returncode == 0, first.stderr
    assert "feed 'blog': 2 new entries queued (posts 1, 2)" in first.stderr
    queued = smm("queue", "--json", config=config)
    assert [post["link"] for post in json.loads(queued.stdout)] == [
        "https://acme.example/a-1",
        "https://acme.example/a-2",
    ]
    again = smm("run", "--once", config=config)
    assert "feed 'blog'" not in again.stderr  # read at most once per interval
