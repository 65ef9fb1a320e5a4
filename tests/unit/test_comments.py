"""The comment watch's pure parts: the ``[comments]`` table, ``--since``, the digest's time and text."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.comments import SHOWN_TEXT, digest_alert, next_digest
from scheduler.config_comments import CommentsConfig
from scheduler.errors import InputError
from scheduler.intake import read_since
from scheduler.store.comments import StoredComment
from tests.unit.test_config import error_of, load, write

NOW = datetime(2026, 12, 6, 8, 30, tzinfo=UTC)


def test_the_comments_table_has_sensible_defaults_and_reads_each_key(tmp_path: Path) -> None:
    assert load(write(tmp_path, "")).comments == CommentsConfig(True, 14, 3600.0, time(9, 0))
    body = '[comments]\nenabled = false\ndays = 3\ninterval = "30m"\ndigest_at = "18:05"\n'
    assert load(write(tmp_path, body)).comments == CommentsConfig(False, 3, 1800.0, time(18, 5))


@pytest.mark.parametrize(
    "body, message",
    [
        ('interval = "10s"', "comments.interval: must be at least 60 seconds, not 10"),
        ("days = 0", "comments.days: must be a whole number >= 1, not 0"),
        ('digest_at = "25:00"', 'comments.digest_at: "25:00" is not a time of day such as "09:00"'),
        ("enabled = 1", "comments.enabled: must be true or false, not 1"),
        ("dayz = 3", "comments.dayz: unknown key, did you mean days?"),
    ],
)
def test_a_bad_comments_key_is_one_line_naming_it(tmp_path: Path, body: str, message: str) -> None:
    error = error_of(write(tmp_path, f"[comments]\n{body}\n"))
    assert message in error and "\n" not in error


def test_since_takes_a_duration_back_from_now_or_a_date_in_the_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    assert read_since("2d", moscow, NOW, "--since") == datetime(2026, 12, 4, 8, 30, tzinfo=UTC)
    assert read_since("2026-12-01", moscow, NOW, "--since") == datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    assert read_since("2026-12-01T10:00+01:00", moscow, NOW, "--since") == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(InputError, match="--since 'last week' is neither a duration"):
        read_since("last week", moscow, NOW, "--since")


def test_the_digest_goes_at_its_time_of_day_in_the_zone_next() -> None:
    moscow = ZoneInfo("Europe/Moscow")  # UTC+3: 09:00 there is 06:00 UTC, passed today at 08:30 UTC
    assert next_digest(NOW, time(9, 0), moscow) == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    assert next_digest(NOW, time(12, 0), moscow) == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def comment(n: int, post: int, channel: str, text: str = "hello") -> StoredComment:
    url = f"https://example.com/c/{n}"
    return StoredComment(n, post, channel, channel, str(n), f"Reader {n}", text, NOW, url, NOW, shown=False)


def test_the_digest_counts_per_post_and_channel_and_lists_each_comment_with_its_link() -> None:
    comments = [comment(1, 12, "vk"), comment(2, 12, "vk"), comment(3, 12, "facebook"), comment(4, 14, "ok")]
    comments.append(comment(5, 12, "vk", "x" * 500 + "\n\x1b[2Jcleared"))
    alert = digest_alert(comments)
    assert alert.event == "comment_digest"
    headline, *lines = alert.lines().splitlines()
    assert headline == "5 new comments: post 12 on facebook (1), vk (3); post 14 on ok (1)"
    assert lines[0] == "  post 12 on vk, Reader 1: hello https://example.com/c/1"
    assert len(lines[4]) < SHOWN_TEXT + 60 and "\x1b" not in lines[4]


def test_a_long_digest_lists_twenty_and_counts_the_rest() -> None:
    lines = digest_alert([comment(n, 1, "vk") for n in range(25)]).lines().splitlines()
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  and 5 more: smm comments"


def test_a_telegram_channel_reads_its_comments_only_when_it_says_so(tmp_path: Path) -> None:
    table = '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@news"\ntoken_env = "TG"\n'
    assert load(write(tmp_path, table)).channel("tg").options["read_comments"] is False
    assert load(write(tmp_path, table + "read_comments = true\n")).channel("tg").options["read_comments"] is True
    error = error_of(write(tmp_path, table + 'read_comments = "yes"\n'))
    assert 'channels[0].read_comments: must be true or false, not "yes"' in error
