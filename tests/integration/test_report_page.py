"""``smm report --html FILE``: the page as a marketer sees it, read back as HTML (test_report_browser.py opens it in
Chromium): its sections and figures, text alternatives for its charts, hostile texts and links kept inert, an empty
database, the calendar, and the command's errors.

The dataset (``seed``), as the daemon would have written it, over the 30 days before ``NOW`` (Sunday 6 December
2026, 09:00 UTC): ``vk-main`` (VK) and ``fb-page`` (Facebook) publish a post every second and third day with results
read back, ``tg-news`` (Telegram) every fourth day without results (the Bot API gives none); each channel's audience
is read daily. Queued posts fill the next weeks, two commercial ones side by side on ``vk-main``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import html5lib
import pytest
import time_machine
from sqlalchemy import insert, update

from scheduler.config import load_config
from scheduler.db import Database
from scheduler.report import Period, open_report
from scheduler.store.report import ENGAGEMENT
from scheduler.store.report_page import sample
from scheduler.tables import Status, audience_readings, deliveries, result_readings
from scheduler.timeline import insert_post
from tests.conftest import run_cli, utc, write_config

NOW = utc(2026, 12, 6, 9)
HOSTILE = '</script><img src=x onerror="document.title=\'pwned\'"><b>bold</b> & "quotes"'
CATEGORIES = ("educational", "entertaining", "commercial", "educational", "news", "ugc", "entertaining")

CHANNELS = """
[[channels]]
name = "vk-main"
network = "vk"
group_id = 1
token_env = "SMM_TEST_NO_SUCH_TOKEN"
timezone = "Europe/Moscow"

[[channels]]
name = "fb-page"
network = "facebook"
page_id = 1
token_env = "SMM_TEST_NO_SUCH_TOKEN"

