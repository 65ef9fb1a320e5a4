"""Issue 22, item 3: a server that answers one byte at a time must not hold a publish beyond the channel's timeout.

Each network's adapter runs its real client library (vk_api over requests in a thread, httpx, python-telegram-bot)
against its fake, which applies the request and then drips the answer one byte every 0.2 s: read by read, each
client would wait for ever. Every call must end within the channel's ``timeout`` plus a small margin, and the
outcome must say what is known: the publishing request was applied, so it is ambiguous (reconcile, never resend
blindly); a request that cannot publish (an upload, the bot's getMe) is transient; a deadline that passes before
anything was written is transient.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import requests

from adapters.base import MediaFile, OutgoingPost
from adapters.errors import AmbiguousError, PublishError, TransientError
from adapters.facebook import FacebookAdapter
from adapters.http import build_client
from adapters.ok import OkAdapter
from adapters.telegram import TelegramAdapter
from adapters.vk import VkAdapter, build_session
from tests.fakes.base import FakeServer, Fault
from tests.fakes.facebook import FakeFacebook
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import DEFAULT_TOKEN as TG_TOKEN
from tests.fakes.telegram import FakeTelegram, make_jpeg
from tests.fakes.vk import USER_TOKEN as VK_TOKEN
from tests.fakes.vk import FakeVk

TIMEOUT = 1.0
#: How late a call may end after its deadline: thread hand-offs and closing the connection.
MARGIN = 0.5
DRIP = Fault.drip(0.2, limit=8.0)
PAGE, FB_TOKEN = "1000000001", "EAAB-page-token-not-real"
T = TypeVar("T")


@pytest.fixture
def photo(tmp_path: Path) -> MediaFile:
    data = make_jpeg(8, 6)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    return MediaFile(path, "image/jpeg", len(data), 8, 6)


def timed(action: Callable[[], Awaitable[Any]]) -> tuple[PublishError, float]:
    """The error ``action`` ends with, and how long it took."""
    started = time.monotonic()
    with pytest.raises(PublishError) as info:
        asyncio.run(action())  # type: ignore[arg-type]
    return info.value, time.monotonic() - started


def started(fake: FakeServer) -> Iterator[Any]:
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def vk() -> Iterator[FakeVk]:
    yield from started(FakeVk())


@pytest.fixture
def fb() -> Iterator[FakeFacebook]:
    yield from started(FakeFacebook(PAGE, FB_TOKEN))


@pytest.fixture
def ok() -> Iterator[FakeOk]:
    yield from started(FakeOk())


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from started(FakeTelegram())


# -- VK: vk_api and requests, in a thread -------------------------------------------------------------------------


def vk_publish(fake: FakeVk, post: OutgoingPost) -> Callable[[], Awaitable[Any]]:
    async def go() -> Any:
        adapter = VkAdapter(VK_TOKEN, 45, api_url=fake.url, timeout=TIMEOUT, rps_delay=0)
        try:
            return await adapter.publish(post)
        finally:
            await adapter.aclose()

    return go


def test_vk_wall_post_answered_byte_by_byte_is_ambiguous_within_the_timeout(vk: FakeVk) -> None:
    vk.inject("wall.post", DRIP)
    exc, took = timed(vk_publish(vk, OutgoingPost("slow answer", key="k1")))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is AmbiguousError and "did not answer wall.post in time" in str(exc)
    assert [p["message"] for p in vk.published] == ["slow answer"]  # applied: reconciling will find it


@pytest.mark.parametrize("step", ["photos.getWallUploadServer", "upload", "photos.saveWallPhoto"])
def test_vk_photo_upload_steps_answered_byte_by_byte_are_transient(vk: FakeVk, photo: MediaFile, step: str) -> None:
    vk.inject(step, DRIP)
    exc, took = timed(vk_publish(vk, OutgoingPost("with a photo", media=(photo,))))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is TransientError
    assert vk.published == []


def test_the_vk_session_bounds_the_whole_request_whatever_per_read_timeouts_are_asked(vk: FakeVk) -> None:
    session = build_session(vk.url, timeout=TIMEOUT)
    vk.inject("users.get", DRIP)
    begin = time.monotonic()
    with pytest.raises(requests.ReadTimeout, match="1 s deadline"):
        session.post("https://api.vk.ru/method/users.get", {"access_token": VK_TOKEN}, timeout=(30, 30))
    assert time.monotonic() - begin < TIMEOUT + MARGIN
    vk.inject("users.get", DRIP)  # the same session, a fresh deadline for each request
    with pytest.raises(requests.ReadTimeout):
        session.post("https://api.vk.ru/method/users.get", {"access_token": VK_TOKEN}, timeout=(30, 30))
    answer = session.post("https://api.vk.ru/method/users.get", {"access_token": VK_TOKEN, "v": "5.199"})
    assert answer.json()["response"][0]["id"] == 1001
    session.close()


# -- Facebook and OK: httpx ---------------------------------------------------------------------------------------


def fb_publish(fake: FakeFacebook, post: OutgoingPost) -> Callable[[], Awaitable[Any]]:
    async def go() -> Any:
        async with build_client(fake.url, timeout=TIMEOUT) as client:
            return await FacebookAdapter(PAGE, FB_TOKEN, client=client).publish(post)

    return go


def test_facebook_feed_post_answered_byte_by_byte_is_ambiguous_within_the_timeout(fb: FakeFacebook) -> None:
    fb.inject("feed", DRIP)
    exc, took = timed(fb_publish(fb, OutgoingPost("slow answer")))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is AmbiguousError and "ReadTimeout" in str(exc)
    assert [p["message"] for p in fb.published] == ["slow answer"]


def test_facebook_unpublished_photo_upload_answered_byte_by_byte_is_transient(
    fb: FakeFacebook, photo: MediaFile
) -> None:
    fb.inject("photos", DRIP)
    exc, took = timed(fb_publish(fb, OutgoingPost("two photos", media=(photo, photo))))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is TransientError


def test_facebook_deadline_passing_before_anything_was_written_is_transient(fb: FakeFacebook) -> None:
    """The client's one connection is held by a dripping answer read without a deadline: the post's deadline
    passes while it waits for that connection, before any byte of it was written."""
    fb.inject("feed", Fault.drip(0.2, limit=3.0))

    async def go() -> Any:
        async with build_client(fb.url, timeout=TIMEOUT, max_connections=1) as client:
            auth = {"Authorization": f"Bearer {FB_TOKEN}"}
            hog = asyncio.create_task(client.post(f"/v25.0/{PAGE}/feed", data={"message": "hog"}, headers=auth))
            await asyncio.sleep(0.1)
            try:
                return await FacebookAdapter(PAGE, FB_TOKEN, client=client).publish(OutgoingPost("waits"))
            finally:
                hog.cancel()

    exc, took = timed(go)
    assert took < TIMEOUT + 0.1 + MARGIN
    assert type(exc) is TransientError and "could not reach Facebook (PoolTimeout" in str(exc)
    assert [p["message"] for p in fb.published] == ["hog"]


def ok_publish(fake: FakeOk, post: OutgoingPost) -> Callable[[], Awaitable[Any]]:
    async def go() -> Any:
        async with build_client(fake.url, timeout=TIMEOUT) as client:
            adapter = OkAdapter(fake.group_id, fake.application_key, fake.application_secret, fake.token, client=client)
            return await adapter.publish(post)

    return go


def test_ok_mediatopic_post_answered_byte_by_byte_is_ambiguous_within_the_timeout(ok: FakeOk) -> None:
    ok.inject("mediatopic.post", DRIP)
    exc, took = timed(ok_publish(ok, OutgoingPost("slow answer")))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is AmbiguousError
    assert [p["text"] for p in ok.published] == ["slow answer"]


def test_ok_photo_upload_answered_byte_by_byte_is_transient(ok: FakeOk, photo: MediaFile) -> None:
    ok.inject("upload", DRIP)
    exc, took = timed(ok_publish(ok, OutgoingPost("with a photo", media=(photo,))))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is TransientError
    assert ok.published == []


def test_a_client_built_here_keeps_httpx_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline is kept by the adapters, not by a transport of ours, which would switch env proxies off."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    client = build_client("https://graph.facebook.com", timeout=TIMEOUT)
    try:
        assert any(isinstance(t, httpx.AsyncHTTPTransport) for t in client._mounts.values())
    finally:
        asyncio.run(client.aclose())


# -- Telegram: python-telegram-bot over httpx ---------------------------------------------------------------------


def tg_publish(fake: FakeTelegram, post: OutgoingPost) -> Callable[[], Awaitable[Any]]:
    async def go() -> Any:
        adapter = TelegramAdapter(TG_TOKEN, "@testchannel", api_url=fake.url, timeout=TIMEOUT)
        try:
            return await adapter.publish(post)
        finally:
            await adapter.aclose()

    return go


@pytest.mark.parametrize("method", ["sendMessage", "sendPhoto"])
def test_telegram_send_answered_byte_by_byte_is_ambiguous_within_the_timeout(
    tg: FakeTelegram, photo: MediaFile, method: str
) -> None:
    tg.inject(method, DRIP)
    media = (photo,) if method == "sendPhoto" else ()
    exc, took = timed(tg_publish(tg, OutgoingPost("slow answer", media=media)))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is AmbiguousError and "did not answer in time" in str(exc)
    assert len(tg.published) == 1


def test_telegram_get_me_answered_byte_by_byte_is_transient(tg: FakeTelegram) -> None:
    tg.inject("getMe", DRIP)
    exc, took = timed(tg_publish(tg, OutgoingPost("never sent")))
    assert took < TIMEOUT + MARGIN
    assert type(exc) is TransientError
    assert tg.published == []
