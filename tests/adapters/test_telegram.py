"""The Telegram adapter driving the real python-telegram-bot against FakeTelegram over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.base import MediaFile, OutgoingPost
from adapters.errors import (
    AmbiguousError,
    AuthError,
    ContentRejected,
    NotSupported,
    PermanentError,
    PostTooOld,
    RateLimited,
    TransientError,
)
from adapters.telegram import TelegramAdapter, escape, scan_html, scan_markdown_v2
from tests.fakes.base import Fault
from tests.fakes.telegram import DEFAULT_TOKEN, FakeChat, FakeTelegram, error_body, make_jpeg, make_png

TOKEN = DEFAULT_TOKEN
CHANNEL = "@testchannel"
T = TypeVar("T")
# PTB's own RetryAfter constructor reads its deprecated int ``retry_after`` (PTB 22.2+); nothing we call.
pytestmark = pytest.mark.filterwarnings("ignore:.*attribute `retry_after`:DeprecationWarning")


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram()
    server.start()
    yield server
    server.stop()


def adapter(fake: FakeTelegram, chat: str | int = CHANNEL, **kwargs: Any) -> TelegramAdapter:
    return TelegramAdapter(TOKEN, chat, api_url=fake.url, **kwargs)


def run(tg: TelegramAdapter, action: Callable[[TelegramAdapter], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await action(tg)
        finally:
            await tg.aclose()

    return asyncio.run(main())


def publish(tg: TelegramAdapter, post: OutgoingPost) -> Any:
    return run(tg, lambda a: a.publish(post))


def failure(tg: TelegramAdapter, action: Callable[[TelegramAdapter], Awaitable[Any]]) -> Exception:
    with pytest.raises(Exception) as info:
        run(tg, action)
    assert TOKEN not in str(info.value)
    assert TOKEN.split(":")[1] not in str(info.value)
    return info.value


def photos(tmp_path: Path, count: int, kind: str = "png") -> tuple[MediaFile, ...]:
    items = []
    for i in range(count):
        data = make_png(4 + i, 3) if kind == "png" else make_jpeg(4 + i, 3)
        path = tmp_path / f"photo{i}.{kind}"
        path.write_bytes(data)
        items.append(MediaFile(path, f"image/{'png' if kind == 'png' else 'jpeg'}", len(data), 4 + i, 3))
    return tuple(items)


# -- publishing --------------------------------------------------------------------------------------------------


def test_text_post_is_one_message_and_the_bot_is_initialized_lazily(fake: FakeTelegram) -> None:
    tg = adapter(fake)
    assert fake.requests == []  # nothing happens before the first use

    async def twice(a: TelegramAdapter) -> list[Any]:
        return [await a.publish(OutgoingPost("Hello, channel")), await a.publish(OutgoingPost("Again"))]

    first, second = run(tg, twice)
    assert (first.remote_id, first.remote_url) == ("1", "https://t.me/testchannel/1")
    assert second.remote_id == "2"
    assert [r["text"] for r in fake.published] == ["Hello, channel", "Again"]
    assert fake.published[0]["method"] == "sendMessage"
    assert fake.published[0]["parse_mode"] is None
    assert fake.published[0]["link_preview_options"] is None
    assert len(fake.calls("getMe")) == 1


def test_link_is_appended_on_its_own_line_with_the_preview(fake: FakeTelegram) -> None:
    link = "https://example.com/a_b?x=1"
    publish(adapter(fake), OutgoingPost("Read this", link=link))
    record = fake.published[0]
    assert record["text"] == f"Read this\n{link}"
    assert record["link_preview_options"] == {"url": link}


def test_link_already_in_the_text_is_not_repeated(fake: FakeTelegram) -> None:
    link = "https://example.com/"
    publish(adapter(fake), OutgoingPost(f"See {link} now", link=link))
    assert fake.published[0]["text"] == f"See {link} now"
    assert fake.published[0]["link_preview_options"] == {"url": link}


@pytest.mark.parametrize(
    ("mode", "text", "expected"),
    [
        ("HTML", "<b>Sale</b>", "<b>Sale</b>\nhttps://example.com/?a=1&amp;b=2"),
        ("MarkdownV2", "*Sale*", "*Sale*\nhttps://example\\.com/?a\\=1&b\\=2"),
        (None, "", "https://example.com/?a=1&b=2"),
    ],
)
def test_link_is_escaped_for_the_parse_mode(fake: FakeTelegram, mode: str | None, text: str, expected: str) -> None:
    publish(adapter(fake, parse_mode=mode), OutgoingPost(text, link="https://example.com/?a=1&b=2"))
    assert fake.published[0]["text"] == expected
    assert fake.published[0]["parse_mode"] == mode


def test_one_photo_carries_the_caption(fake: FakeTelegram, tmp_path: Path) -> None:
    media = photos(tmp_path, 1, "jpeg")
    result = publish(adapter(fake), OutgoingPost("A photo", media=media))
    [record] = fake.published
    assert record["method"] == "sendPhoto"
    assert record["caption"] == "A photo"
    assert record["photo_bytes"] == [media[0].size]
    assert fake.calls("sendPhoto")[0].files["photo"].filename == "photo0.jpeg"
    assert result.remote_url == "https://t.me/testchannel/1"


def test_album_has_the_caption_on_its_first_item(fake: FakeTelegram, tmp_path: Path) -> None:
    media = photos(tmp_path, 3)
    result = publish(adapter(fake, parse_mode="HTML"), OutgoingPost("<i>Three</i>", media=media))
    assert [r["method"] for r in fake.published] == ["sendMediaGroup"] * 3
    assert [r["caption"] for r in fake.published] == ["<i>Three</i>", None, None]
    assert fake.published[0]["parse_mode"] == "HTML"
    assert len({r["media_group_id"] for r in fake.published}) == 1
    assert [r["photo_bytes"][0] for r in fake.published] == [m.size for m in media]
    assert result.remote_id == "1" and result.more_ids == ("2", "3")  # every message, for deleting the post


def test_publishing_reads_the_markup_off_the_event_loop(fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.telegram_markup as markup

    parsed_on: list[threading.Thread] = []
    real = markup.parse

    def recording(text: str, mode: str | None) -> markup.Parsed:
        parsed_on.append(threading.current_thread())
        return real(text, mode)

    monkeypatch.setattr(markup, "parse", recording)
    publish(adapter(fake, parse_mode="MarkdownV2"), OutgoingPost("[" * 5000 + "x" + "]" * 5000))
    assert fake.published[0]["text"].startswith("[[[")
    assert parsed_on and threading.main_thread() not in parsed_on


def test_a_short_text_is_read_on_the_event_loop(fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hop to a worker thread and back costs the loop more than reading an ordinary post's markup."""
    import adapters.telegram_markup as markup

    parsed_on: list[threading.Thread] = []
    real = markup.parse

    def recording(text: str, mode: str | None) -> markup.Parsed:
        parsed_on.append(threading.current_thread())
        return real(text, mode)

    monkeypatch.setattr(markup, "parse", recording)
    publish(adapter(fake, parse_mode="MarkdownV2"), OutgoingPost("*bold* " * 200))
    assert parsed_on and set(parsed_on) == {threading.main_thread()}


