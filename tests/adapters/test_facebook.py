"""The Facebook Pages adapter driving real httpx against FakeFacebook over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.base import MediaFile, OutgoingPost, PostResults
from adapters.errors import (
    AmbiguousError,
    AuthError,
    ContentRejected,
    DuplicateSuspected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from adapters.facebook import FacebookAdapter, usage_backoff
from adapters.http import build_client
from tests.fakes.base import Fault
from tests.fakes.facebook import FakeFacebook

PAGE = "1000000001"
TOKEN = "EAAB-page-token-not-real"
USER_TOKEN = "EAAB-user-token-not-real"
T = TypeVar("T")


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_bytes() -> bytes:
    """A 1x1 grey baseline JPEG: one 8x8 block whose DC and AC tables hold a single 1-bit code each."""

    def segment(marker: int, data: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    one_code = bytes([1] + [0] * 15) + b"\x00"
    return (
        b"\xff\xd8"
        + segment(0xDB, b"\x00" + b"\x01" * 64)
        + segment(0xC0, struct.pack(">BHHB", 8, 1, 1, 1) + b"\x01\x11\x00")
        + segment(0xC4, b"\x00" + one_code)
        + segment(0xC4, b"\x10" + one_code)
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + b"\x3f\xff\xd9"
    )


def media(tmp_path: Path, count: int) -> tuple[MediaFile, ...]:
    files = []
    for index in range(count):
        kind, data = ("image/jpeg", jpeg_bytes()) if index % 2 else ("image/png", png_bytes())
        path = tmp_path / f"photo{index}.{kind.split('/')[1]}"
        path.write_bytes(data)
        files.append(MediaFile(path, kind, len(data)))
    return tuple(files)


def graph_error(code: int, subcode: int | None = None, message: str = "boom", **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atrace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": {**error, **extra}}


@pytest.fixture
def fake() -> Iterator[FakeFacebook]:
    server = FakeFacebook(PAGE, TOKEN).start()
    yield server
    server.stop()


def run(url: str, action: Callable[[FacebookAdapter], Awaitable[T]], *, token: str = TOKEN, timeout: float = 5.0) -> T:
    async def go() -> T:
        async with build_client(url, timeout=timeout) as client:
            return await action(FacebookAdapter(PAGE, token, client=client))

    return asyncio.run(go())


def fails(url: str, action: Callable[[FacebookAdapter], Awaitable[Any]], **kwargs: Any) -> PublishError:
    with pytest.raises(PublishError) as info:
        run(url, action, **kwargs)
    assert TOKEN not in str(info.value)
    return info.value


# -- publishing ----------------------------------------------------------------------------------------------


def test_text_post(fake: FakeFacebook) -> None:
    result = run(fake.url, lambda a: a.publish(OutgoingPost("Hello, Page")))
    [record] = fake.published
    assert record["message"] == "Hello, Page" and record["photos"] == 0 and record["published"]
    assert result.remote_id == record["id"] and record["id"].startswith(f"{PAGE}_")
    assert result.remote_url == f"https://www.facebook.com/{PAGE}/posts/{record['id'].split('_')[1]}"
    assert result.backoff is None
    [feed] = fake.calls("feed")
    assert (feed.method, feed.path) == ("POST", f"/v25.0/{PAGE}/feed")
    assert feed.headers["authorization"] == f"Bearer {TOKEN}"
    assert feed.form == {"message": "Hello, Page"}
    [read] = fake.calls("post")
    assert read.query == {"fields": "permalink_url"}


def test_link_post(fake: FakeFacebook) -> None:
    run(fake.url, lambda a: a.publish(OutgoingPost("Read this", link="https://example.org/a")))
    assert fake.calls("feed")[0].form == {"message": "Read this", "link": "https://example.org/a"}
    assert fake.published[0]["link"] == "https://example.org/a"


def test_one_photo(fake: FakeFacebook, tmp_path: Path) -> None:
    files = media(tmp_path, 1)
    result = run(fake.url, lambda a: a.publish(OutgoingPost("Фото дня ✓", media=files)))
    [upload] = fake.calls("photos")
    assert upload.path == f"/v25.0/{PAGE}/photos"
    assert upload.form == {"caption": "Фото дня ✓", "published": "true"}
    assert upload.files["source"].data == png_bytes() and upload.files["source"].content_type == "image/png"
    [record] = fake.published
    assert (record["message"], record["photos"], result.remote_id) == ("Фото дня ✓", 1, record["id"])
    assert fake.calls("feed") == []


def test_several_photos_use_attached_media(fake: FakeFacebook, tmp_path: Path) -> None:
    files = media(tmp_path, 3)
    result = run(fake.url, lambda a: a.publish(OutgoingPost("Album", media=files)))
    uploads = fake.calls("photos")
    assert [u.form for u in uploads] == [{"published": "false"}] * 3
    assert [u.files["source"].content_type for u in uploads] == ["image/png", "image/jpeg", "image/png"]
    ids = list(fake.photos)
    [feed] = fake.calls("feed")
    assert feed.form == {
        "message": "Album",
        **{f"attached_media[{i}]": json.dumps({"media_fbid": photo}) for i, photo in enumerate(ids)},
    }
    [record] = fake.published
    assert record["attached_media"] == ids and record["photos"] == 3 and result.remote_id == record["id"]


def test_link_with_photos_joins_the_message(fake: FakeFacebook, tmp_path: Path) -> None:
    run(fake.url, lambda a: a.publish(OutgoingPost("See", link="https://example.org/x", media=media(tmp_path, 2))))
    assert fake.published[0]["message"] == "See\n\nhttps://example.org/x"


def test_native_schedule_and_cancel(fake: FakeFacebook) -> None:
    when = datetime.now(UTC) + timedelta(hours=2)
    post = OutgoingPost("Later", publish_at=when)
    result = run(fake.url, lambda a: a.publish(post))
    assert fake.calls("feed")[0].form == {
        "message": "Later",
        "published": "false",
        "scheduled_publish_time": str(int(when.timestamp())),
    }
    assert fake.published[0]["scheduled_publish_time"] == int(when.timestamp())
    found = run(fake.url, lambda a: a.find_published(post, datetime.now(UTC) - timedelta(minutes=1)))
    assert found is not None and found.remote_id == result.remote_id
    assert fake.calls("scheduled_posts")
    run(fake.url, lambda a: a.cancel_scheduled(result.remote_id))
    [delete] = fake.calls("delete")
    assert (delete.method, delete.path) == ("DELETE", f"/v25.0/{result.remote_id}")
    assert fake.published[0]["deleted"]


def test_scheduled_photos_are_uploaded_as_temporary(fake: FakeFacebook, tmp_path: Path) -> None:
    when = datetime.now(UTC) + timedelta(days=3)
    run(fake.url, lambda a: a.publish(OutgoingPost("Later", media=media(tmp_path, 1), publish_at=when)))
    assert fake.calls("photos")[0].form == {"published": "false", "temporary": "true"}
    assert set(fake.calls("feed")[0].form) == {"message", "published", "scheduled_publish_time", "attached_media[0]"}


@pytest.mark.parametrize("ahead", [timedelta(minutes=5), timedelta(days=31), timedelta(hours=-1)])
def test_schedule_outside_the_window_is_refused_before_sending(fake: FakeFacebook, ahead: timedelta) -> None:
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("x", publish_at=datetime.now(UTC) + ahead)))
    assert type(error) is ContentRejected and "10 minutes to 30 days" in str(error)
    assert fake.requests == []


# -- error mapping --------------------------------------------------------------------------------------------

BUC = {"X-Business-Use-Case-Usage": json.dumps({PAGE: [{"type": "pages", "call_count": 100,
                                                        "estimated_time_to_regain_access": 7}]})}  # fmt: skip

FEED_ERRORS = [
    (400, graph_error(1, 99), {}, AmbiguousError, "may exist", None),
    (400, graph_error(2), {}, AmbiguousError, "may exist", None),
    (500, graph_error(9000), {}, AmbiguousError, "may exist", None),
    (503, b"<html>Service Unavailable</html>", {}, AmbiguousError, "without a Graph error body", None),
    (400, graph_error(4), {}, RateLimited, "throttled", None),
    (400, graph_error(17), {}, RateLimited, "throttled", None),
    (400, graph_error(32), {}, RateLimited, "throttled", None),
    (400, graph_error(341), {}, RateLimited, "throttled", None),
    (400, graph_error(613), {}, RateLimited, "throttled", None),
    (400, graph_error(80001), BUC, RateLimited, "throttled", 420.0),
    (400, graph_error(9000, is_transient=True), {}, TransientError, "temporarily", None),
    (400, graph_error(190, 458), {}, AuthError, "removed the app", None),
    (400, graph_error(190, 459), {}, AuthError, "checkpoint", None),
    (400, graph_error(190, 460), {}, AuthError, "changed their password", None),
    (400, graph_error(190, 463), {}, AuthError, "expired", None),
    (400, graph_error(190, 464), {}, AuthError, "not confirmed", None),
    (400, graph_error(190, 467), {}, AuthError, "logged out", None),
    (400, graph_error(102), {}, AuthError, "must be renewed", None),
    (400, graph_error(10), {}, AuthError, "pages_manage_posts", None),
    (400, graph_error(200), {}, AuthError, "CREATE_CONTENT", None),
    (400, graph_error(299), {}, AuthError, "pages_read_engagement", None),
    (400, graph_error(100, message="Invalid parameter"), {}, ContentRejected, "Invalid parameter", None),
    (400, graph_error(324), {}, ContentRejected, "Graph error 324", None),
    (400, graph_error(1609005), {}, ContentRejected, "Graph error 1609005", None),
    (400, graph_error(368), {}, PermanentError, "policy violation", None),
    (400, graph_error(506), {}, DuplicateSuspected, "already has this message", None),
    (400, graph_error(12345), {}, PermanentError, "refused", None),
    (404, b"Not Found", {}, PermanentError, "check api_url", None),
]


@pytest.mark.parametrize(("status", "body", "headers", "expected", "fragment", "retry_after"), FEED_ERRORS)
def test_publishing_request_errors(
    fake: FakeFacebook,
    status: int,
    body: Any,
    headers: dict[str, str],
    expected: type[PublishError],
    fragment: str,
    retry_after: float | None,
) -> None:
    fake.inject("feed", Fault.respond(status, body, headers))
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is expected and fragment in str(error)
    assert error.retry_after == retry_after
    assert error.needs_attention == (
        expected is AuthError or (expected is PermanentError and fragment == "policy violation")
    )


UPLOAD_ERRORS = [
    (400, graph_error(1), TransientError),
    (400, graph_error(2), TransientError),
    (500, graph_error(1), TransientError),
    (502, b"Bad Gateway", TransientError),
    (400, graph_error(4), RateLimited),
    (400, graph_error(190, 463), AuthError),
    (400, graph_error(324), ContentRejected),
]


@pytest.mark.parametrize(("status", "body", "expected"), UPLOAD_ERRORS)
def test_unpublished_upload_errors_are_never_ambiguous(
    fake: FakeFacebook, tmp_path: Path, status: int, body: Any, expected: type[PublishError]
) -> None:
    fake.inject("photos", Fault.respond(status, body))
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Album", media=media(tmp_path, 2))))
    assert type(error) is expected
    assert fake.calls("feed") == [] and fake.published == []


def test_the_fake_rejects_a_revoked_token_with_its_subcode(fake: FakeFacebook) -> None:
    fake.revoke_token(subcode=463)
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is AuthError and "the token expired" in str(error) and "190/463" in str(error)


def test_duplicate_message_is_reported_as_suspected_duplicate(fake: FakeFacebook) -> None:
    run(fake.url, lambda a: a.publish(OutgoingPost("Same words")))
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Same words")))
    assert type(error) is DuplicateSuspected and len(fake.published) == 1


def test_accept_then_drop_on_the_feed_post_is_ambiguous(fake: FakeFacebook) -> None:
    fake.inject("feed", Fault.drop_after())
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is AmbiguousError and "may exist" in str(error)
    assert len(fake.published) == 1  # it was created


def test_accept_then_drop_on_a_single_photo_is_ambiguous(fake: FakeFacebook, tmp_path: Path) -> None:
    fake.inject("photos", Fault.drop_after())
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Photo", media=media(tmp_path, 1))))
    assert type(error) is AmbiguousError and len(fake.published) == 1


def test_accept_then_drop_on_an_unpublished_upload_is_transient(fake: FakeFacebook, tmp_path: Path) -> None:
    fake.inject("photos", Fault.drop_after())
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Album", media=media(tmp_path, 2))))
    assert type(error) is TransientError and fake.published == []


def test_read_timeout_on_the_feed_post_is_ambiguous(fake: FakeFacebook) -> None:
    fake.inject("feed", Fault.delay(0.6))
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Slow")), timeout=0.25)
    assert type(error) is AmbiguousError and "ReadTimeout" in str(error)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = fails(f"http://127.0.0.1:{port}", lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is TransientError and "ConnectError" in str(error)


def test_real_page_budget_yields_rate_limited_with_regain_time() -> None:
    with FakeFacebook(PAGE, TOKEN, limits=True, calls_per_hour=3) as fake:
        run(fake.url, lambda a: a.publish(OutgoingPost("one")))  # feed + permalink
        second = run(fake.url, lambda a: a.publish(OutgoingPost("two")))  # feed; the permalink read is refused
        assert second.remote_url == f"https://www.facebook.com/{second.remote_id}"
        assert second.backoff is not None and second.backoff >= 60
        error = fails(fake.url, lambda a: a.publish(OutgoingPost("three")))
    assert type(error) is RateLimited and error.code == 80001
    assert error.retry_after is not None and error.retry_after >= 60


# -- usage headers, permalinks, reading back ---------------------------------------------------------------------


@pytest.mark.parametrize(("percent", "regain", "expected"), [(50, 0, None), (95, 0, 300.0), (50, 3, 180.0)])
def test_usage_headers_set_backoff(fake: FakeFacebook, percent: int, regain: int, expected: float | None) -> None:
    fake.set_usage(percent, regain_minutes=regain)
    assert run(fake.url, lambda a: a.publish(OutgoingPost(f"usage {percent}"))).backoff == expected


def test_usage_backoff_reads_the_app_header_alone() -> None:
    assert usage_backoff({"x-app-usage": '{"call_count": 12, "total_time": 91, "total_cputime": 3}'}) == 300.0
    assert usage_backoff({"x-app-usage": "not json"}) is None


@pytest.mark.parametrize("fault", [Fault.respond(500, graph_error(2)), Fault.drop_before()])
def test_permalink_read_failure_falls_back(fake: FakeFacebook, fault: Fault) -> None:
    fake.inject("post", fault)
    result = run(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert result.remote_url == f"https://www.facebook.com/{result.remote_id}"
    assert len(fake.published) == 1


def test_find_published(fake: FakeFacebook) -> None:
    post = OutgoingPost("Find me", link="https://example.org/")
    result = run(fake.url, lambda a: a.publish(post))
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = run(fake.url, lambda a: a.find_published(post, since))
    assert found is not None and (found.remote_id, found.remote_url) == (result.remote_id, result.remote_url)
    read = fake.calls("published_posts")[0]
    assert read.query["fields"] == "id,message,created_time,permalink_url"
    assert read.query["since"] == str(int(since.timestamp()) - 120)
    assert run(fake.url, lambda a: a.find_published(OutgoingPost("Other text"), since)) is None
    later = datetime.now(UTC) + timedelta(hours=1)
    assert run(fake.url, lambda a: a.find_published(post, later)) is None


def test_find_published_read_failure_raises(fake: FakeFacebook) -> None:
    fake.inject("published_posts", Fault.respond(500, graph_error(2)))
    error = fails(fake.url, lambda a: a.find_published(OutgoingPost("x"), datetime.now(UTC)))
    assert type(error) is TransientError


# -- check ---------------------------------------------------------------------------------------------------------


def test_check_ok(fake: FakeFacebook) -> None:
    line = run(fake.url, lambda a: a.check())
    assert f"facebook page {PAGE} (Test Page)" in line and "valid Page token" in line
    assert "pages_manage_posts and pages_read_engagement are granted" in line
    assert [r.path for r in fake.requests] == ["/v25.0/me", "/v25.0/me/permissions"]


def test_check_refuses_a_user_token(fake: FakeFacebook) -> None:
    fake.add_user_token(USER_TOKEN, "2000000001", "Jane Admin")
    error = fails(fake.url, lambda a: a.check(), token=USER_TOKEN)
    assert type(error) is AuthError
    assert str(error).startswith(f"this is not a Page token for page {PAGE}: it belongs to 'Jane Admin'")
    assert USER_TOKEN not in str(error)


def test_check_reports_missing_permissions(fake: FakeFacebook) -> None:
    fake.permissions = ["pages_show_list", "pages_read_engagement"]
    error = fails(fake.url, lambda a: a.check())
    assert type(error) is AuthError and "lacks pages_manage_posts" in str(error)


def test_check_when_permissions_are_unreadable(fake: FakeFacebook) -> None:
    fake.inject("permissions", Fault.respond(400, graph_error(100, message="Unsupported request")))
    line = run(fake.url, lambda a: a.check())
    assert "valid Page token" in line and "could not be read" in line and "first publish" in line


def test_check_with_a_revoked_token(fake: FakeFacebook) -> None:
    fake.revoke_token(subcode=460)
    error = fails(fake.url, lambda a: a.check())
    assert type(error) is AuthError and "changed their password" in str(error)


# -- the token, connections, the interface ------------------------------------------------------------------------


def test_the_token_never_appears_in_urls_bodies_or_messages(fake: FakeFacebook, tmp_path: Path) -> None:
    post = OutgoingPost("Album", media=media(tmp_path, 2))
    run(fake.url, lambda a: a.publish(post))
    run(fake.url, lambda a: a.find_published(post, datetime.now(UTC) - timedelta(minutes=1)))
    run(fake.url, lambda a: a.check())
    fake.revoke_token()
    fails(fake.url, lambda a: a.publish(OutgoingPost("x")))
    assert len(fake.requests) >= 8
    for request in fake.requests:
        assert TOKEN not in request.path and "access_token" not in request.params
        assert all(TOKEN not in key + value for key, value in request.query.items())
        assert TOKEN.encode() not in request.body
        assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_one_client_reuses_its_connection(fake: FakeFacebook) -> None:
    async def two(adapter: FacebookAdapter) -> None:
        await adapter.publish(OutgoingPost("first"))
        await adapter.publish(OutgoingPost("second"))

    run(fake.url, two)
    assert len(fake.published) == 2 and len(fake.requests) == 4
    assert fake.connections == 1


def test_aclose_leaves_the_shared_client_open(fake: FakeFacebook) -> None:
    async def go() -> bool:
        async with build_client(fake.url) as client:
            await FacebookAdapter(PAGE, TOKEN, client=client).aclose()
            return client.is_closed

    assert asyncio.run(go()) is False


def test_limits_requests_and_capabilities(tmp_path: Path) -> None:
    adapter = FacebookAdapter(PAGE, TOKEN, client=None)  # type: ignore[arg-type]
    assert adapter.lease_group == f"facebook-page:{PAGE}"
    assert adapter.requests_for(OutgoingPost("t")) == 2
    assert adapter.requests_for(OutgoingPost("t", media=media(tmp_path, 1))) == 2
    assert adapter.requests_for(OutgoingPost("t", media=media(tmp_path, 3))) == 5
    webp = MediaFile(tmp_path / "a.webp", "image/webp", 10)
    problems = FacebookAdapter.validate(OutgoingPost("t", media=(webp,) * 11))
    assert [p.message for p in problems] == [
        "11 media files; facebook allows 10",
        *["a.webp: image/webp is not accepted by facebook (image/bmp, image/gif, image/jpeg, image/png, image/tiff)"]
        * 11,
    ]
    assert FacebookAdapter.validate(OutgoingPost("x" * 63207))[0].message.endswith("facebook allows 63206")


def test_importing_the_adapter_does_not_import_httpx() -> None:
    code = "import adapters.facebook, sys; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# -- after publishing: results, audience, comments, deletion --------------------------------------------------------


def published(fake: FakeFacebook, text: str = "Measured") -> str:
    result: str = run(fake.url, lambda a: a.publish(OutgoingPost(text))).remote_id
    return result


def test_results_grow_with_the_posts_age_and_views_come_from_insights(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.add_comment(post_id, "Ann", "Nice")
    fake.advance(3600)
    first = run(fake.url, lambda a: a.read_results(post_id))
    fake.advance(23 * 3600)
    later = run(fake.url, lambda a: a.read_results(post_id))
    assert first.views is not None and later.views is not None and first.likes is not None
    assert 0 < first.views < later.views and first.likes < (later.likes or 0)
    assert (first.comments, first.gone, first.notes) == (1, False, ())
    assert first.reposts == 0 and (later.reposts or 0) > 0  # Graph leaves "shares" out while nobody shared
    [call, *_] = fake.calls("post")[-1:]
    assert "reactions.summary(total_count)" in call.params["fields"]
    assert fake.calls("insights")[-1].params["metric"] == "post_media_view"


def test_views_fall_back_to_the_metric_name_before_the_rename(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.insight_metrics = {"post_impressions"}
    fake.advance(3600)
    results = run(fake.url, lambda a: a.read_results(post_id))
    assert results.views and results.notes == ()
    assert [c.params["metric"] for c in fake.calls("insights")] == ["post_media_view", "post_impressions"]


def test_views_without_read_insights_are_none_with_a_note(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.permissions.remove("read_insights")
    results = run(fake.url, lambda a: a.read_results(post_id))
    assert results.views is None and results.likes is not None
    assert "read_insights" in results.notes[0]
    assert "post on" not in results.notes[0] and "pages_manage_posts" not in results.notes[0]  # reading, not posting


def test_results_without_pages_read_engagement_name_it(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.permissions.remove("pages_read_engagement")
    error = fails(fake.url, lambda a: a.read_results(post_id))
    assert type(error) is AuthError and error.code == 10 and "pages_read_engagement" in str(error)


def test_results_of_a_deleted_post_say_gone(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.published[0]["deleted"] = True
    assert run(fake.url, lambda a: a.read_results(post_id)) == PostResults(gone=True)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.respond(500, graph_error(2, message="Service temporarily unavailable")), TransientError),
        (Fault.respond(400, graph_error(80001, message="too many calls")), RateLimited),
        (Fault.respond(400, graph_error(190, 463, "expired")), AuthError),
        (Fault.respond(503, b"<html>"), TransientError),
    ],
)
def test_results_errors_are_mapped(fake: FakeFacebook, fault: Fault, expected: type) -> None:
    post_id = published(fake)
    fake.inject("post", fault)
    assert type(fails(fake.url, lambda a: a.read_results(post_id))) is expected


def test_audience_is_the_pages_followers(fake: FakeFacebook) -> None:
    fake.followers[PAGE] = 5150
    assert run(fake.url, lambda a: a.read_audience()) == 5150
    assert fake.calls("page")[-1].params["fields"] == "followers_count"


def test_comments_since_a_time_page_by_page(fake: FakeFacebook) -> None:
    post_id = published(fake)
    start = datetime.now(UTC).timestamp()
    fake.add_comment(post_id, "Old", "before", at=start - 7200)
    for index in range(120):
        fake.add_comment(post_id, "Ann Lee", f"c{index}", at=start + index)
    since = datetime.fromtimestamp(int(start), UTC)
    comments = run(fake.url, lambda a: a.read_comments(post_id, since))
    assert [c.text for c in comments] == [f"c{index}" for index in range(120)]
    assert comments[0].author == "Ann Lee" and comments[0].created_at == datetime.fromtimestamp(int(start), UTC)
    assert comments[0].url and f"comment_id={comments[0].remote_id}" in comments[0].url
    assert len(fake.calls("comments")) == 2


def test_delete(fake: FakeFacebook) -> None:
    post_id = published(fake)
    now = datetime.now(UTC)
    run(fake.url, lambda a: a.delete_post(post_id, now - timedelta(days=400), now))
    assert fake.published[0]["deleted"] and fake.calls("delete")[0].path == f"/v25.0/{post_id}"


def test_deleting_a_post_already_gone_succeeds(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.published[0]["deleted"] = True
    now = datetime.now(UTC)
    run(fake.url, lambda a: a.delete_post(post_id, now, now))


def test_a_delete_without_the_right_is_an_auth_error(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.inject("delete", Fault.respond(400, graph_error(200, message="(#200) Permissions error")))
    now = datetime.now(UTC)
    assert type(fails(fake.url, lambda a: a.delete_post(post_id, now, now))) is AuthError


def test_a_delete_without_an_answer_is_ambiguous(fake: FakeFacebook) -> None:
    post_id = published(fake)
    fake.inject("delete", Fault.delay(0.6))
    now = datetime.now(UTC)
    error = fails(fake.url, lambda a: a.delete_post(post_id, now, now), timeout=0.25)
    assert type(error) is AmbiguousError and "may be deleted" in str(error)


def test_a_comment_of_an_unknown_shape_is_transient(fake: FakeFacebook) -> None:
    post_id = published(fake)
    bad = {"data": [{"id": "1_2", "message": "hi", "created_time": "yesterday"}], "paging": {}}
    fake.inject("comments", Fault.respond(200, bad))
    error = fails(fake.url, lambda a: a.read_comments(post_id, datetime.now(UTC)))
    assert type(error) is TransientError and "comments" in str(error)
