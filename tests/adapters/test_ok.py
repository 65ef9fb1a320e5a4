"""The OK adapter driving real httpx against FakeOk (which checks every signature) over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
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

import httpx
import pytest

from adapters.base import MediaFile, OutgoingPost, PostResults
from adapters.errors import (
    AmbiguousError,
    AuthError,
    ContentRejected,
    PermanentError,
    PublishError,
    RateLimited,
    TransientError,
)
from adapters.http import build_client
from adapters.ok import OkAdapter, sign
from tests.fakes.base import Fault
from tests.fakes.ok import FakeOk

GID = "70000000000001"
APP_KEY = "CBAFAKEAPPKEY"
SECRET = "FAKE-APP-SECRET-not-real"
TOKEN = "ok-token-not-real"
T = TypeVar("T")


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x80\xff" * width for _ in range(height))
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
        kind, data = ("image/jpeg", jpeg_bytes()) if index % 2 else ("image/png", png_bytes(index + 1, 1))
        path = tmp_path / f"pic{index}.{kind.split('/')[1]}"
        path.write_bytes(data)
        files.append(MediaFile(path, kind, len(data)))
    return tuple(files)


@pytest.fixture
def fake() -> Iterator[FakeOk]:
    server = FakeOk(GID, APP_KEY, SECRET, TOKEN).start()
    yield server
    server.stop()


def run(
    url: str,
    action: Callable[[OkAdapter], Awaitable[T]],
    *,
    token: str = TOKEN,
    secret: str = SECRET,
    timeout: float = 5.0,
) -> T:
    async def go() -> T:
        async with build_client(url, timeout=timeout) as client:
            return await action(OkAdapter(GID, APP_KEY, secret, token, client=client))

    return asyncio.run(go())


def fails(url: str, action: Callable[[OkAdapter], Awaitable[Any]], **kwargs: Any) -> PublishError:
    with pytest.raises(PublishError) as info:
        run(url, action, **kwargs)
    assert TOKEN not in str(info.value) and SECRET not in str(info.value)
    return info.value


def attachment(fake: FakeOk, index: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(fake.calls("mediatopic.post")[index].form["attachment"])
    return result


# -- the signature ---------------------------------------------------------------------------------------------


def test_signature_vector_from_the_docs() -> None:
    token, secret = "-s-84W-s3egarWUsbkq-IWTucuedzTKT8VUXIA.s4Xx8IW7", "ABC123DEF456GHI789JKL123"
    assert hashlib.md5((token + secret).encode()).hexdigest() == "b1a2b89707a94624c43afae67d59274c"
    params = {"application_key": "ABCDEFGHIGKLMNOPK", "format": "json", "method": "events.get"}
    assert sign(params, token, secret) == "232c8eb921951c4dba9b72606f9ddb4c"
    assert sign({**params, "access_token": token, "session_key": "x", "sig": "y"}, token, secret) == (
        "232c8eb921951c4dba9b72606f9ddb4c"
    )


def test_signature_sorts_keys_and_signs_utf8() -> None:
    session = hashlib.md5(b"tsecret").hexdigest()
    expected = hashlib.md5(("a=1b=Привет 🎉" + session).encode()).hexdigest()
    assert sign({"b": "Привет 🎉", "a": "1"}, "t", "secret") == expected


def test_the_fake_checks_signatures_exactly(fake: FakeOk) -> None:
    params = {"application_key": APP_KEY, "format": "json", "method": "users.getCurrentUser"}
    good = hashlib.md5(
        (
            "".join(f"{k}={params[k]}" for k in sorted(params)) + hashlib.md5((TOKEN + SECRET).encode()).hexdigest()
        ).encode()
    ).hexdigest()
    for sig, expected in [(good, None), (good.upper(), 104), ("0" * 32, 104), (good[:-1], 104)]:
        body = httpx.post(f"{fake.url}/fb.do", data={**params, "sig": sig, "access_token": TOKEN}).json()
        assert body.get("error_code") == expected, sig
    assert httpx.post(f"{fake.url}/fb.do", data={**params, "sig": good, "access_token": TOKEN}).json()["uid"]


def test_a_wrong_application_secret_is_a_permanent_signature_error(fake: FakeOk) -> None:
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")), secret="not-the-secret")
    assert type(error) is PermanentError and error.needs_attention and error.code == 104
    assert str(error).startswith(
        "the request signature was rejected: a bug in smm-scheduler or a wrong application_secret"
    )
    assert "not-the-secret" not in str(error)
    assert fake.published == []


def test_our_signatures_survive_unicode_text_links_and_photos(fake: FakeOk, tmp_path: Path) -> None:
    text = 'Привет, мир! 🎉 «кавычки» & = + %20 "q" \\ / \n новая строка'
    post = OutgoingPost(text, link="https://example.org/путь?a=1&b=ü#x", media=media(tmp_path, 2))
    run(fake.url, lambda a: a.publish(post))
    [record] = fake.published
    assert (record["text"], record["link"], record["photos"]) == (text, post.link, 2)
    assert attachment(fake)["media"][0] == {"type": "text", "text": text}


# -- publishing ----------------------------------------------------------------------------------------------


def test_text_post(fake: FakeOk) -> None:
    result = run(fake.url, lambda a: a.publish(OutgoingPost("Hello, group")))
    [record] = fake.published
    assert record["text"] == "Hello, group" and record["gid"] == GID and record["photos"] == 0
    assert result.remote_id == record["id"]
    assert result.remote_url == f"https://ok.ru/group/{GID}/topic/{record['id']}"
    [call] = fake.calls("mediatopic.post")
    assert (call.method, call.path, call.query) == ("POST", "/fb.do", {})
    assert call.form["attachment"] == '{"media":[{"type":"text","text":"Hello, group"}]}'
    assert {k: call.form[k] for k in ("application_key", "format", "type", "gid")} == {
        "application_key": APP_KEY,
        "format": "json",
        "type": "GROUP_THEME",
        "gid": GID,
    }


def test_link_post(fake: FakeOk) -> None:
    run(fake.url, lambda a: a.publish(OutgoingPost("Read", link="https://example.org/a")))
    assert attachment(fake) == {
        "media": [{"type": "text", "text": "Read"}, {"type": "link", "url": "https://example.org/a"}]
    }
    assert fake.published[0]["link"] == "https://example.org/a"


@pytest.mark.parametrize("count", [1, 3])
def test_photos(fake: FakeOk, tmp_path: Path, count: int) -> None:
    files = media(tmp_path, count)
    run(fake.url, lambda a: a.publish(OutgoingPost("Photos", media=files)))
    [get_url] = fake.calls("photosV2.getUploadUrl")
    assert (get_url.form["gid"], get_url.form["count"]) == (GID, str(count))
    [upload] = fake.calls("upload")
    assert upload.path == "/upload" and sorted(upload.files) == [f"pic{i}" for i in range(1, count + 1)]
    assert [upload.files[f"pic{i + 1}"].data for i in range(count)] == [f.path.read_bytes() for f in files]
    blocks = attachment(fake)["media"]
    assert blocks[0] == {"type": "text", "text": "Photos"} and blocks[1]["type"] == "photo"
    tokens = [item["id"] for item in blocks[1]["list"]]
    photo_ids = [token.split("-", 1)[1] for token in tokens]  # the fake's tokens name their photo
    assert len(tokens) == count and photo_ids == sorted(photo_ids, key=lambda p: int(p[2:]))
    assert fake.published[0]["photos"] == count


# -- error mapping ----------------------------------------------------------------------------------------------


def ok_error(code: int, message: str = "SOMETHING : went wrong") -> dict[str, Any]:
    return {"error_code": code, "error_msg": message, "error_data": None}


POST_ERRORS: list[tuple[int, Any, type[PublishError], str, float | None]] = [
    *[(200, ok_error(code), TransientError, "temporarily", None) for code in (1, 2, 30, 31, 9999)],
    (200, ok_error(8, "FLOOD_BLOCKED : Flood blocked"), RateLimited, "flood", 60.0),
    (200, ok_error(11, "LIMIT_REACHED : Limit reached"), RateLimited, "quota", 3600.0),
    *[(200, ok_error(code), AuthError, "LONG_ACCESS_TOKEN lives 30 days", None) for code in (102, 103)],
    *[(200, ok_error(code), PermanentError, "signature was rejected", None) for code in (104, 105)],
    *[(200, ok_error(code), AuthError, "GROUP_CONTENT", None) for code in (10, 200, 210)],
    *[
        (200, ok_error(code, "CENSOR : bad words"), ContentRejected, "bad words", None)
        for code in (100, 454, 600, 601, 607)
    ],
    *[
        (200, ok_error(code, "X : the API said so"), PermanentError, "the API said so", None)
        for code in (3, 7, 9, 160, 300, 456, 511)
    ],
    (500, b"Internal Server Error", AmbiguousError, "may exist", None),
    (200, b"<html>oops</html>", AmbiguousError, "may exist", None),
    (404, b"Not Found", PermanentError, "check api_url", None),
]


@pytest.mark.parametrize(("status", "body", "expected", "fragment", "retry_after"), POST_ERRORS)
def test_mediatopic_post_errors(
    fake: FakeOk, status: int, body: Any, expected: type[PublishError], fragment: str, retry_after: float | None
) -> None:
    fake.inject("mediatopic.post", Fault.respond(status, body))
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is expected and fragment in str(error)
    assert error.retry_after == retry_after
    if isinstance(body, dict):
        assert error.code == body["error_code"]


@pytest.mark.parametrize(
    ("key", "fault", "expected"),
    [
        ("photosV2.getUploadUrl", Fault.drop_after(), TransientError),
        ("photosV2.getUploadUrl", Fault.respond(503, b"busy"), TransientError),
        ("photosV2.getUploadUrl", Fault.respond(200, ok_error(10, "PERMISSION_DENIED : PHOTO_CONTENT")), AuthError),
        ("upload", Fault.drop_after(), TransientError),
        ("upload", Fault.respond(502, b"Bad Gateway"), TransientError),
        ("upload", Fault.respond(200, ok_error(1)), TransientError),
        ("upload", Fault.respond(200, {"photos": {}}), TransientError),
    ],
)
def test_photo_upload_failures_are_never_ambiguous(
    fake: FakeOk, tmp_path: Path, key: str, fault: Fault, expected: type[PublishError]
) -> None:
    fake.inject(key, fault)
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Photos", media=media(tmp_path, 2))))
    assert type(error) is expected
    assert fake.calls("mediatopic.post") == [] and fake.published == []


def test_accept_then_drop_on_mediatopic_post_is_ambiguous(fake: FakeOk) -> None:
    fake.inject("mediatopic.post", Fault.drop_after())
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is AmbiguousError and "may exist" in str(error)
    assert len(fake.published) == 1


def test_read_timeout_on_mediatopic_post_is_ambiguous(fake: FakeOk) -> None:
    fake.inject("mediatopic.post", Fault.delay(0.6))
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Slow")), timeout=0.25)
    assert type(error) is AmbiguousError and "ReadTimeout" in str(error)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = fails(f"http://127.0.0.1:{port}", lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is TransientError and "ConnectError" in str(error)


def test_flood_limit_of_the_fake_yields_rate_limited() -> None:
    with FakeOk(GID, APP_KEY, SECRET, TOKEN, limits=True, flood_limit=2) as fake:
        run(fake.url, lambda a: a.publish(OutgoingPost("post 1")))
        run(fake.url, lambda a: a.publish(OutgoingPost("post 2")))
        error = fails(fake.url, lambda a: a.publish(OutgoingPost("one too many")))
    assert type(error) is RateLimited and error.code == 8 and error.retry_after == 60.0
    assert len(fake.published) == 2


def test_the_fake_enforces_text_limits_and_permissions() -> None:
    with FakeOk(GID, APP_KEY, SECRET, TOKEN, text_limit=5) as fake:
        error = fails(fake.url, lambda a: a.publish(OutgoingPost("too long")))
        assert type(error) is ContentRejected and error.code == 601
        fake.users[TOKEN]["permissions"].discard("GROUP_CONTENT")
        error = fails(fake.url, lambda a: a.publish(OutgoingPost("ok")))
        assert type(error) is AuthError and error.code == 10


def test_an_expired_token(fake: FakeOk) -> None:
    fake.revoke_token()
    error = fails(fake.url, lambda a: a.publish(OutgoingPost("Hello")))
    assert type(error) is AuthError and str(error).startswith(
        "the OK access token expired: get a new one (LONG_ACCESS_TOKEN lives 30 days and extends on use)"
    )


# -- reading back and check --------------------------------------------------------------------------------------


def test_find_published(fake: FakeOk) -> None:
    post = OutgoingPost("Find me", link="https://example.org/")
    result = run(fake.url, lambda a: a.publish(post))
    run(fake.url, lambda a: a.publish(OutgoingPost("Something else")))
    found = run(fake.url, lambda a: a.find_published(post, datetime.now(UTC) - timedelta(seconds=10)))
    assert found == result
    call = fake.calls("mediatopic.getTopics")[0]
    assert (call.form["gid"], call.form["count"]) == (GID, "50")
    assert run(fake.url, lambda a: a.find_published(OutgoingPost("Never posted"), datetime.now(UTC))) is None
    # Created more than 120 s before ``since``: not the post we are looking for.
    assert run(fake.url, lambda a: a.find_published(post, datetime.now(UTC) + timedelta(minutes=5))) is None
    # Within the 120 s of clock slack: found.
    assert run(fake.url, lambda a: a.find_published(post, datetime.now(UTC) + timedelta(seconds=60))) == result


def test_check_ok(fake: FakeOk) -> None:
    line = run(fake.url, lambda a: a.check())
    assert line.startswith(f"ok group {GID} (Test Group): token and signature valid for Test Admin (500000000001)")
    assert "GROUP_CONTENT granted, PHOTO_CONTENT granted" in line
    assert "the group is readable (group.getInfo) and the user is ADMIN of it" in line
    assert [fake.fault_key(r) for r in fake.requests] == [
        "users.getCurrentUser",
        "users.hasAppPermission",
        "users.hasAppPermission",
        "group.getInfo",
        "group.getUserGroupsByIds",
    ]


@pytest.mark.parametrize(
    ("status", "role", "allowed"),
    [("ACTIVE", None, False), (None, None, False), ("ACTIVE", "ANALYST", False), ("ACTIVE", "EDITOR", True),
     ("MODERATOR", None, True), ("BLOCKED", None, False)],
)  # fmt: skip
def test_check_requires_a_role_that_can_post(fake: FakeOk, status: str | None, role: str | None, allowed: bool) -> None:
    fake.add_user("ok-member-token-not-real", "500000000002", "Plain Member", status=status, role=role)
    if allowed:
        assert "(group.getUserGroupsByIds)" in run(fake.url, lambda a: a.check(), token="ok-member-token-not-real")
        return
    error = fails(fake.url, lambda a: a.check(), token="ok-member-token-not-real")
    assert type(error) is AuthError
    assert str(error).startswith(f"the OK user Plain Member (500000000002) cannot post in group {GID}")


def test_check_without_group_content(fake: FakeOk) -> None:
    fake.users[TOKEN]["permissions"] = {"VALUABLE_ACCESS", "PHOTO_CONTENT"}
    error = fails(fake.url, lambda a: a.check())
    assert type(error) is AuthError and "has not granted GROUP_CONTENT" in str(error)


def test_check_without_photo_content_warns(fake: FakeOk) -> None:
    fake.users[TOKEN]["permissions"] = {"VALUABLE_ACCESS", "GROUP_CONTENT"}
    assert "PHOTO_CONTENT NOT granted (posts with photos will fail)" in run(fake.url, lambda a: a.check())


def test_check_with_an_expired_token(fake: FakeOk) -> None:
    fake.revoke_token()
    error = fails(fake.url, lambda a: a.check())
    assert type(error) is AuthError and "expired" in str(error)


# -- the token, connections, the interface ------------------------------------------------------------------------


def test_the_token_never_appears_in_urls_or_messages(fake: FakeOk, tmp_path: Path) -> None:
    post = OutgoingPost("With photos", media=media(tmp_path, 2))
    run(fake.url, lambda a: a.publish(post))
    run(fake.url, lambda a: a.find_published(post, datetime.now(UTC)))
    run(fake.url, lambda a: a.check())
    fake.revoke_token()
    fails(fake.url, lambda a: a.publish(OutgoingPost("x")))
    assert len(fake.requests) >= 10
    for request in fake.requests:
        assert TOKEN not in request.path and SECRET not in request.path
        assert all(TOKEN not in key + value for key, value in request.query.items())
        assert SECRET.encode() not in request.body
        if request.path == "/fb.do":
            assert request.form["access_token"] == TOKEN  # in the POST body only
        else:
            assert TOKEN.encode() not in request.body


def test_one_client_reuses_its_connection(fake: FakeOk, tmp_path: Path) -> None:
    async def two(adapter: OkAdapter) -> None:
        await adapter.publish(OutgoingPost("first", media=media(tmp_path, 1)))
        await adapter.publish(OutgoingPost("second"))

    run(fake.url, two)
    assert len(fake.published) == 2 and len(fake.requests) == 4
    assert fake.connections == 1


def test_limits_requests_and_capabilities(tmp_path: Path) -> None:
    adapter = OkAdapter(GID, APP_KEY, SECRET, TOKEN, client=None)  # type: ignore[arg-type]
    [limit] = adapter.rate_limits()
    assert limit.scope.startswith("ok-token:") and TOKEN not in limit.scope and (limit.rate, limit.per) == (1, 5.0)
    assert adapter.lease_group == limit.scope
    assert OkAdapter(GID, APP_KEY, SECRET, "other-token", client=None).lease_group != limit.scope  # type: ignore[arg-type]
    assert adapter.requests_for(OutgoingPost("t")) == 1
    assert adapter.requests_for(OutgoingPost("t", media=media(tmp_path, 2))) == 3
    webp = MediaFile(tmp_path / "a.webp", "image/webp", 10)
    assert [p.message for p in OkAdapter.validate(OutgoingPost("t", media=(webp,)))] == [
        "a.webp: image/webp is not accepted by ok (image/gif, image/jpeg, image/png)"
    ]
    assert OkAdapter.validate(OutgoingPost("x" * 10_001))[0].message.endswith("ok allows 10000")


def test_importing_the_adapter_does_not_import_httpx() -> None:
    code = "import adapters.ok, sys; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# -- after publishing: results, audience, comments, deletion --------------------------------------------------------


def published(fake: FakeOk, text: str = "Measured") -> str:
    result: str = run(fake.url, lambda a: a.publish(OutgoingPost(text))).remote_id
    return result


def test_results_grow_with_the_topics_age(fake: FakeOk) -> None:
    topic = published(fake)
    fake.add_comment(topic, "600", "Olga", "Класс!")
    fake.advance(3600)
    first = run(fake.url, lambda a: a.read_results(topic))
    fake.advance(23 * 3600)
    later = run(fake.url, lambda a: a.read_results(topic))
    assert first.views is not None and later.views is not None and first.likes is not None
    assert 0 < first.views < later.views and first.likes < (later.likes or 0)
    assert (first.comments, first.reposts is not None, first.gone, first.notes) == (1, True, False, ())
    call = fake.calls("mediatopic.getByIds")[-1]
    assert call.params["topic_ids"] == topic and "media_topic.like_summary" in call.params["fields"]


def test_results_of_a_deleted_topic_say_gone(fake: FakeOk) -> None:
    topic = published(fake)
    fake.delete(topic)
    assert run(fake.url, lambda a: a.read_results(topic)) == PostResults(gone=True)


def test_results_without_valuable_access_name_it(fake: FakeOk) -> None:
    topic = published(fake)
    fake.users[TOKEN]["permissions"].discard("VALUABLE_ACCESS")
    error = fails(fake.url, lambda a: a.read_results(topic))
    assert type(error) is AuthError and error.code == 10 and "VALUABLE_ACCESS permission required" in str(error)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.respond(200, {"error_code": 2, "error_msg": "SERVICE : Service temporary unavailable"}), TransientError),
        (Fault.respond(200, {"error_code": 8, "error_msg": "FLOOD_BLOCKED : Flood blocked"}), RateLimited),
        (Fault.respond(502, b"Bad Gateway"), TransientError),
        (Fault.respond(200, {"error_code": 102, "error_msg": "PARAM_SESSION_EXPIRED"}), AuthError),
    ],
)
def test_results_errors_are_mapped(fake: FakeOk, fault: Fault, expected: type) -> None:
    fake.inject("mediatopic.getByIds", fault)
    assert type(fails(fake.url, lambda a: a.read_results("1"))) is expected


def test_audience_is_the_groups_members(fake: FakeOk) -> None:
    fake.members[GID] = 777
    assert run(fake.url, lambda a: a.read_audience()) == 777
    assert "members_count" in fake.calls("group.getInfo")[-1].params["fields"]


def test_comments_since_a_time_page_by_page_with_names(fake: FakeOk) -> None:
    topic = published(fake)
    start = datetime.now(UTC).timestamp()
    fake.add_comment(topic, "600", "Olga P", "old", at=start - 7200)
    for index in range(110):
        fake.add_comment(
            topic, "601" if index % 2 else "600", "Ivan" if index % 2 else "Olga P", f"c{index}", at=start + index
        )
    since = datetime.fromtimestamp(int(start), UTC)
    comments = run(fake.url, lambda a: a.read_comments(topic, since))
    assert [c.text for c in comments] == [f"c{index}" for index in range(110)]
    assert [c.author for c in comments[:2]] == ["Olga P", "Ivan"]
    assert comments[0].url == f"https://ok.ru/group/{GID}/topic/{topic}"
    assert [c.params["discussionType"] for c in fake.calls("discussions.getComments")] == ["GROUP_TOPIC"] * 2
    assert len(fake.calls("users.getInfo")) == 1


def test_delete(fake: FakeOk) -> None:
    topic = published(fake)
    now = datetime.now(UTC)
    run(fake.url, lambda a: a.delete_post(topic, now - timedelta(days=30), now))
    assert run(fake.url, lambda a: a.read_results(topic)).gone
    assert fake.calls("mediatopic.deleteTopic")[0].params["topic_id"] == topic


def test_deleting_a_topic_already_gone_succeeds(fake: FakeOk) -> None:
    topic = published(fake)
    fake.delete(topic)
    now = datetime.now(UTC)
    run(fake.url, lambda a: a.delete_post(topic, now, now))
    assert len(fake.calls("mediatopic.deleteTopic")) == 1


def test_a_delete_without_the_right_is_an_auth_error(fake: FakeOk) -> None:
    topic = published(fake)
    fake.set_membership("500000000001", "ACTIVE")
    now = datetime.now(UTC)
    error = fails(fake.url, lambda a: a.delete_post(topic, now, now))
    assert type(error) is AuthError and not run(fake.url, lambda a: a.read_results(topic)).gone


def test_a_delete_without_an_answer_is_ambiguous(fake: FakeOk) -> None:
    topic = published(fake)
    fake.inject("mediatopic.deleteTopic", Fault.delay(0.6))
    now = datetime.now(UTC)
    error = fails(fake.url, lambda a: a.delete_post(topic, now, now), timeout=0.25)
    assert type(error) is AmbiguousError and "may be deleted" in str(error)


def test_an_answer_of_an_unknown_shape_is_transient(fake: FakeOk) -> None:
    fake.inject("discussions.getComments", Fault.respond(200, {"comments": [{"text": "no id", "date_ms": 1}]}))
    error = fails(fake.url, lambda a: a.read_comments("1", datetime.fromtimestamp(0, UTC)))
    assert type(error) is TransientError and "discussions.getComments" in str(error)