def test_long_text_with_photos_is_split_into_album_then_message(fake: FakeTelegram, tmp_path: Path) -> None:
    text = "word " * 300  # 1500 characters: over the 1024 caption limit
    result = publish(adapter(fake), OutgoingPost(text, link="https://example.com/", media=photos(tmp_path, 2)))
    assert [r["method"] for r in fake.published] == ["sendMediaGroup", "sendMediaGroup", "sendMessage"]
    assert fake.published[0]["caption"] is None
    assert fake.published[2]["text"] == text + "\nhttps://example.com/"
    assert fake.published[2]["link_preview_options"] == {"url": "https://example.com/"}
    assert result.remote_id == "1" and result.more_ids == ("2", "3")


def test_caption_limit_counts_visible_characters(fake: FakeTelegram, tmp_path: Path) -> None:
    text = "<b>" + "x" * 1000 + "</b>"  # 1007 characters of markup, 1000 visible: fits a caption
    publish(adapter(fake, parse_mode="HTML"), OutgoingPost(text, media=photos(tmp_path, 1)))
    assert [r["method"] for r in fake.published] == ["sendPhoto"]


@pytest.mark.parametrize(
    "fault",
    [Fault.respond(400, error_body(400, "Bad Request: can't parse entities")), Fault.drop_after()],
)
def test_failure_after_the_album_is_ambiguous_and_says_what_was_published(
    fake: FakeTelegram, tmp_path: Path, fault: Fault
) -> None:
    fake.inject("sendMessage", fault)
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("y" * 1500, media=photos(tmp_path, 2))))
    assert type(exc) is AmbiguousError
    assert "message 1 (https://t.me/testchannel/1)" in str(exc)
    assert "the text message failed" in str(exc)
    assert len(fake.calls("sendMediaGroup")) == 1


