"""``smm report``: a small dataset computed by hand, on SQLite and PostgreSQL, each grouping, the lines under the
table, the command's text, JSON and CSV, its errors, and that the database returns one row per group, not per
delivery.

The dataset (period November 2026, UTC): ``vk`` (VK, Europe/Moscow, UTC+3 all year), ``fb`` (Facebook, UTC) and
``tg`` (Telegram, UTC). Engagement per 1,000 followers of each delivery is written next to it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from scheduler import report as report_module
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.report import GROUPINGS, Period, Report, build_report
from scheduler.tables import Status, audience_readings, deliveries, figure_channels, posts, result_readings
from scheduler.timeline import insert_post
from tests.conftest import run_cli, utc, write_config
from tests.report_data import counting_rows, seed_results

SINCE, UNTIL = utc(2026, 11, 1), utc(2026, 12, 1)

CHANNELS = """
[[channels]]
name = "vk"
network = "vk"
group_id = 1
token_env = "SMM_TEST_NO_SUCH_TOKEN"
timezone = "Europe/Moscow"

[[channels]]
name = "fb"
network = "facebook"
page_id = 1
token_env = "SMM_TEST_NO_SUCH_TOKEN"

[[channels]]
name = "tg"
network = "telegram"
chat_id = "@tgnews"
token_env = "SMM_TEST_NO_SUCH_TOKEN"
"""


@dataclass
class Row:
    channel: str
    category: str
    due: datetime
    slotted: bool
    published: datetime | None  # None: failed, never published
    figures: tuple[int | None, int | None, int | None, int | None] | None = None  # latest reading; None: no reading
    campaign: str | None = None


NETWORK = {"vk": "vk", "fb": "facebook", "tg": "telegram"}
S = timedelta(seconds=5)
ROWS = [
    # vk: audience 1000 (Oct 31, Nov 1), 2000 (Nov 15), 2500 (Nov 30)
    Row("vk", "educational", utc(2026, 11, 3, 7), True, utc(2026, 11, 3, 7) + S, (100, 10, 0, 0), "autumn"),  # 10.0
    Row("vk", "educational", utc(2026, 11, 6, 7), True, utc(2026, 11, 6, 7) + S, (300, 20, 5, 5)),  # 30.0
    # 01:30 on Tuesday in Moscow, Monday in UTC; no reposts or comments given: 2 / 2000 -> 1.0
    Row(
        "vk", "commercial", utc(2026, 11, 16, 22, 30), False, utc(2026, 11, 16, 22, 30), (200, 2, None, None), "autumn"
    ),
    Row("vk", "educational", utc(2026, 11, 10, 7), True, utc(2026, 11, 10, 7) + S, (500, 40, 10, 0)),  # 50.0
    Row("vk", "educational", utc(2026, 11, 17, 7), True, utc(2026, 11, 17, 7) + S, (None, None, None, None)),  # -
    Row("vk", "educational", utc(2026, 11, 24, 7), True, utc(2026, 11, 24, 7) + S, None),  # not read yet
    Row("vk", "educational", utc(2026, 12, 1, 7), True, utc(2026, 12, 1, 7) + S, (9, 9, 9, 9)),  # after the period
    Row("vk", "educational", utc(2026, 11, 20, 7), True, None),  # failed
    # fb: audience 500 (Nov 2), 400 (Nov 29); no views (no insights right)
    Row("fb", "entertaining", utc(2026, 11, 6, 10), True, utc(2026, 11, 6, 10) + S, (None, 4, 1, 0)),  # 5/500: 10.0
    # before fb's first audience reading: its earliest one counts, 1/500 -> 2.0
    Row("fb", "commercial", utc(2026, 11, 1, 12), False, utc(2026, 11, 1, 12), (None, 1, 0, 0), "autumn"),
    # tg: audience 300 (Nov 1), 330 (Nov 30); no results ever
    Row("tg", "news", utc(2026, 11, 3, 10), True, utc(2026, 11, 3, 10) + S),
    Row("tg", "commercial", utc(2026, 11, 20, 8), False, utc(2026, 11, 20, 8)),
]
AUDIENCE = [
    ("vk", date(2026, 10, 31), 1000),
    ("vk", date(2026, 11, 1), 1000),
    ("vk", date(2026, 11, 15), 2000),
    ("vk", date(2026, 11, 30), 2500),
    ("fb", date(2026, 11, 2), 500),
    ("fb", date(2026, 11, 29), 400),
    ("tg", date(2026, 11, 1), 300),
    ("tg", date(2026, 11, 30), 330),
]


def seed(db: Database) -> None:
    """The dataset above, written as the daemon would have: posts queued, then published, then read back."""
    with db.write_core() as conn:
        for row in ROWS:
            post_id = insert_post(
                conn,
                text="x",
                link=None,
                category=row.category,
                media=[],
                now=row.due - timedelta(days=7),
                plan=[(row.channel, NETWORK[row.channel], row.due, row.slotted)],
                campaign=row.campaign,
            )
            status = Status.PUBLISHED if row.published else Status.FAILED
            delivery_id = conn.execute(
                update(deliveries)
                .where(deliveries.c.post_id == post_id)
                .values(status=status.value, published_at=row.published)
                .returning(deliveries.c.id)
            ).scalar_one()
            if row.figures is not None and row.published is not None:
                # an older reading that the latest one replaces, then the latest
                conn.execute(
                    insert(result_readings).values(
                        delivery_id=delivery_id,
                        age=3600,
                        read_at=row.published + timedelta(hours=1),
                        views=1,
                        likes=1,
                        reposts=1,
                        comments=1,
                        gone=False,
                        latest=False,
                    )
                )
                views, likes, reposts, comments = row.figures
                conn.execute(
                    insert(result_readings).values(
                        delivery_id=delivery_id,
                        age=86400,
                        read_at=row.published + timedelta(days=1),
                        views=views,
                        likes=likes,
                        reposts=reposts,
                        comments=comments,
                        gone=False,
                        latest=True,
                    )
                )
        for channel, day, members in AUDIENCE:
            read_at = datetime(day.year, day.month, day.day, 6, tzinfo=SINCE.tzinfo)
            conn.execute(insert(audience_readings).values(channel=channel, day=day, members=members, read_at=read_at))


@pytest.fixture
def config_path(tmp_path: Path, db_url: str) -> Path:
    return write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False)


@pytest.fixture
def db(db_url: str, config_path: Path) -> Iterator[Database]:
    database = Database(db_url)
    database.check_schema()
    seed(database)
    yield database
    database.dispose()


def make(db: Database, config_path: Path, by: str = "category") -> Report:
    return build_report(db, Period(SINCE, UNTIL), load_config(str(config_path)).channels, by, now=UNTIL)


def table(report: Report) -> dict[str, dict[str, Any]]:
    """Each group as {"posts", "measured", metric: (median, total), "engagement": median}, keyed by its label."""
    out = {}
    for g in report.groups:
        label = f"{g.channel} {g.key}" if g.channel else g.key
        out[label] = {"posts": g.posts, "measured": g.measured, "engagement": g.engagement.median}
        for m in ("views", "likes", "reposts", "comments"):
            metric = getattr(g, m)
            out[label][m] = (metric.median, metric.total)
    return out


NA = (None, None)


def test_by_category(db: Database, config_path: Path) -> None:
    assert table(make(db, config_path)) == {
        "entertaining": {
            "posts": 1, "measured": 1, "views": NA, "likes": (4.0, 4), "reposts": (1.0, 1), "comments": (0.0, 0),
            "engagement": 10.0,
        },
        "educational": {
            "posts": 5, "measured": 4, "views": (300.0, 900), "likes": (20.0, 70), "reposts": (5.0, 15),
            "comments": (0.0, 5), "engagement": 30.0,
        },
        "commercial": {
            "posts": 3, "measured": 2, "views": (200.0, 200), "likes": (1.5, 3), "reposts": (0.0, 0),
            "comments": (0.0, 0), "engagement": 1.5,
        },
        "news": {
            "posts": 1, "measured": 0, "views": NA, "likes": NA, "reposts": NA, "comments": NA, "engagement": None,
        },
    }  # fmt: skip


def test_by_channel(db: Database, config_path: Path) -> None:
    rows = table(make(db, config_path, "channel"))
    assert list(rows) == ["vk", "fb", "tg"]
    assert rows["vk"] == {
        "posts": 6, "measured": 5, "views": (250.0, 1100), "likes": (15.0, 72), "reposts": (5.0, 15),
        "comments": (0.0, 5), "engagement": 20.0,
    }  # fmt: skip
    assert rows["fb"]["views"] == NA and rows["fb"]["likes"] == (2.5, 5) and rows["fb"]["engagement"] == 6.0
    assert rows["tg"] == {"posts": 2, "measured": 0, "engagement": None} | dict.fromkeys(
        ("views", "likes", "reposts", "comments"), NA
    )


def test_by_slot_weekday_hour_campaign(db: Database, config_path: Path) -> None:
    slots = {k: (v["posts"], v["engagement"]) for k, v in table(make(db, config_path, "slot")).items()}
    assert slots == {
        "vk tue 10:00": (4, 30.0),
        "vk fri 10:00": (1, 30.0),
        "vk explicit time": (1, 1.0),
        "fb fri 10:00": (1, 10.0),
        "fb explicit time": (1, 2.0),
        "tg tue 10:00": (1, None),
        "tg explicit time": (1, None),
    }
    assert list(slots) == list(slots)  # in channel order, slots by weekday and time, explicit times last
    weekdays = {k: v["posts"] for k, v in table(make(db, config_path, "weekday")).items()}
    assert list(weekdays.items()) == [("tue", 6), ("fri", 3), ("sun", 1)]  # vk's 22:30 UTC Monday is Tuesday
    hours = {k: v["posts"] for k, v in table(make(db, config_path, "hour")).items()}
    assert list(hours.items()) == [("01:00", 1), ("08:00", 1), ("10:00", 7), ("12:00", 1)]
    campaigns = table(make(db, config_path, "campaign"))
    assert list(campaigns) == ["autumn", "(none)"]
    assert campaigns["autumn"]["posts"] == 3 and campaigns["autumn"]["engagement"] == 2.0
    assert campaigns["autumn"]["views"] == (150.0, 300)
    assert campaigns["(none)"]["posts"] == 7


def test_audience_growth_and_no_results(db: Database, config_path: Path) -> None:
    report = make(db, config_path)
    growth = {a.channel: (a.start, a.start_day, a.end, a.end_day, a.growth, a.growth_pct) for a in report.audiences}
    assert growth == {
        "vk": (1000, date(2026, 11, 1), 2500, date(2026, 11, 30), 1500, 150.0),
        "fb": (500, date(2026, 11, 2), 400, date(2026, 11, 29), -100, -20.0),
        "tg": (300, date(2026, 11, 1), 330, date(2026, 11, 30), 30, 10.0),
    }
    assert [(n.channel, n.network) for n in report.no_results] == [("tg", "telegram")]
    assert "Bot API" in report.no_results[0].reason


def test_best_and_too_few(db: Database, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = make(db, config_path)
    assert report.min_sample == 5
    best = {(b.channel, b.what): (b.key, b.median, b.n) for b in report.best}
    # no group reaches 5 deliveries with an engagement figure: the sizes of the largest ones
    assert best == {
        ("vk", "category"): (None, None, 3),
        ("vk", "slot"): (None, None, 2),
        ("fb", "category"): (None, None, 1),
        ("fb", "slot"): (None, None, 1),
    }
    monkeypatch.setattr(report_module, "MIN_SAMPLE", 2)
    report = make(db, config_path)
    best = {(b.channel, b.what): (b.key, b.median, b.n) for b in report.best}
    assert best[("vk", "category")] == ("educational", 30.0, 3)
    assert best[("vk", "slot")] == ("tue 10:00", 30.0, 2)
    assert best[("fb", "category")] == (None, None, 1)


def test_commercial_share(db: Database, config_path: Path) -> None:
    mix = make(db, config_path).commercial
    assert mix.share == pytest.approx(0.3)
    assert (mix.commercial.posts, mix.commercial.engagement.median, mix.commercial.engagement.n) == (3, 1.5, 2)
    assert (mix.commercial.views.median, mix.commercial.views.n) == (200.0, 1)
    assert (mix.other.posts, mix.other.engagement.median, mix.other.engagement.n) == (7, 20.0, 4)
    assert (mix.other.views.median, mix.other.views.n) == (300.0, 3)


PERIOD = ["--since", "2026-11-01T00:00Z", "--until", "2026-12-01T00:00Z"]


def test_cli_text(db: Database, config_path: Path) -> None:
    result = run_cli("report", *PERIOD, config=config_path)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "posts published from 2026-11-01 00:00 UTC to 2026-12-01 00:00 UTC, by category, on vk, fb, tg"
    header = lines[3]
    assert header.split()[:3] == ["category", "posts", "measured"]
    educational = next(line for line in lines if line.startswith("educational"))
    assert educational.split("  ")[0] == "educational"
    assert "300 / 900" in educational and educational.endswith("30")
    assert len({len(line) for line in lines[3:8]}) <= 2  # aligned: every row as wide as the header (or trimmed)
    news = next(line for line in lines if line.startswith("news"))
    assert news.split()[3:] == ["n/a"] * 5
    assert any(line.startswith("vk") and "+1,500 (+150.0%)" in line for line in lines)
    assert "vk: best category: too few posts to say (n < 5; largest sample 3)" in result.out
    assert "tg: post results are not available (the Telegram Bot API" in result.out and "audience only" in result.out
    assert "commercial posts: 3 of 10 (30%): median engagement 1.5 per 1,000 followers (n=2)" in result.out


@pytest.mark.parametrize("by", GROUPINGS)
def test_cli_json_and_csv_for_each_grouping(db: Database, config_path: Path, by: str) -> None:
    result = run_cli("report", *PERIOD, "--by", by, "--json", config=config_path)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    expected = make(db, config_path, by)
    assert data["by"] == by and data["period"] == {"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
    assert [(g["key"], g["channel"], g["posts"]) for g in data["groups"]] == [
        (g.key, g.channel, g.posts) for g in expected.groups
    ]
    assert data["commercial"]["share"] == pytest.approx(0.3)
    result = run_cli("report", *PERIOD, "--by", by, "--csv", config=config_path)
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert len(rows) == len(expected.groups)
    for row, group in zip(rows, expected.groups, strict=True):
        channel = group.key if by == "channel" else group.channel or ""
        assert (row["group"], row["channel"], int(row["posts"])) == (group.key, channel, group.posts)
        assert row["views_median"] == ("" if group.views.median is None else str(group.views.median))
        assert int(row["views_sampled"]) == group.views.sampled == int(row["views_n"])  # exact: all of them
        assert int(row["engagement_per_1000_sampled"]) == group.engagement.n


def test_cli_json_values(db: Database, config_path: Path) -> None:
    data = json.loads(run_cli("report", *PERIOD, "--json", config=config_path).out)
    news = next(g for g in data["groups"] if g["key"] == "news")
    assert news["views"] == {"n": 0, "median": None, "total": None, "sampled": 0}
    educational = next(g for g in data["groups"] if g["key"] == "educational")
    assert educational["views"] == {"n": 3, "median": 300.0, "total": 900, "sampled": 3}
    assert data["audiences"][0] == {
        "channel": "vk", "network": "vk", "start": 1000, "start_day": "2026-11-01", "end": 2500,
        "end_day": "2026-11-30", "growth": 1500, "growth_pct": 150.0,
    }  # fmt: skip
    assert data["no_results"][0]["channel"] == "tg"
    assert data["min_sample"] == 5


def test_cli_one_channel_reads_times_in_its_zone(db: Database, config_path: Path) -> None:
    # 03:00 in Moscow is midnight UTC: the same period as above
    result = run_cli(
        "report", "--channel", "vk", "--since", "2026-11-01T03:00", "--until", "2026-12-01T03:00", "--json",
        config=config_path,
    )  # fmt: skip
    data = json.loads(result.out)
    assert data["channels"] == ["vk"] and data["period"]["since"] == "2026-11-01T00:00:00Z"
    assert sum(g["posts"] for g in data["groups"]) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "nope"], "unknown channel 'nope'"),
        (["--since", "2026-12-01T00:00Z", "--until", "2026-11-01T00:00Z"], "--since must be before --until"),
        (["--by", "month"], "'month' is not one of"),
        (["--since", "yesterday"], "--since 'yesterday' is neither a duration such as 2d or 12h nor an ISO 8601 date"),
        (["--json", "--csv"], "--json and --csv cannot be used together"),
    ],
)
def test_cli_bad_input(db: Database, config_path: Path, args: list[str], message: str) -> None:
    result = run_cli("report", *args, config=config_path)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1 and message in result.err, result.err


def test_the_commands_groupings_are_the_reports() -> None:
    from scheduler import cli_report

    assert cli_report._GROUPINGS == GROUPINGS


@pytest.mark.parametrize("by", ["category", "slot"])
def test_rows_fetched_are_one_per_group_not_per_delivery(db_url: str, tmp_path: Path, by: str) -> None:
    """Ten times the deliveries, the same groups: the same number of rows reach Python."""
    channels = [("vk", "vk"), ("fb", "facebook"), ("tg", "telegram")]
    config = load_config(str(write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False))).channels
    fetched = []
    for n in (2_000, 20_000):
        database = Database(db_url)
        database.check_schema()
        with database.write_core() as conn:
            for table in (figure_channels, result_readings, audience_readings, deliveries, posts):
                conn.execute(table.delete())
            seed_results(conn, n, channels, SINCE, UNTIL - SINCE)
        with counting_rows() as counter:
            report = build_report(database, Period(SINCE, UNTIL), config, by, now=UNTIL)
        database.dispose()
        assert sum(g.posts for g in report.groups) == n - 1  # the last one is published at UNTIL, outside
        fetched.append(counter[0])
    assert fetched[0] == fetched[1] < 1_000


def test_zone_offsets_find_each_dst_change_to_the_second() -> None:
    from zoneinfo import ZoneInfo

    from scheduler.store.figures import zone_offsets

    start, end = utc(2026, 1, 1), utc(2027, 1, 1)
    assert zone_offsets(ZoneInfo("Europe/Berlin"), start, end) == [
        (int(start.timestamp()), 3600),
        (int(utc(2026, 3, 29, 1).timestamp()), 7200),
        (int(utc(2026, 10, 25, 1).timestamp()), 3600),
    ]
    assert zone_offsets(ZoneInfo("Europe/Moscow"), start, end) == [(int(start.timestamp()), 10800)]


def test_local_slots_and_hours_follow_daylight_saving_time(db_url: str, tmp_path: Path) -> None:
    body = '[[channels]]\nname = "be"\nnetwork = "facebook"\npage_id = 1\ntoken_env = "X"\ntimezone = "Europe/Berlin"\n'
    config = load_config(str(write_config(tmp_path / "config.toml", db_url, body, outbox=False))).channels
    database = Database(db_url)
    database.check_schema()
    with database.write_core() as conn:
        # Tuesday 10:00 in Berlin in winter (UTC+1) and in summer (UTC+2)
        for due in (utc(2026, 3, 24, 9), utc(2026, 3, 31, 8)):
            post_id = insert_post(
                conn, text="x", link=None, category="news", media=[], now=due, plan=[("be", "facebook", due, True)]
            )
            conn.execute(
                update(deliveries).where(deliveries.c.post_id == post_id).values(status="published", published_at=due)
            )
    period = Period(utc(2026, 3, 1), utc(2026, 5, 1))
    slots = build_report(database, period, config, "slot", now=period.until).groups
    hours = build_report(database, period, config, "hour", now=period.until).groups
    database.dispose()
    assert [(g.channel, g.key, g.posts) for g in slots] == [("be", "tue 10:00", 2)]
    assert [(g.key, g.posts) for g in hours] == [("10:00", 2)]


def test_a_period_without_posts(db: Database, config_path: Path) -> None:
    result = run_cli("report", "--since", "2020-01-01T00:00Z", "--until", "2020-02-01T00:00Z", config=config_path)
    assert result.code == 0, result.err
    assert "no posts were published in this period" in result.out
    assert "vk: best category: no posts with results to say; best slot: no posts with results to say" in result.out
    assert "commercial posts: none published in this period" in result.out
    assert "vk        vk          n/a  n/a     n/a" in result.out


def test_medians_past_the_sample_size_are_estimated_and_said_so(
    db: Database, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = make(db, config_path)
    assert not exact.estimated and exact.median_sample == exact.posts == 10
    monkeypatch.setattr("scheduler.store.report.SAMPLE_SIZE", 4)
    estimated = make(db, config_path)
    assert estimated.estimated and 0 < estimated.median_sample < estimated.posts == 10
    for e, x in zip(estimated.groups, exact.groups, strict=True):
        assert (e.key, e.posts, e.measured) == (x.key, x.posts, x.measured)
        for name in ("views", "likes", "reposts", "comments", "engagement"):
            got, want = getattr(e, name), getattr(x, name)
            assert (got.n, got.total) == (want.n, want.total)  # counts and totals stay exact
            assert got.sampled <= got.n and (got.median is None) == (got.sampled == 0)
    # too few posts in the sample to name a best category or slot
    assert all(b.key is None for b in estimated.best)
    text = run_cli("report", *PERIOD, config=config_path).out
    assert f"medians are estimated from a sample of {estimated.median_sample} of the 10 posts" in text
    data = json.loads(run_cli("report", *PERIOD, "--json", config=config_path).out)
    assert (data["posts"], data["median_sample"]) == (10, estimated.median_sample)


def test_an_estimated_median_is_close_to_the_exact_one(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 deliveries, medians from a sample of 2,000: each category's estimated median views sits near the
    middle of that category's views: its rank within 1 / sqrt(m) of a half, m the group's sampled posts (about two
    standard errors of a random sample's median; the data is fixed, so the test is deterministic)."""
    channels = [("vk", "vk"), ("fb", "facebook"), ("tg", "telegram")]
    config = load_config(str(write_config(tmp_path / "config.toml", db_url, CHANNELS, outbox=False))).channels
    database = Database(db_url)
    database.check_schema()
    try:
        with database.write_core() as conn:
            seed_results(conn, 20_000, channels, SINCE, UNTIL - SINCE)
        monkeypatch.setattr("scheduler.store.report.SAMPLE_SIZE", 2_000)
        report = build_report(database, Period(SINCE, UNTIL), config, now=UNTIL)
        assert report.estimated and 1_800 < report.median_sample < 2_200
        d, p, r = deliveries.c, posts.c, result_readings.c
        for group in report.groups:
            views = group.views
            assert views.median is not None and 100 < views.sampled < views.n
            with database.read_core() as conn:
                below, total = conn.execute(
                    select(func.count().filter(r.views < views.median), func.count(r.views))
                    .select_from(deliveries.join(posts, p.id == d.post_id).join(result_readings, r.delivery_id == d.id))
                    .where(p.category == group.key, r.latest, d.published_at < UNTIL)
                ).one()
            assert total == views.n
            assert abs(below / total - 0.5) < 1 / views.sampled**0.5, (group.key, below / total)
    finally:
        database.dispose()


