"""Markup built to make the Telegram check slow (issue 22.5): it stays linear in the length of the text.

The old MarkdownV2 check looked through every open entity at each reserved character, and the HTML check counted
the lines before every token: ``"[" * n + "]" * n`` took 18.7 s at 16,000 characters and ``smm add`` 67 s. Times
are CPU times of this process, so that other work on the machine does not make the tests flaky.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import OutgoingPost
from adapters.telegram import TelegramAdapter
from adapters.telegram_markup import parse
from scheduler import store
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.intake import NewPost, add_post
from scheduler.publisher import Publisher
from scheduler.ratelimit import Limiter
from tests.conftest import run_cli, write_config
from tests.fakes.adapter import FakeAdapter

N = 32 * 1024  # every text below is about 64k characters
BUDGET = 0.5
LINEAR = 15
"""How many times a benign text of the same length an adversarial one may take (about 5 here: quadratic work over
64k characters takes thousands). The budget grows with it when the machine is so busy that even the benign text is
slow: CPU time, too, stretches when every core is shared."""
BENIGN = {
    "HTML": "<b>bold</b> and <i>it</i>, " * (2 * N // 26),
    "MarkdownV2": "*bold* and _it_, " * (2 * N // 17),
}

ADVERSARIAL = {
    "brackets": ("[" * N + "]" * N, "MarkdownV2"),
    "open links": ("[" * 2 * N, "MarkdownV2"),
    "links without an end": ("[a](" * (N // 2), "MarkdownV2"),
    "bold and italic": ("*_" * N, "MarkdownV2"),
    "underline and italic": ("_" * 2 * N, "MarkdownV2"),
    "spoilers": ("||" * N, "MarkdownV2"),
    "custom emoji": ("![" * N, "MarkdownV2"),
    "backticks": ("`" * 2 * N, "MarkdownV2"),
    "pre languages": ("```a" * (N // 2), "MarkdownV2"),
    "quote markers": (">" * 2 * N, "MarkdownV2"),
    "quote lines": ("**>a||\n" * (N // 4), "MarkdownV2"),
    "unescaped dots": ("." * 2 * N, "MarkdownV2"),
    "unescaped dots on many lines": (".\n" * N, "MarkdownV2"),
    "backslashes": ("\\" * 2 * N, "MarkdownV2"),
    "deep nesting": ("<b>" * (N // 4) + "x" + "</b>" * (N // 4), "HTML"),
    "deep nesting never closed": ("<b><i>" * (N // 3), "HTML"),
    "overlapping at the end": ("<b><i>" * (N // 3) + "</b>", "HTML"),
    "bare less-than signs": ("<" * 2 * N, "HTML"),
    "bare less-than signs on many lines": ("<\n" * N, "HTML"),
    "a tag that never ends": ("<b" * N, "HTML"),
    "references": ("&amp;" * (N // 2), "HTML"),
    "long numeric references": ("&#" + "1" * (2 * N), "HTML"),
    "letters after an ampersand": ("&" + "a" * (2 * N), "HTML"),
    "a long attribute": ('<a href="' + "&amp;" * (N // 2) + '">x</a>', "HTML"),
    "many attributes": ("<b" + " x=y" * (N // 2) + ">x</b>", "HTML"),
    "a long tg-time": ('<tg-time unix="' + "9" * (2 * N) + '">x</tg-time>', "HTML"),
}


@pytest.mark.parametrize(("text", "mode"), ADVERSARIAL.values(), ids=list(ADVERSARIAL))
def test_checking_64k_characters_of_adversarial_markup_is_fast(text: str, mode: str) -> None:
    def cpu(text: str) -> float:
        return min(cpu_once(text) for _ in range(2))

    def cpu_once(text: str) -> float:
        # A full collection of the whole suite's heap that happens to fall inside the check took 0.5 s in CI and
        # failed this test; the collector's timing says nothing about the parser's growth, so it is kept out.
        parse.cache_clear()
        gc.disable()
        try:
            started = time.process_time()
            TelegramAdapter.validate(OutgoingPost(text), {"parse_mode": mode})
            return time.process_time() - started
        finally:
            gc.enable()

    benign = cpu(BENIGN[mode])
    assert cpu(text) < max(BUDGET, LINEAR * benign)


def test_smm_add_of_16k_characters_of_nested_links_is_fast(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMM_TG_TOKEN", "123456:TEST-TOKEN-not-real")
    channel = '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@dos_test"\ntoken_env = "SMM_TG_TOKEN"\n'
    config = write_config(tmp_path / "config.toml", sqlite_url, channel + 'parse_mode = "MarkdownV2"\n', outbox=False)
    text = "[" * 8000 + "x" + "]" * 8000
    started = time.process_time()
    result = run_cli("add", text, config=config)
    assert time.process_time() - started < 2 * BUDGET + 1
    assert result.code == 0, result


def test_the_publisher_renders_a_post_off_the_event_loop(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering reads markup (UTM tagging, hashtags that must fit): a worker thread does it, not the daemon's loop,
    so that a heavy text on one channel never holds up a post on another."""
    import adapters.telegram_markup as markup

    monkeypatch.setenv("SMM_TG_TOKEN", "123456:TEST-TOKEN-not-real")
    body = '[[channels]]\nname = "tg"\nnetwork = "telegram"\nchat_id = "@dos_test"\ntoken_env = "SMM_TG_TOKEN"\n'
    body += 'parse_mode = "MarkdownV2"\nhashtags = ["#one", "#two"]\n'
    config = load_config(write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False))
    db = Database(config.database_url)
    db.check_schema()
    now = datetime(2026, 12, 1, 7, tzinfo=UTC)
    add_post(config, db, NewPost(text="[" * 5000 + "x" + "]" * 5000, channels=["tg"], now=True), now)
    with db.write() as session:
        claim = store.claim(session, "tg", now, "me", timedelta(minutes=5))
    assert claim is not None

    async def db_call(fn: Any, *args: Any) -> Any:
        with db.write() as session:
            return fn(session, *args)

    parsed_on: list[threading.Thread] = []
    real = markup.parse

    def recording(text: str, mode: str | None) -> markup.Parsed:
        parsed_on.append(threading.current_thread())
        return real(text, mode)

    monkeypatch.setattr(markup, "parse", recording)
    adapter = FakeAdapter()
    publisher = Publisher(config, db_call, Limiter(), lambda: now, lambda: 1000.0)
    try:
        assert asyncio.run(publisher.publish(claim, adapter, config.channel("tg")))
    finally:
        db.dispose()
    assert adapter.published[0].text.endswith("\\#one \\#two")
    assert parsed_on and threading.main_thread() not in parsed_on