def test_chat_migration_is_followed_and_remembered(fake: FakeTelegram) -> None:
    fake.add_chat(-555, type="group", title="Old group", bot_status="member")
    fake.migrate_chat(-555, -1000555)
    tg = adapter(fake, chat=-555)

    async def twice(a: TelegramAdapter) -> list[Any]:
        return [await a.publish(OutgoingPost("one")), await a.publish(OutgoingPost("two"))]

    first, second = run(tg, twice)
    assert tg.chat_id == -1000555
    assert any("chat_id = -1000555" in warning for warning in first.warnings)
    assert second.warnings == ()
    assert [r["chat_id"] for r in fake.published] == [-1000555, -1000555]
    assert len(fake.calls("sendMessage")) == 3  # one refused with migrate_to_chat_id, then two
    assert tg.rate_limits()[0].scope == "telegram-chat:-1000555"


# -- errors ------------------------------------------------------------------------------------------------------


def respond(status: int, description: str, **parameters: Any) -> Fault:
    return Fault.respond(status, error_body(status, description, **parameters))


ERROR_CASES = [
    ("sendMessage", respond(429, "Too Many Requests: retry after 7", retry_after=7), RateLimited, "retry in 7"),
    ("sendMessage", respond(400, "Bad Request: chat not found"), AuthError, "as an admin"),
    ("sendMessage", respond(400, "Bad Request: need administrator rights in the channel chat"), AuthError, "admin"),
    ("sendMessage", respond(400, "Bad Request: message is too long"), ContentRejected, "too long"),
    ("sendMessage", respond(400, "Bad Request: can't parse entities: unsupported start tag"), ContentRejected, "parse"),
    ("sendPhoto", respond(400, "Bad Request: PHOTO_INVALID_DIMENSIONS"), ContentRejected, "Photo_invalid_dimensions"),
    ("sendPhoto", respond(400, "Bad Request: wrong file identifier/HTTP URL specified"), TransientError, "fetch"),
    ("sendPhoto", respond(400, "Bad Request: failed to get HTTP URL content"), TransientError, "fetch"),
    ("sendMessage", respond(400, "Bad Request: something new"), PermanentError, "Something new"),
    ("sendMessage", respond(403, "Forbidden: bot is not a member of the channel chat"), AuthError, "not an admin"),
    ("sendMessage", respond(401, "Unauthorized"), AuthError, "@BotFather"),
    ("sendMessage", respond(500, "Internal Server Error"), TransientError, "HTTP 500"),
    ("sendMessage", Fault.respond(502, b"<html>Bad Gateway</html>"), TransientError, "HTTP 502"),
    ("sendMessage", Fault.respond(504, b"<html>Gateway Timeout</html>"), AmbiguousError, "504"),
    ("sendMessage", Fault.drop_after(), AmbiguousError, "may have been posted"),
    ("sendMessage", Fault.drop_before(), AmbiguousError, "may have been posted"),
    ("sendMessage", Fault.delay(0.6), AmbiguousError, "did not answer in time"),
    ("getMe", respond(500, "Internal Server Error"), TransientError, "HTTP 500"),
    ("getMe", Fault.drop_after(), TransientError, "retry later"),
]


@pytest.mark.parametrize(("method", "fault", "expected", "fragment"), ERROR_CASES)
def test_error_mapping(
    fake: FakeTelegram, tmp_path: Path, method: str, fault: Fault, expected: type, fragment: str
) -> None:
    fake.inject(method, fault)
    post = OutgoingPost("text", media=photos(tmp_path, 1) if method == "sendPhoto" else ())
    exc = failure(adapter(fake, timeout=0.3), lambda a: a.publish(post))
    assert type(exc) is expected, exc
    assert fragment in str(exc)
    if isinstance(exc, RateLimited):
        assert exc.retry_after == 7


def test_revoked_token_is_an_auth_error_without_the_token(fake: FakeTelegram) -> None:
    fake.revoke_token()
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("text")))
    assert type(exc) is AuthError
    assert "create a new one with @BotFather" in str(exc)
    assert TOKEN in str(exc.__cause__)  # PTB's own message carries it: the reason we never reuse it


