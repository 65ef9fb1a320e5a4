"""Alerts without a network: the ``[alerts]`` config, one exact line per error, and the grouping of a burst into
digests (:class:`~scheduler.alerts.Outbox`, with the time passed in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.alerts import SHOWN_PER_EVENT, Alert, Outbox, compose
from scheduler.config_alerts import ALERT_EVENTS
from tests.unit.test_marketing_config import error, load


def test_no_alerts_section_means_no_destinations(tmp_path: Path) -> None:
    assert load(tmp_path, "").alerts.destinations == ()


def test_a_destination_in_three_lines_wants_every_event(tmp_path: Path) -> None:
    alerts = load(tmp_path, '[[alerts.destinations]]\nname = "tg"\nurl_env = "SMM_ALERTS"\n').alerts
    (destination,) = alerts.destinations
    assert (destination.name, destination.url.source, destination.url.name) == ("tg", "env", "SMM_ALERTS")
    assert destination.events == frozenset(ALERT_EVENTS)
    assert (alerts.interval, alerts.timeout) == (60.0, 30.0)
    assert destination.url.read({"SMM_ALERTS": "json://h/x"}) == "json://h/x"


def test_events_interval_timeout_and_a_relative_url_file(tmp_path: Path) -> None:
    alerts = load(
        tmp_path,
        '[alerts]\ninterval = "5m"\ntimeout = "10s"\n'
        '[[alerts.destinations]]\nurl_file = "secrets/hook"\nevents = ["delivery_failed", "queue_dry"]\n'
        '[[alerts.destinations]]\nurl_credential = "alerts-mail"\n',
    ).alerts
    first, second = alerts.destinations
    assert (alerts.interval, alerts.timeout) == (300.0, 10.0)
    assert (first.name, first.url.name, first.events) == (
        "destination-1",
        str(tmp_path / "secrets/hook"),
        frozenset({"delivery_failed", "queue_dry"}),
    )
    assert (second.name, second.url.source) == ("destination-2", "credential")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[[alerts.destinations]]\nurl = "tgram://123:abc/1"\n',
            "alerts.destinations[0].url: secrets never go in the config: use url_env, url_file or url_credential",
        ),
        (
            '[[alerts.destinations]]\nname = "x"\n',
            "alerts.destinations[0].url_env: is required (or url_file, or url_credential)",
        ),
        (
            '[[alerts.destinations]]\nurl_env = "A"\nevents = ["delivery_faild"]\n',
            """alerts.destinations[0].events: "delivery_faild" is not an event, did you mean delivery_failed? """
            f"(known: {', '.join(ALERT_EVENTS)})",
        ),
        (
            '[[alerts.destinations]]\nurl_env = "A"\nevents = []\n',
            "alerts.destinations[0].events: is empty: leave it out to get every event",
        ),
        (
            '[[alerts.destinations]]\nurl_env = "A"\nevnts = ["queue_dry"]\n',
            "alerts.destinations[0].evnts: unknown key, did you mean events? "
            "(known here: events, name, url_credential, url_env, url_file)",
        ),
        (
            '[alerts]\nintervall = "1m"\n',
            "alerts.intervall: unknown key, did you mean interval? (known here: destinations, interval, timeout)",
        ),
        (
            '[[alerts.destinations]]\nname = "a"\nurl_env = "A"\n[[alerts.destinations]]\nname = "a"\nurl_env = "B"\n',
            'alerts.destinations[1].name: "a" is already the name of another destination',
        ),
        (
            '[alerts]\ndestinations = "json://x"\n',
            "alerts.destinations: must be an array of tables: [[alerts.destinations]]",
        ),
        ("[alerts]\ntimeout = 0\n", "alerts.timeout: must be more than 0 seconds"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(tmp_path: Path, body: str, expected: str) -> None:
    assert error(tmp_path, body) == expected


def failure(n: int) -> Alert:
    return Alert("delivery_failed", f"HTTP 500 from the network (try {n})", channel="vk-news", post_id=n)


def test_an_outbox_sends_at_once_then_at_most_once_an_interval() -> None:
    box = Outbox(interval=60)
    box.add(failure(1))
    assert box.due(1000.0)
    batch, counts = box.take()
    box.sent(1000.0)
    assert (len(batch), counts["delivery_failed"]) == (1, 1)
    for n in range(2, 1002):
        box.add(failure(n))
    assert not box.due(1059.9)
    assert box.due(1060.0)
    batch, counts = box.take()
    assert (len(batch), counts["delivery_failed"]) == (SHOWN_PER_EVENT, 1000)
    assert not box.due(1060.0)  # emptied


def test_a_failed_batch_goes_back_ahead_of_newer_alerts_with_a_growing_backoff() -> None:
    box = Outbox(interval=60)
    box.add(failure(1))
    batch, counts = box.take()
    box.add(Alert("queue_dry", "2 days of posts left", channel="tg"))
    box.failed(batch, counts, now=100.0, backoff=5)
    assert [a.post_id for a in box.pending] == [1, None]
    assert not box.due(104.9) and box.due(105.0)
    batch, counts = box.take()
    box.failed(batch, counts, now=105.0, backoff=5)
    assert not box.due(114.9) and box.due(115.0)
    assert box.give_up() == (2, 2)
    assert not box.due(1e9)


def test_a_digest_counts_each_event_and_lists_the_first_few() -> None:
    box = Outbox(interval=60)
    for n in range(1, 1001):
        box.add(failure(n))
    box.add(Alert("channel_attention", "the token was revoked: run smm doctor", channel="tg-news"))
    title, body = compose(*box.take())
    assert title == "smm: 1,001 alerts"
    assert body.startswith("1,000 deliveries failed:\n- post 1 on vk-news: HTTP 500 from the network (try 1)\n")
    assert "- and 995 more\n\n1 channel needs attention:\n- tg-news: the token was revoked: run smm doctor" in body


def test_one_alert_is_its_own_message_with_its_link_and_no_line_breaks_or_tokens() -> None:
    alert = Alert(
        "delivery_unknown",
        "no answer in 30 s\nfrom https://api.telegram.org/bot123456:AAEabcdefghijklmnopqrstuvwxyz012/sendMessage",
        channel="tg-news",
        post_id=7,
        link="https://t.me/news/1",
    )
    title, body = compose([alert], {"delivery_unknown": 1})
    assert title == "smm: delivery in doubt"
    assert body == (
        "post 7 on tg-news: no answer in 30 s\\nfrom https://api.telegram.org/bot[REDACTED]/sendMessage "
        "https://t.me/news/1"
    )


def test_every_part_of_a_destination_url_that_could_be_a_secret_is_redacted() -> None:
    from scheduler.alerts import secret_url
    from scheduler.log import redact

    token = "7654321098:AAGxyzSecretPartOfTheBotToken123"
    secret_url(f"tgram://{token}/-1001234567890")
    secret_url("mailtos://ops.sender:an-app-password-42@smtp.example.com?to=ops@example.com")
    secret_url("json://hooks.example.com/services/T000/B000/k9webhookkeyq7")
    said = f"{token.split(':')[1]} 7654321098 an-app-password-42 k9webhookkeyq7"
    assert redact(said) == " ".join(["[REDACTED]"] * 4)
    assert redact("smtp.example.com hooks.example.com") == "smtp.example.com hooks.example.com"


def test_a_destination_file_others_can_read_is_warned_of_like_a_channels(tmp_path: Path) -> None:
    secret = tmp_path / "alerts-url"
    secret.write_text("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123\n")
    secret.chmod(0o644)
    config = load(tmp_path, '[[alerts.destinations]]\nurl_file = "alerts-url"\n')
    assert (
        f"{tmp_path / 'config.toml'}: alerts.destinations[0].url_file: {secret} is readable or writable by other "
        "users (mode 644): chmod 600 it" in config.warnings
    )