[[channels]]
name = "tg-news"
network = "telegram"
chat_id = "@tgnews"
token_env = "SMM_TEST_NO_SUCH_TOKEN"
"""
NETWORKS = {"vk-main": "vk", "fb-page": "facebook", "tg-news": "telegram"}


def _publish(conn: object, channel: str, category: str, text: str, at: datetime, url: str | None) -> int:
    post_id = insert_post(
        conn,  # type: ignore[arg-type]
        text=text,
        link=None,
        category=category,
        media=[],
        now=at - timedelta(days=3),
        plan=[(channel, NETWORKS[channel], at, True)],
    )
    return int(
        conn.execute(  # type: ignore[attr-defined]
            update(deliveries)
            .where(deliveries.c.post_id == post_id)
            .values(status=Status.PUBLISHED.value, published_at=at, remote_url=url)
            .returning(deliveries.c.id)
        ).scalar_one()
    )


def seed(db: Database) -> None:
    """The dataset of the module's docstring."""
    with db.write_core() as conn:
        for day in range(1, 30):
            at = NOW - timedelta(days=day, hours=1)
            for channel, every, base in (("vk-main", 2, 20), ("fb-page", 3, 8), ("tg-news", 4, 0)):
                if day % every:
                    continue
                category = CATEGORIES[(day // every) % len(CATEGORIES)]
                text = HOSTILE if (channel, day) == ("vk-main", 4) else f"{category} post of day {day} on {channel}"
                url = (
                    "javascript:alert(1)"
                    if (channel, day) == ("vk-main", 4)
                    else f"https://example.com/{channel}/{day}"
                )
                delivery = _publish(conn, channel, category, text, at, url)
                if channel == "tg-news":
                    continue
                boost = {"entertaining": 3, "educational": 2, "commercial": 0.5}.get(category, 1)
                likes = int(base * boost + day % 5 * 3)
                conn.execute(
                    insert(result_readings).values(
                        delivery_id=delivery,
                        age=86400,
                        read_at=at + timedelta(days=1),
                        views=None if channel == "fb-page" else likes * 40 + day * 7,
                        likes=likes,
                        reposts=likes // 4,
                        comments=day % 3,
                        gone=False,
                        latest=True,
                    )
                )
        for day in range(31):
            when = NOW - timedelta(days=day, hours=3)
            for channel, members in (("vk-main", 12_000 + 30 * (30 - day)), ("fb-page", 4_000 + (day % 4) * 5 - day),
                                     ("tg-news", 2_100 - 2 * (30 - day) + day % 3)):  # fmt: skip
                conn.execute(
                    insert(audience_readings).values(channel=channel, day=when.date(), members=members, read_at=when)
                )
        for i, category in enumerate(("commercial", "commercial", "educational", "news")):
            insert_post(
                conn,
                text=f"upcoming {category} post",
                link=None,
                category=category,
                media=[],
                now=NOW,
                plan=[
                    ("vk-main", "vk", utc(2026, 12, 8 + 3 * i, 7), True),
                    ("fb-page", "facebook", utc(2026, 12, 8 + 7 * i, 10), True),
                ],
            )


def make_config(folder: Path, db_url: str, *, seeded: bool) -> Path:
    """A config of the three channels on a new database, with the dataset written (``seeded``) or empty."""
    config = write_config(folder / "config.toml", db_url, CHANNELS, outbox=False)
    db = Database(db_url)
    db.check_schema(create=True)
    if seeded:
        seed(db)
    db.dispose()
    return config


@pytest.fixture
def seeded(tmp_path: Path, db_url: str) -> Path:
    return make_config(tmp_path, db_url, seeded=True)


@pytest.fixture
def empty(tmp_path: Path, db_url: str) -> Path:
    return make_config(tmp_path, db_url, seeded=False)


def make_page(config: Path, out: Path, *args: str) -> str:
    """Run ``smm report --html out`` at ``NOW``; returns the page."""
    with time_machine.travel(NOW, tick=False):
        result = run_cli("report", "--html", str(out), *args, config=config)
    assert result.code == 0, result.err
    assert result.err == ""
    return out.read_text(encoding="utf-8")


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and its text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.lasttag not in ("style", "title"):
            self.text.append(data)

    def words(self) -> str:
        """The page's text, each run of white space as one space."""
        return " ".join(" ".join(self.text).split())

    def all(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def assert_self_contained(page: str) -> None:
    """The page is HTML5 without a parse error, and nothing in it can load anything: no script, no link or src, no
    url() in its style, a CSP that forbids it anyway; links only to http(s) pages."""
    html5lib.HTMLParser(strict=True).parse(page)
    elements = Elements(page)
    names = {tag for tag, _ in elements.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "audio", "video", "source", "base"}
    assert not [attrs for _, attrs in elements.tags if "src" in attrs or "srcset" in attrs]
    assert "url(" not in page and "@import" not in page
    [csp] = [m["content"] for m in elements.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None and "default-src 'none'" in csp and "script" not in csp
    for anchor in elements.all("a"):
        assert re.match(r"https?://", anchor["href"] or ""), anchor


def test_the_page_shows_the_period_figures_charts_posts_and_calendar(seeded: Path, tmp_path: Path) -> None:
    page = make_page(seeded, tmp_path / "report.html")
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert_self_contained(page)
    elements = Elements(page)
    text = elements.words()
    assert "6 Nov 2026 to 6 Dec 2026 · 3 channels" in text
    assert "Posts published 30 23 with results" in text  # 14 on vk, 9 on fb, 7 on tg, which gives none
    # Charts: one audience line per channel, the two bar charts; each titled and described for screen readers.
    charts = elements.all("svg")
    assert len(charts) == 5
    for chart in charts:
        assert chart["role"] == "img" and chart["aria-labelledby"]
    assert page.count("<details>") == 4  # the numbers of each audience chart, and the table of the categories
    assert "vk-main 12,030 → 12,900 (+870, +7.2%)" in text  # the first reading of the period is the 7th's
    assert "tg-news 2,100 → 2,040 (-60, -2.9%)" in text
    assert "tg-news : post results are not available from the Bot API (the Telegram Bot API gives" in text
    assert "; their audience is shown." in text
    assert (
        "vk-main : best category: too few posts to say (a category needs 5 measured, the most has 4); best slot:"
        in text
    )
    # The lists: the best post first, each with its link.
    assert elements.all("a")[0]["href"] == "https://example.com/fb-page/24"
    assert "entertaining fb-page · 12 Nov 2026 · post 25 entertaining post of day 24 on fb-page 11.3 per 1,000" in text
    assert "The next four weeks" in text and "free, but no room for a commercial post" in text


def test_hostile_texts_and_links_stay_text(seeded: Path, tmp_path: Path) -> None:
    page = make_page(seeded, tmp_path / "report.html", "--channel", "vk-main")
    assert_self_contained(page)
    assert "onerror=" not in page.replace("onerror=&quot;", "")  # only as escaped text
    assert "&lt;/script&gt;&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;" in page
    assert "javascript:" not in page  # not a link, and not shown


def test_an_empty_database_gives_a_page_that_says_so(empty: Path, tmp_path: Path) -> None:
    page = make_page(empty, tmp_path / "empty.html")
    assert_self_contained(page)
    text = Elements(page).words()
    assert "No post was published in this period." in text
    assert "best category" not in text  # nothing to say yet
    assert "No audience reading in this period yet" in text
    assert "<svg" not in page
    assert "free slot" in text  # the calendar still shows the cadence


def test_the_page_is_written_whole_over_an_older_one(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("old page", encoding="utf-8")
    page = make_page(seeded, out)
    assert page != "old page"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/report.html", "the folder"),
        ("", "is a folder"),
    ],
)
def test_a_bad_path_is_one_line_and_exit_2(seeded: Path, tmp_path: Path, where: str, message: str) -> None:
    with time_machine.travel(NOW, tick=False):
        result = run_cli("report", "--html", str(tmp_path / where), config=seeded)
    assert result.code == 2
    assert message in result.err and result.err.count("\n") == 1
    assert result.out == ""


@pytest.mark.parametrize("other", [("--json",), ("--csv",), ("--by", "slot")])
def test_the_page_takes_no_other_output_or_grouping(seeded: Path, tmp_path: Path, other: tuple[str, ...]) -> None:
    result = run_cli("report", "--html", str(tmp_path / "report.html"), *other, config=seeded)
    assert (result.code, result.out) == (2, "")
    assert "--html writes a page of its own, by category" in result.err
    assert not (tmp_path / "report.html").exists()


def test_the_dots_are_an_even_sample_of_each_category(seeded: Path, db_url: str) -> None:
    config = load_config(str(seeded))
    db = Database(db_url)
    try:
        period = Period(NOW - timedelta(days=30), NOW)
        with open_report(db, period, config.channels, NOW) as (conn, _):
            every = sample(conn, "category", ENGAGEMENT, 1000)
            few = sample(conn, "category", ENGAGEMENT, 2)
    finally:
        db.dispose()
    assert sum(len(values) for values in every.values()) == 23  # each post with results
    for category, values in every.items():
        assert values == sorted(values)
        assert few[category] == values[:: -(-len(values) // 2)]  # the first, and every ceil(n / 2)-th after it


def test_an_agency_s_many_channels_are_named_and_charted_up_to_a_point(tmp_path: Path, db_url: str) -> None:
    names = [f"shop{i:02d}" for i in range(25)]
    body = "".join(f'[[channels]]\nname = "{n}"\nnetwork = "outbox"\npath = "out-{n}"\n\n' for n in names)
    config = write_config(tmp_path / "config.toml", db_url, body, outbox=False)
    db = Database(db_url)
    db.check_schema(create=True)
    with db.write_core() as conn:
        for i, name in enumerate(names):
            for day in (2, 1):
                when = NOW - timedelta(days=day)
                conn.execute(
                    insert(audience_readings).values(channel=name, day=when.date(), members=100 * i + day, read_at=when)
                )
    db.dispose()
    page = make_page(config, tmp_path / "report.html")
    assert_self_contained(page)
    text = Elements(page).words()
    assert "25 channels" in text and "shop19 outbox and 5 more" in text  # the first 20 named
    assert page.count("<svg") == 12  # the first 12 charted, the others in a table
    assert "and 13 channels more" in text and "shop24 2,402 → 2,401 (-1, -0.0%)" in text
    assert "shop00, shop01" in text and "post results are not available (the outbox is a folder" in text


def test_estimated_medians_are_said_under_the_findings(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "estimated from a sample" not in make_page(seeded, tmp_path / "exact.html")
    monkeypatch.setattr("scheduler.store.report.SAMPLE_SIZE", 10)
    text = Elements(make_page(seeded, tmp_path / "estimated.html")).words()
    assert "Medians are estimated from a sample of" in text and "of the 30 posts" in text
    assert "counts and totals are exact." in text