def test_flood_limits_of_the_fake_surface_as_rate_limited(fake: FakeTelegram) -> None:
    fake.limits = True

    async def burst(a: TelegramAdapter) -> None:
        for i in range(21):  # a channel takes 20 messages a minute
            await a.publish(OutgoingPost(f"message {i}"))

    exc = failure(adapter(fake), burst)
    assert type(exc) is RateLimited
    assert exc.retry_after is not None and 50 <= exc.retry_after <= 60
    assert len(fake.published) == 20


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_transient() -> None:
    tg = TelegramAdapter(TOKEN, CHANNEL, api_url=f"http://127.0.0.1:{closed_port()}", timeout=0.5)
    exc = failure(tg, lambda a: a.publish(OutgoingPost("text")))
    assert type(exc) is TransientError
    assert "could not connect" in str(exc)


def test_connect_timeout_is_transient() -> None:
    # A listener whose accept queue is full leaves new connections hanging in SYN: a connect timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            tg = TelegramAdapter(TOKEN, CHANNEL, api_url=f"http://127.0.0.1:{port}", timeout=0.3)
            exc = failure(tg, lambda a: a.publish(OutgoingPost("text")))
        finally:
            for filler in fillers:
                filler.close()
    assert type(exc) is TransientError
    assert "ConnectTimeout" in str(exc)


def test_pool_timeout_is_transient_and_an_injected_request_stays_open(fake: FakeTelegram) -> None:
    from telegram.request import HTTPXRequest

    request = HTTPXRequest(connection_pool_size=1, pool_timeout=0.1, read_timeout=2.0)
    fake.inject("sendMessage", Fault.delay(0.5))
    tg = adapter(fake, request=request)

    async def scenario() -> list[Any]:
        await tg.check()  # initialized, so both publishes go straight to sendMessage
        slow = asyncio.create_task(tg.publish(OutgoingPost("slow")))
        await asyncio.sleep(0.1)
        starved = await asyncio.gather(tg.publish(OutgoingPost("starved")), return_exceptions=True)
        results = [await slow, *starved]
        await tg.aclose()
        code, _ = await request.do_request(f"{fake.url}/bot{TOKEN}/getMe", "POST")  # still usable: caller's
        await request.shutdown()
        return [*results, code]

    slow, starved, code = asyncio.run(scenario())
    assert slow.remote_id == "1"
    assert type(starved) is TransientError
    assert "PoolTimeout" in str(starved)
    assert TOKEN not in str(starved)
    assert [r["text"] for r in fake.published] == ["slow"]
    assert code == 200


# -- check() -----------------------------------------------------------------------------------------------------


def test_check_ok(fake: FakeTelegram) -> None:
    assert run(adapter(fake), lambda a: a.check()) == "bot @smm_test_bot can post in @testchannel"
    assert fake.calls("getChatMember")[0].params["user_id"] == "123456"


@pytest.mark.parametrize(
    ("chat", "fragment"),
    [
        (FakeChat(-1001, "members", bot_status="member"), "add @smm_test_bot to @members as an admin"),
        (FakeChat(-1002, "muted", can_post=False), "'Post messages'"),
        (FakeChat(-1003, "banned", bot_status="kicked"), "was kicked from the channel chat"),
        (FakeChat(-1004, None, bot_status="left"), "does not know chat -1004"),
        (FakeChat(-1005, "gone", bot_status="left"), "it is left"),
    ],
)
def test_check_fails_with_the_fix(fake: FakeTelegram, chat: FakeChat, fragment: str) -> None:
    fake.chats.append(chat)
    exc = failure(adapter(fake, chat=chat.id), lambda a: a.check())
    assert type(exc) is AuthError
    assert fragment in str(exc)


def test_check_with_a_revoked_token(fake: FakeTelegram) -> None:
    fake.revoke_token(TOKEN)
    exc = failure(adapter(fake), lambda a: a.check())
    assert type(exc) is AuthError
    assert "@BotFather" in str(exc)


def test_rate_limits_never_contain_the_token(fake: FakeTelegram) -> None:
    tg = adapter(fake)
    chat, bot = tg.rate_limits()
    assert (chat.scope, chat.rate, chat.per) == ("telegram-chat:@testchannel", 20, 60)
    assert bot.scope.startswith("telegram-bot:") and len(bot.scope) == len("telegram-bot:") + 12
    assert (bot.rate, bot.per) == (30, 1)
    assert TOKEN not in bot.scope and "TEST-TOKEN" not in bot.scope
    assert tg.lease_group == bot.scope
    assert adapter(fake, chat="@other").lease_group == bot.scope  # channels of one bot share its limit


