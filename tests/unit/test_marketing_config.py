"""The marketing keys of the config: [mix], [utm], per-channel overrides, hashtags and [[feeds]], with exact errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import Config, load_config
from scheduler.config_feeds import DEFAULT_FEED_TEMPLATE
from scheduler.errors import ConfigError
from scheduler.mix import MixRule
from scheduler.utm import UtmConfig

ROOT = Path(__file__).resolve().parents[2]
OUT = '[[channels]]\nname = "out"\nnetwork = "outbox"\n'
TG = '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@acme"\ntoken_env = "T"\nparse_mode = "HTML"\n'


def load(tmp_path: Path, body: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return load_config(path, env={})


def error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, body)
    message = str(info.value)
    assert "\n" not in message
    return message.removeprefix(f"{tmp_path / 'config.toml'}: ")


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, OUT + TG)
    assert config.mix == MixRule(0.5, 4, True)
    assert config.utm == UtmConfig(enabled=False)
    assert config.feeds == ()
    out, tg = config.channels
    assert (out.mix, out.utm, out.hashtags) == (MixRule(), UtmConfig(), ())
    assert (out.parse_mode, tg.parse_mode) == (None, "HTML")


def test_sections_and_channel_overrides(tmp_path: Path) -> None:
    body = (
        "[mix]\nshare = 0.25\nwindow = 8\n"
        '[utm]\nenabled = true\nmedium = "smm"\ncampaign = "always"\ndomains = ["Example.com", ".пример.рф"]\n'
        + OUT
        + 'mix_window = 4\nutm_source = "site"\nhashtags = ["acme", "#Acme", "#acme_news", "#новости"]\n'
        + TG
        + 'mix = false\nutm = false\nutm_campaign = "tg"\n'
    )
    config = load(tmp_path, body)
    out, tg = config.channels
    assert config.mix == MixRule(0.25, 8)
    assert out.mix == MixRule(0.25, 4)
    assert tg.mix == MixRule(0.25, 8, enabled=False)
    assert out.utm == UtmConfig(True, "site", "smm", "always", ("example.com", "пример.рф"))
    assert tg.utm == UtmConfig(False, None, "smm", "tg", ("example.com", "пример.рф"))
    assert out.hashtags == ("#acme", "#acme_news", "#новости")  # "#Acme" repeats "#acme"


def test_the_mix_section_switched_off_and_a_channel_switching_it_back_on(tmp_path: Path) -> None:
    config = load(tmp_path, "[mix]\nenabled = false\n" + OUT + "mix = true\n" + TG)
    assert [c.mix.enabled for c in config.channels] == [True, False]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[mix]\nshare = 1.5\n", "mix.share: 1.5 is not a share between 0 and 1 (0.5 is half)"),
        ("[mix]\nshare = -0.1\n", "mix.share: must be a number >= 0, not -0.1"),
        ("[mix]\nwindow = 0\n", "mix.window: must be a whole number >= 1, not 0"),
        (
            "[mix]\nshare = 0.2\nwindow = 4\n",
            "mix.share: 0.2 of 4 deliveries rounds down to no commercial post at all: raise the share or the window "
            "(or set the share to 0 to allow no commercial post)",
        ),
        ("[mix]\nenabled = 1\n", "mix.enabled: must be true or false, not 1"),
        ("[mix]\nratio = 1\n", "mix.ratio: unknown key (known here: enabled, share, window)"),
        (OUT + 'mix = "off"\n', 'channels[0].mix: must be true or false, not "off"'),
        (OUT + "mix_share = 2\n", "channels[0].mix_share: 2 is not a share between 0 and 1 (0.5 is half)"),
        (
            "[utm]\nenabled = true\ncolour = 1\n",
            "utm.colour: unknown key (known here: campaign, domains, enabled, medium, source)",
        ),
        ('[utm]\ncampaign = ""\n', 'utm.campaign: must be a non-empty string, not ""'),
        ('[utm]\ndomains = "x.org"\n', 'utm.domains: must be a list of non-empty strings, not "x.org"'),
        (
            OUT + 'utm_campaign = "' + "c" * 129 + '"\n',
            'channels[0].utm_campaign: "' + "c" * 129 + '" must be at most 128 characters without control characters',
        ),
        (OUT + 'hashtags = "#acme"\n', 'channels[0].hashtags: must be a list of non-empty strings, not "#acme"'),
        (
            OUT + 'hashtags = ["#two words"]\n',
            'channels[0].hashtags: "#two words" is not a hashtag: letters, digits and _ after an optional #',
        ),
        (
            OUT + 'hashtags = ["#a-b"]\n',
            'channels[0].hashtags: "#a-b" is not a hashtag: letters, digits and _ after an optional #',
        ),
    ],
)
def test_errors(tmp_path: Path, body: str, message: str) -> None:
    assert error(tmp_path, body) == message


def test_feeds(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    body = (
        OUT
        + TG
        + '[[feeds]]\nname = "blog"\nurl = "https://example.com/feed.xml"\n'
        + '[[feeds]]\nname = "local"\nurl = "feeds/news.xml"\ntemplate = "{title} {link}"\nchannels = ["tg", "tg"]\n'
        + 'category = "news"\ncampaign = "rss"\ninterval = "15m"\nmax_summary = 200\ntimeout = 5\n'
    )
    blog, local = load(tmp_path, body).feeds
    assert (blog.name, blog.url, blog.template, blog.channels, blog.category, blog.interval) == (
        "blog",
        "https://example.com/feed.xml",
        DEFAULT_FEED_TEMPLATE,
        (),
        "educational",
        3600.0,
    )
    assert blog.is_url and not local.is_url
    assert local.url == str((tmp_path / "feeds" / "news.xml").resolve())
    assert (local.template, local.channels, local.category, local.campaign) == (
        "{title} {link}",
        ("tg",),
        "news",
        "rss",
    )
    assert (local.interval, local.max_summary, local.timeout) == (900.0, 200, 5.0)


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ('url = "x"\n', "feeds[0].name: is required"),
        ('name = "b"\n', "feeds[0].url: is required"),
        ('name = "b c"\nurl = "x"\n', "feeds[0].name: \"b c\" must be 1-64 letters, digits, '-', '_' or '.'"),
        ('name = "b"\nurl = "ftp://x/feed"\n', 'feeds[0].url: "ftp://x/feed" is not an http(s) URL or a file path'),
        (
            'name = "b"\nurl = "x"\ntemplate = "{title} {body}"\n',
            "feeds[0].template: {body} is not a placeholder; use {title}, {summary}, {link}, {author}, {published}, "
            "{feed}",
        ),
        (
            'name = "b"\nurl = "x"\ntemplate = "{title"\n',
            "feeds[0].template: \"{title\" is not a template: expected '}' before end of string "
            "(write {{ and }} for braces)",
        ),
        ('name = "b"\nurl = "x"\nchannels = ["nope"]\n', 'feeds[0].channels: "nope" is not a channel; configured: out'),
        (
            'name = "b"\nurl = "x"\ncategory = "ads"\n',
            'feeds[0].category: "ads" is not one of entertaining, educational, commercial, ugc, news',
        ),
        (
            'name = "b"\nurl = "x"\ninterval = "10s"\n',
            "feeds[0].interval: 10 seconds is too often to poll a feed; at least 60 seconds",
        ),
        (
            'name = "b"\nurl = "x"\ncolour = 1\n',
            "feeds[0].colour: unknown key (known here: campaign, category, channels, interval, max_summary, name, "
            "template, timeout, url)",
        ),
    ],
)
def test_feed_errors(tmp_path: Path, feed: str, message: str) -> None:
    assert error(tmp_path, OUT + "[[feeds]]\n" + feed) == message


def test_feed_names_are_unique_and_feeds_an_array(tmp_path: Path) -> None:
    twice = OUT + '[[feeds]]\nname = "b"\nurl = "x"\n[[feeds]]\nname = "b"\nurl = "y"\n'
    assert error(tmp_path, twice) == 'feeds[1].name: "b" is already the name of another feed'
    assert error(tmp_path, 'feeds = "x"\n' + OUT) == "feeds: must be an array of tables: [[feeds]]"


def test_the_example_config_documents_every_marketing_key() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for key in ("[mix]", "[utm]", "domains", "hashtags", "mix_share", "mix_window", "utm_source", "utm_medium"):
        assert key in text, key
    for key in ("utm_campaign", "[[feeds]]", "template", "interval", "max_summary", "category", "campaign"):
        assert key in text, key


def test_evergreen_defaults_section_and_channel_override(tmp_path: Path) -> None:
    from datetime import timedelta

    from scheduler.config_marketing import EvergreenConfig

    assert load(tmp_path, OUT).channels[0].evergreen == EvergreenConfig(timedelta(days=2), timedelta(days=30))
    body = '[evergreen]\nfill_ahead = "36h"\ncooldown = "14d"\n' + OUT + TG + 'evergreen_cooldown = "7d"\n'
    out, tg = load(tmp_path, body).channels
    assert out.evergreen == EvergreenConfig(timedelta(hours=36), timedelta(days=14))
    assert tg.evergreen == EvergreenConfig(timedelta(hours=36), timedelta(days=7))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[evergreen]\ncooldown = "a month"\n',
            'evergreen.cooldown: "a month" is not a duration such as 90, "30s", "15m", "2h" or "1d"',
        ),
        (
            "[evergreen]\nfill_ahead = 0\n",
            "evergreen.fill_ahead: must be more than 0 seconds (how long before an empty slot the pool fills it)",
        ),
        (
            "[evergreen]\nahead = 1\n",
            "evergreen.ahead: unknown key, did you mean fill_ahead? (known here: cooldown, fill_ahead)",
        ),
        (
            OUT + "evergreen_cooldown = -1\n",
            'channels[0].evergreen_cooldown: -1 is not a duration such as 90, "30s", "15m", "2h" or "1d"',
        ),
    ],
)
def test_evergreen_errors_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    assert error(tmp_path, body) == message