def test_a_user_who_may_not_write_gets_the_figures_as_they_were_kept(postgres_url: str, tmp_path: Path) -> None:
    """A PostgreSQL role that may only read (a marketer's, say): the catch-up is refused, the report is made from
    the figures as the daemon (here, an earlier report) kept them, and says so."""
    import uuid

    import psycopg

    from tests.conftest import PG_URL

    owner_config = write_config(tmp_path / "owner.toml", postgres_url, CHANNELS, outbox=False)
    owner = Database(postgres_url)
    owner.check_schema()
    seed(owner)
    kept = build_report(owner, Period(SINCE, UNTIL), load_config(str(owner_config)).channels, now=UNTIL)
    assert kept.not_updated is None
    schema, role = postgres_url.rsplit("search_path%3D", 1)[1], f"reader_{uuid.uuid4().hex[:10]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    reader_url = postgres_url.replace("postgres@", f"{role}@", 1)
    reader = Database(reader_url)
    try:
        config = load_config(str(write_config(tmp_path / "reader.toml", reader_url, CHANNELS, outbox=False)))
        report = build_report(reader, Period(SINCE, UNTIL), config.channels, now=UNTIL + timedelta(days=1))
        assert report.not_updated is not None and "permission denied" in report.not_updated
        assert report.groups == kept.groups and report.posts == kept.posts
        result = run_cli("report", *PERIOD, config=tmp_path / "reader.toml")
        assert result.code == 0, result.err
        assert (
            "the figures are as the daemon last kept them: this report could not bring them up to date: "
            "permission denied" in result.out
        )
        assert json.loads(run_cli("report", *PERIOD, "--json", config=tmp_path / "reader.toml").out)["not_updated"]
    finally:
        reader.dispose()
        owner.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