# -- markup ------------------------------------------------------------------------------------------------------


def test_the_markup_check_is_the_tokenizers() -> None:
    # The full table of cases, each justified by tdlib's code, is tests/unit/test_telegram_markup.py.
    assert scan_html("<a href=https://x.org/>x</a>")[1] == [
        'the value of href in <a> at line 1, column 1 must be quoted: href="..."'
    ]
    assert scan_markdown_v2("![x](tg://time?unix=1647531900)") == ("x", [])
    assert TelegramAdapter.visible_length("<b>😀</b> \n", {"parse_mode": "HTML"}) == 1


@pytest.mark.parametrize("mode", ["HTML", "MarkdownV2", None])
@pytest.mark.parametrize("text", ["a < b & c > d", "1. *not bold* _x_ [y](z) #tag {a} |b| ~c~ `d` \\ e!", "😀 → x"])
def test_escape_round_trips(mode: str | None, text: str) -> None:
    escaped = escape(text, mode)
    problems = TelegramAdapter.extra_problems(OutgoingPost(escaped), {"parse_mode": mode})
    assert problems == []
    assert TelegramAdapter.visible_length(escaped, {"parse_mode": mode}) == len(text)


def test_lengths_count_what_telegram_counts(fake: FakeTelegram, tmp_path: Path) -> None:
    # tdlib checks utf8_length (code points) of the cleaned, trimmed text against 4096 and 1024.
    assert TelegramAdapter.validate(OutgoingPost("😀" * 4096), {}) == []
    publish(adapter(fake), OutgoingPost("😀" * 4096))
    assert fake.published[0]["text"] == "😀" * 4096
    assert TelegramAdapter.validate(OutgoingPost("x" * 4096 + " \n\r\n "), {}) == []
    caption = OutgoingPost("😀" * 1024, media=photos(tmp_path, 1))
    assert [call.split(":")[0] for call in TelegramAdapter.preview(caption)] == ["sendPhoto to the chat"]
    assert "caption of 1024 characters" in TelegramAdapter.preview(caption)[0]


def test_a_text_over_the_bot_apis_byte_limit_is_refused_though_it_shows_little() -> None:
    # telegram-bot-api Client::get_formatted_text: "Text is too long" over 1 << 15 bytes as written.
    options = {"parse_mode": "HTML"}
    assert TelegramAdapter.validate(OutgoingPost("<b></b>" * 4681 + "x"), options) == []  # 32768 bytes
    problems = TelegramAdapter.validate(OutgoingPost("<b></b>" * 4682 + "x"), options)
    assert [p.message for p in problems] == [
        "the text is 32775 bytes long as written (UTF-8, markup included); telegram reads at most 32768"
    ]


def test_a_message_that_shows_nothing_is_refused_but_an_empty_caption_is_not(tmp_path: Path) -> None:
    options = {"parse_mode": "HTML"}
    assert [p.message for p in TelegramAdapter.validate(OutgoingPost("<b> </b>"), options)] == [
        "the text shows nothing once telegram removes its markup and the spaces around it"
    ]
    assert TelegramAdapter.validate(OutgoingPost("<b> </b>", media=photos(tmp_path, 1)), options) == []
    assert TelegramAdapter.validate(OutgoingPost("<b> </b>", link="https://x.org/"), options) == []


def test_validate_reports_markup_problems_and_accepts_long_captions(tmp_path: Path) -> None:
    media = photos(tmp_path, 1)
    bad = TelegramAdapter.validate(OutgoingPost("<b>x", media=media), {"parse_mode": "HTML"})
    assert [p.message for p in bad] == ["HTML: <b> opened at line 1, column 1 is never closed"]
    assert TelegramAdapter.validate(OutgoingPost("x" * 3000, media=media), {}) == []  # split, not rejected
    too_long = TelegramAdapter.validate(OutgoingPost("😀" * 4097), {})
    assert [p.message for p in too_long] == ["the text is 4097 characters long; telegram allows 4096"]
    many = TelegramAdapter.validate(OutgoingPost("." * 9), {"parse_mode": "MarkdownV2"})
    assert len(many) == 6 and "and 4 more" in many[-1].message
    assert TelegramAdapter.validate(OutgoingPost("x"), {"parse_mode": "Markdown"})[0].message.startswith(
        "unknown Telegram parse_mode 'Markdown'"
    )
    with pytest.raises(ValueError, match="parse_mode"):
        TelegramAdapter(TOKEN, CHANNEL, parse_mode="markdown")


@pytest.mark.parametrize("module", ["adapters.telegram", "adapters.telegram_markup"])
def test_importing_the_adapter_does_not_import_the_client_library(module: str) -> None:
    code = (
        f"import sys, {module};"
        "assert not {'telegram', 'httpx', 'vk_api', 'requests'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_markup_helpers_stay_importable_from_the_adapter_module() -> None:
    import adapters.telegram as adapter
    import adapters.telegram_markup as markup

    for name in ("escape", "normalize_parse_mode", "scan_html", "scan_markdown_v2", "HTML_TAGS", "PARSE_MODES"):
        assert getattr(adapter, name) is getattr(markup, name)
    assert markup.visible_length("<b>hi</b> &amp;", "HTML") == len("hi &")
    problems = markup.markup_problems("<b>open", None, "HTML", 4096)
    assert problems == ["HTML: <b> opened at line 1, column 1 is never closed"]


# -- after publishing: results, audience, comments, deletion --------------------------------------------------------


def test_post_results_and_comments_are_unsupported_with_the_reason(fake: FakeTelegram) -> None:
    since = datetime.now(UTC)
    results = failure(adapter(fake), lambda a: a.read_results("1"))
    comments = failure(adapter(fake), lambda a: a.read_comments("1", since))
    assert type(results) is NotSupported and "no view, reaction or forward counts" in str(results)
    assert type(comments) is NotSupported and "cannot read a chat's history" in str(comments)
    assert str(results) == TelegramAdapter.unsupported["results"]  # what smm doctor prints
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == []


def test_audience_is_the_chats_member_count(fake: FakeTelegram) -> None:
    fake.chat(CHANNEL).members = 1234
    assert run(adapter(fake), lambda a: a.read_audience()) == 1234
    assert fake.calls("getChatMemberCount")[0].params["chat_id"] == CHANNEL


def test_audience_of_a_chat_the_bot_was_removed_from(fake: FakeTelegram) -> None:
    fake.chat(CHANNEL).bot_status = "kicked"
    assert type(failure(adapter(fake), lambda a: a.read_audience())) is AuthError


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.respond(500, error_body(500, "Internal Server Error")), TransientError),
        (Fault.respond(429, error_body(429, "Too Many Requests: retry after 3", retry_after=3)), RateLimited),
        (Fault.respond(401, error_body(401, "Unauthorized")), AuthError),
    ],
)
def test_audience_errors_are_mapped(fake: FakeTelegram, fault: Fault, expected: type) -> None:
    fake.inject("getChatMemberCount", fault)
    assert type(failure(adapter(fake), lambda a: a.read_audience())) is expected


def test_delete_within_48_hours(fake: FakeTelegram) -> None:
    result = publish(adapter(fake), OutgoingPost("a sale that ended"))
    assert result.more_ids == ()  # a post of one message
    now = datetime.now(UTC)
    run(adapter(fake), lambda a: a.delete_post(result.remote_id, now - timedelta(hours=47), now))
    assert fake.published[0]["deleted"]
    assert len(fake.calls("deleteMessage")) == 1 and fake.calls("deleteMessages") == []


def album_and_text(fake: FakeTelegram, tmp_path: Path) -> Any:
    """An album of 3 photos and a text too long for their caption: four messages."""
    result = publish(adapter(fake), OutgoingPost("word " * 300, media=photos(tmp_path, 3)))
    assert [r["method"] for r in fake.published] == ["sendMediaGroup"] * 3 + ["sendMessage"]
    assert (result.remote_id, result.more_ids) == ("1", ("2", "3", "4"))
    return result


def test_every_message_of_a_post_is_deleted_in_one_request(fake: FakeTelegram, tmp_path: Path) -> None:
    result = album_and_text(fake, tmp_path)
    now = datetime.now(UTC)
    run(adapter(fake), lambda a: a.delete_post(result.remote_id, now, now, result.more_ids))
    assert [r["deleted"] for r in fake.published] == [True] * 4
    (call,) = fake.calls("deleteMessages")
    assert call.params["message_ids"] == "[1, 2, 3, 4]" and fake.calls("deleteMessage") == []


def test_deleting_a_post_skips_its_messages_already_gone(fake: FakeTelegram, tmp_path: Path) -> None:
    result = album_and_text(fake, tmp_path)
    fake.published[0]["deleted"] = fake.published[3]["deleted"] = True  # deleted by hand in the app
    now = datetime.now(UTC)
    run(adapter(fake), lambda a: a.delete_post(result.remote_id, now, now, result.more_ids))
    assert [r["deleted"] for r in fake.published] == [True] * 4
    # All gone already (a repeat after an unclear answer): Telegram skips them all and answers True.
    run(adapter(fake), lambda a: a.delete_post(result.remote_id, now, now, result.more_ids))
    assert len(fake.calls("deleteMessages")) == 2


def test_one_message_that_may_not_be_deleted_keeps_the_whole_post(fake: FakeTelegram, tmp_path: Path) -> None:
    result = album_and_text(fake, tmp_path)
    fake.published[3]["time"] -= 48 * 3600  # Telegram's 48 hours count for each message
    now = datetime.now(UTC)
    exc = failure(adapter(fake), lambda a: a.delete_post(result.remote_id, now, now, result.more_ids))
    assert isinstance(exc, PermanentError) and "can't be deleted" in str(exc)
    assert [r["deleted"] for r in fake.published] == [False] * 4  # checked first, none deleted
    fake.published[3]["time"] += 48 * 3600
    fake.chat(CHANNEL).can_post = fake.chat(CHANNEL).can_delete = False
    exc = failure(adapter(fake), lambda a: a.delete_post(result.remote_id, now, now, result.more_ids))
    assert isinstance(exc, PermanentError) and [r["deleted"] for r in fake.published] == [False] * 4


def test_a_post_past_48_hours_is_refused_naming_its_messages(fake: FakeTelegram) -> None:
    now = datetime.now(UTC)
    exc = failure(adapter(fake), lambda a: a.delete_post("7", now - timedelta(hours=50), now, ("8", "9")))
    assert type(exc) is PostTooOld and "messages 7, 8, 9 in @testchannel were posted 50 hours ago" in str(exc)
    assert fake.requests == []


def test_deleting_several_messages_without_an_answer_is_ambiguous(fake: FakeTelegram, tmp_path: Path) -> None:
    result = album_and_text(fake, tmp_path)
    fake.inject("deleteMessages", Fault.delay(0.6))
    now = datetime.now(UTC)
    exc = failure(adapter(fake, timeout=0.3), lambda a: a.delete_post(result.remote_id, now, now, result.more_ids))
    assert type(exc) is AmbiguousError and "messages 1, 2, 3, 4 may be deleted" in str(exc)


@pytest.mark.parametrize(
    ("ids", "description"),
    [
        (None, "message identifiers are not specified"),
        ("[]", "message identifiers are not specified"),
        ("[1, 0]", "invalid message identifier specified"),
        ("[1.5]", "can't parse message identifier as a Number"),
        ("[true]", "message identifier must be a Number"),
        ("{}", "expected an Array of message identifiers"),
        (json.dumps(list(range(1, 102))), "too many message identifiers specified"),
    ],
)
def test_the_fake_refuses_delete_messages_as_the_bot_api_does(
    fake: FakeTelegram, ids: str | None, description: str
) -> None:
    import httpx

    data = {"chat_id": CHANNEL} | ({"message_ids": ids} if ids is not None else {})
    answer = httpx.post(f"{fake.url}/bot{TOKEN}/deleteMessages", data=data).json()
    assert answer == {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}
    ok = httpx.post(f"{fake.url}/bot{TOKEN}/deleteMessages", data={"chat_id": CHANNEL, "message_ids": '[5, "6"]'})
    assert ok.json() == {"ok": True, "result": True}  # none of them exists: skipped


def test_delete_of_a_message_already_gone_succeeds(fake: FakeTelegram) -> None:
    message_id = publish(adapter(fake), OutgoingPost("gone")).remote_id
    fake.published[0]["deleted"] = True
    now = datetime.now(UTC)
    run(adapter(fake), lambda a: a.delete_post(message_id, now, now))
    assert len(fake.calls("deleteMessage")) == 1


def test_delete_past_48_hours_is_refused_before_any_request(fake: FakeTelegram) -> None:
    now = datetime.now(UTC)
    exc = failure(adapter(fake), lambda a: a.delete_post("7", now - timedelta(hours=48), now))
    assert type(exc) is PostTooOld and isinstance(exc, PermanentError)
    assert "only within 48 hours" in str(exc) and "posted 48 hours ago" in str(exc)
    assert fake.requests == []
    assert TelegramAdapter.capabilities.delete_window == 48 * 3600


def test_delete_the_network_refuses_is_permanent(fake: FakeTelegram) -> None:
    message_id = publish(adapter(fake), OutgoingPost("kept")).remote_id
    fake.chat(CHANNEL).can_post = fake.chat(CHANNEL).can_delete = False  # neither right deleteMessage needs
    now = datetime.now(UTC)
    exc = failure(adapter(fake), lambda a: a.delete_post(message_id, now, now))
    assert isinstance(exc, PermanentError) and "can't be deleted" in str(exc)
    assert not fake.published[0]["deleted"]


def test_an_admin_who_may_delete_messages_deletes_without_the_right_to_post(fake: FakeTelegram) -> None:
    message_id = publish(adapter(fake), OutgoingPost("taken down")).remote_id
    fake.chat(CHANNEL).can_post = False  # can_delete_messages lets it delete any message of the channel
    now = datetime.now(UTC)
    asyncio.run(adapter(fake).delete_post(message_id, now, now))
    assert fake.published[0]["deleted"]


def test_a_delete_without_an_answer_is_ambiguous(fake: FakeTelegram) -> None:
    message_id = publish(adapter(fake), OutgoingPost("slow")).remote_id
    fake.inject("deleteMessage", Fault.delay(0.6))
    now = datetime.now(UTC)
    exc = failure(adapter(fake, timeout=0.3), lambda a: a.delete_post(message_id, now, now))
    assert type(exc) is AmbiguousError and "may be deleted" in str(exc)


# -- comments from the bot's updates (read_comments = true) --------------------------------------------------------


def with_discussion_group(fake: FakeTelegram) -> int:
    group = fake.add_chat(-1009876543210, None, title="Private chat", type="supergroup", bot_status="administrator")
    group.linked_chat_id = fake.chats[0].id
    fake.chats[0].linked_chat_id = group.id
    return group.id


def test_comments_come_from_the_updates_confirmed_at_the_next_poll_and_shared_by_the_posts(fake: FakeTelegram) -> None:
    from adapters.telegram.updates import MIN_POLL, CommentUpdates

    group = with_discussion_group(fake)
    clock = [0.0]
    updates = CommentUpdates(monotonic=lambda: clock[0])
    tg = adapter(fake, comments=updates)
    first_post, second_post = 7, 8
    forward = fake.forward_to_discussion(CHANNEL, first_post)
    fake.forward_to_discussion(CHANNEL, second_post)
    hello = fake.comment(group, forward, "Ivan Petrov", "hello")
    since = datetime.now(UTC) - timedelta(minutes=1)

    async def reads(a: TelegramAdapter) -> list[list[str]]:
        texts = [[c.text for c in await a.read_comments(str(post), since)] for post in (first_post, second_post)]
        fake.comment(group, forward, "Olga", "a reply", reply_to=hello)
        texts.append([c.text for c in await a.read_comments(str(first_post), since)])  # within MIN_POLL: no poll
        clock[0] += MIN_POLL
        texts.append([c.text for c in await a.read_comments(str(first_post), since)])
        return texts

    assert run(tg, reads) == [["hello"], [], ["hello"], ["hello", "a reply"]]
    polls = fake.calls("getUpdates")
    # Two forwards and a comment (updates 700000001-3) came with the first poll: the second asks from the next one.
    assert [p.params.get("offset") for p in polls] == [None, "700000004"]
    assert fake.updates[0]["message"]["text"] == "a reply"  # the first poll's updates were confirmed by the second


def test_comments_are_not_supported_unless_the_channel_asks_for_them(fake: FakeTelegram) -> None:
    error = failure(adapter(fake), lambda a: a.read_comments("7", datetime.now(UTC)))
    assert isinstance(error, NotSupported) and "read_comments = true" in str(error)
    assert fake.calls("getUpdates") == []


def test_comments_of_a_channel_without_a_discussion_group_are_not_supported(fake: FakeTelegram) -> None:
    from adapters.telegram.updates import CommentUpdates

    error = failure(adapter(fake, comments=CommentUpdates()), lambda a: a.read_comments("7", datetime.now(UTC)))
    assert isinstance(error, NotSupported) and "no discussion group is linked" in str(error)
