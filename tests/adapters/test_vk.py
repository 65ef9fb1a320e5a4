"""The VK adapter driving the real vk_api (and requests) against FakeVk over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.base import MediaFile, OutgoingPost, PostResults
from adapters.errors import AmbiguousError, AuthError, ContentRejected, PermanentError, RateLimited, TransientError
from adapters.vk import ERROR_6_PAUSE, CaptchaRequired, VkAdapter, build_session
from tests.fakes.base import Fault
from tests.fakes.telegram import make_jpeg, make_png
from tests.fakes.vk import COMMUNITY_TOKEN, USER_TOKEN, FakeGroup, FakeVk, error_body

T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[FakeVk]:
    server = FakeVk()
    server.start()
    yield server
    server.stop()


def adapter(fake: FakeVk, token: str = USER_TOKEN, group_id: int = 45, **kwargs: Any) -> VkAdapter:
    kwargs.setdefault("rps_delay", 0)
    return VkAdapter(token, group_id, api_url=fake.url, **kwargs)


def run(vk: VkAdapter, action: Callable[[VkAdapter], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await action(vk)
        finally:
            await vk.aclose()

    return asyncio.run(main())


def publish(vk: VkAdapter, post: OutgoingPost) -> Any:
    return run(vk, lambda a: a.publish(post))


def failure(vk: VkAdapter, action: Callable[[VkAdapter], Awaitable[Any]]) -> Exception:
    with pytest.raises(Exception) as info:
        run(vk, action)
    assert USER_TOKEN not in str(info.value) and COMMUNITY_TOKEN not in str(info.value)
    assert "not-real" not in str(info.value)
    return info.value


def photos(tmp_path: Path, count: int) -> tuple[MediaFile, ...]:
    items = []
    for i in range(count):
        jpeg = i % 2 == 0
        data = make_jpeg(8 + i, 6) if jpeg else make_png(8 + i, 6)
        path = tmp_path / f"photo{i}.{'jpg' if jpeg else 'png'}"
        path.write_bytes(data)
        items.append(MediaFile(path, "image/jpeg" if jpeg else "image/png", len(data), 8 + i, 6))
    return tuple(items)


# -- publishing --------------------------------------------------------------------------------------------------


def test_text_post(fake: FakeVk) -> None:
    result = publish(adapter(fake), OutgoingPost("Hello, wall", key="job-1:vk"))
    assert (result.remote_id, result.remote_url) == ("1", "https://vk.com/wall-45_1")
    [post] = fake.published
    assert post | {"time": 0} == {
        "owner_id": -45,
        "from_group": True,
        "message": "Hello, wall",
        "attachments": [],
        "guid": "job-1:vk",
        "publish_date": None,
        "post_id": 1,
        "time": 0,
        "deleted": False,
    }
    [call] = fake.calls("wall.post")
    assert call.form["v"] == "5.199"
    assert call.form["access_token"] == USER_TOKEN
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"


def test_link_is_one_extra_attachment(fake: FakeVk) -> None:
    publish(adapter(fake), OutgoingPost("Read this", link="https://example.com/a?b=1"))
    assert fake.published[0]["attachments"] == ["https://example.com/a?b=1"]
    assert fake.published[0]["message"] == "Read this"


def test_photos_go_through_the_wall_upload_flow(fake: FakeVk, tmp_path: Path) -> None:
    media = photos(tmp_path, 2)
    post = OutgoingPost("Two photos", media=media, link="https://example.com/")
    vk = adapter(fake)
    publish(vk, post)
    attachments = fake.published[0]["attachments"]
    assert attachments[-1] == "https://example.com/"
    assert [a.startswith("photo-45_") for a in attachments[:-1]] == [True, True]
    assert [fake.photos[a]["bytes"] for a in attachments[:-1]] == [m.size for m in media]
    uploads = fake.calls("upload")
    assert [list(u.files) for u in uploads] == [["photo"], ["photo"]]
    assert [(u.files["photo"].filename, u.files["photo"].content_type) for u in uploads] == [
        ("photo0.jpg", "image/jpeg"),
        ("photo1.png", "image/png"),
    ]
    assert fake.calls("photos.getWallUploadServer")[0].form["group_id"] == "45"
    assert len(fake.requests) == vk.requests_for(post) == 7


def test_ten_photos_leave_no_room_for_the_link_so_it_joins_the_text(fake: FakeVk, tmp_path: Path) -> None:
    publish(adapter(fake), OutgoingPost("Ten", media=photos(tmp_path, 10), link="https://example.com/"))
    assert fake.published[0]["message"] == "Ten\nhttps://example.com/"
    assert len(fake.published[0]["attachments"]) == 10


def test_same_key_twice_creates_one_post_within_the_guid_window(fake: FakeVk) -> None:
    post = OutgoingPost("Once", key="job-7:vk")

    async def twice(a: VkAdapter) -> list[Any]:
        return [await a.publish(post), await a.publish(post)]

    first, second = run(adapter(fake), twice)
    assert first == second
    assert len(fake.published) == 1
    fake.advance(3601)
    assert publish(adapter(fake), post).remote_id == "2"  # past the window, the guid no longer protects
    assert VkAdapter.idempotent_window == 3600.0


def test_the_session_rewrites_only_the_api_root_and_sets_a_deadline(fake: FakeVk) -> None:
    session = build_session(fake.url, timeout=0.3)
    answer = session.post("https://api.vk.ru/method/users.get", {"access_token": USER_TOKEN, "v": "5.199"})
    assert answer.json()["response"][0]["id"] == 1001
    assert fake.requests[-1].path == "/method/users.get"
    with FakeVk() as upload_server:  # any other host (VK's upload servers) is left alone
        session.post(f"{upload_server.url}/upload/wall?gid=45", files={"photo": ("a.png", make_png(1, 1))})
        assert [r.path for r in upload_server.requests] == ["/upload/wall"]
    assert len(fake.requests) == 1
    fake.inject("users.get", Fault.delay(1.0))
    started = time.monotonic()
    with pytest.raises(Exception, match=r"no complete answer within the 0\.3 s deadline"):
        session.post("https://api.vk.ru/method/users.get", {"access_token": USER_TOKEN})
    assert time.monotonic() - started < 0.9


def test_read_timeout_on_wall_post_is_ambiguous_and_bounded(fake: FakeVk) -> None:
    fake.inject("wall.post", Fault.delay(1.0))
    started = time.monotonic()
    exc = failure(adapter(fake, timeout=0.3), lambda a: a.publish(OutgoingPost("slow")))
    assert time.monotonic() - started < 0.9
    assert type(exc) is AmbiguousError
    assert "reconcile" in str(exc)


def test_error_6_is_raised_once_instead_of_retried_forever(fake: FakeVk) -> None:
    fake.inject("wall.post", *[Fault.respond(200, error_body(6, "Too many requests per second"))] * 5)
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("x")))
    assert type(exc) is RateLimited and exc.retry_after == ERROR_6_PAUSE == 0.5
    assert len(fake.calls("wall.post")) == 1


def test_the_fakes_rate_limit_surfaces_as_rate_limited(fake: FakeVk) -> None:
    fake.limits = True

    async def burst(a: VkAdapter) -> None:
        for i in range(4):  # a user token may make 3 requests a second
            await a.publish(OutgoingPost(f"post {i}"))

    exc = failure(adapter(fake), burst)
    assert type(exc) is RateLimited
    assert len(fake.published) == 3


@pytest.mark.parametrize("code", [118, 121, 129])
def test_a_refused_upload_is_redone_once(fake: FakeVk, tmp_path: Path, code: int) -> None:
    fake.inject("photos.saveWallPhoto", Fault.respond(200, error_body(code, "Invalid photo")))
    publish(adapter(fake), OutgoingPost("photo", media=photos(tmp_path, 1)))
    assert len(fake.calls("photos.getWallUploadServer")) == 2
    assert len(fake.calls("upload")) == 2
    assert len(fake.published[0]["attachments"]) == 1


def test_an_upload_refused_twice_is_content_rejected(fake: FakeVk, tmp_path: Path) -> None:
    fake.inject("photos.saveWallPhoto", *[Fault.respond(200, error_body(129, "Invalid photo"))] * 2)
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("photo", media=photos(tmp_path, 1))))
    assert type(exc) is ContentRejected
    assert "photo0.jpg" in str(exc) and "error 129" in str(exc)
    assert fake.calls("wall.post") == []


def test_an_unreadable_image_is_redone_then_rejected(fake: FakeVk, tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not an image")
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("x", media=(MediaFile(path, "image/jpeg", 12),))))
    assert type(exc) is ContentRejected
    assert len(fake.calls("upload")) == 2


# -- error mapping -----------------------------------------------------------------------------------------------


def api_error(code: int, message: str, **extra: Any) -> Fault:
    return Fault.respond(200, error_body(code, message, **extra))


ERROR_CASES = [
    ("wall.post", api_error(1, "Unknown error occurred"), TransientError, "error 1"),
    ("wall.post", api_error(10, "Internal server error"), TransientError, "error 10"),
    ("wall.post", api_error(9, "Flood control"), RateLimited, "10 minutes"),
    ("wall.post", api_error(29, "Rate limit reached"), RateLimited, "00:00 UTC"),
    (
        "wall.post",
        api_error(214, "Access to adding post denied: you can only add 50 posts a day"),
        RateLimited,
        "daily",
    ),
    ("wall.post", api_error(214, "Access to adding post denied"), AuthError, "admin or editor of club45"),
    ("wall.post", api_error(5, "User authorization failed: invalid session."), AuthError, "invalid or expired"),
    ("wall.post", api_error(27, "Group authorization failed"), AuthError, "community token"),
    ("wall.post", api_error(7, "Permission to perform this action is denied"), AuthError, "scopes wall,photos,offline"),
    ("wall.post", api_error(15, "Access denied"), AuthError, "admin or editor"),
    ("wall.post", api_error(17, "Validation required"), AuthError, "validated"),
    ("wall.post", api_error(100, "publish_date is invalid"), ContentRejected, "publish_date"),
    ("wall.post", api_error(222, "Hyperlinks are forbidden"), ContentRejected, "does not allow links"),
    ("wall.post", api_error(219, "Advertisement post was recently added"), ContentRejected, "error 219"),
    ("wall.post", api_error(220, "Too many recipients"), ContentRejected, "error 220"),
    ("wall.post", api_error(224, "Too many ads posts"), ContentRejected, "error 224"),
    ("wall.post", api_error(225, "Donut is disabled"), ContentRejected, "error 225"),
    ("wall.post", api_error(999, "Something new"), PermanentError, "error 999: Something new"),
    ("wall.post", api_error(5, f"invalid access_token {USER_TOKEN}"), AuthError, "<token>"),
    (
        "wall.post",
        api_error(14, "Captcha needed", captcha_sid="1", captcha_img="https://x/c"),
        CaptchaRequired,
        "captcha",
    ),
    ("wall.post", Fault.respond(500, b"oops"), TransientError, "HTTP 500"),
    ("wall.post", Fault.respond(503, b"busy"), TransientError, "HTTP 503"),
    ("wall.post", Fault.respond(404, b"nope"), PermanentError, "api_url"),
    ("wall.post", Fault.respond(200, b"<html>not json</html>"), AmbiguousError, "reconcile"),
    ("wall.post", Fault.drop_after(), AmbiguousError, "dropped during wall.post"),
    ("wall.post", Fault.drop_before(), AmbiguousError, "dropped during wall.post"),
    ("wall.post", Fault.delay(0.6), AmbiguousError, "did not answer wall.post in time"),
    ("photos.getWallUploadServer", Fault.drop_after(), TransientError, "retry later"),
    ("photos.getWallUploadServer", Fault.delay(0.6), TransientError, "retry later"),
    ("upload", Fault.drop_after(), TransientError, "uploading photo0.jpg"),
    ("upload", Fault.respond(502, b"bad gateway"), TransientError, "HTTP 502"),
    ("photos.saveWallPhoto", Fault.drop_after(), TransientError, "retry later"),
    ("photos.saveWallPhoto", api_error(27, "Group authorization failed"), AuthError, "community token"),
]


@pytest.mark.parametrize(("method", "fault", "expected", "fragment"), ERROR_CASES)
def test_error_mapping(fake: FakeVk, tmp_path: Path, method: str, fault: Fault, expected: type, fragment: str) -> None:
    fake.inject(method, fault)
    post = OutgoingPost("text", media=() if method == "wall.post" else photos(tmp_path, 1))
    exc = failure(adapter(fake, timeout=0.3), lambda a: a.publish(post))
    assert type(exc) is expected, exc
    assert fragment in str(exc)
    if isinstance(exc, RateLimited):
        assert exc.retry_after is not None and 60 <= exc.retry_after <= 86400
    if isinstance(exc, CaptchaRequired):
        assert exc.needs_attention and isinstance(exc, PermanentError)
    if method != "wall.post":
        assert fake.published == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_transient() -> None:
    vk = VkAdapter(USER_TOKEN, 45, api_url=f"http://127.0.0.1:{closed_port()}", rps_delay=0, timeout=0.5)
    exc = failure(vk, lambda a: a.publish(OutgoingPost("text")))
    assert type(exc) is TransientError
    assert "could not connect to VK for wall.post; nothing was sent" in str(exc)


def test_connect_timeout_is_transient() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):  # fill the accept queue: further connections hang in SYN
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            vk = VkAdapter(USER_TOKEN, 45, api_url=f"http://127.0.0.1:{port}", rps_delay=0, timeout=0.3)
            exc = failure(vk, lambda a: a.publish(OutgoingPost("text")))
        finally:
            for filler in fillers:
                filler.close()
    assert type(exc) is TransientError
    assert "in time" in str(exc)


def test_revoked_token(fake: FakeVk) -> None:
    fake.revoke_token(USER_TOKEN)
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("text")))
    assert type(exc) is AuthError
    assert "get a new user token of a community admin" in str(exc)


# -- reading back and native scheduling --------------------------------------------------------------------------


def test_find_published(fake: FakeVk, tmp_path: Path) -> None:
    media = photos(tmp_path, 2)
    post = OutgoingPost("Find me", media=media, link="https://example.com/")
    since = datetime.now(UTC)

    async def scenario(a: VkAdapter) -> list[Any]:
        published = await a.publish(OutgoingPost("Other"))
        published = await a.publish(post)
        return [
            published,
            await a.find_published(post, since),
            await a.find_published(OutgoingPost("Find me!", media=media), since),
            await a.find_published(OutgoingPost("Find me", media=media[:1]), since),
            await a.find_published(post, since + timedelta(minutes=5)),
        ]

    published, found, other_text, other_photos, too_late = run(adapter(fake), scenario)
    assert found == published and found.remote_id == "2"
    assert (other_text, other_photos, too_late) == (None, None, None)
    assert {c.form["filter"] for c in fake.calls("wall.get")} == {"owner"}
    assert fake.calls("wall.get")[0].form["count"] == "50"


def test_native_schedule_and_cancel(fake: FakeVk) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    post = OutgoingPost("Later", key="job-9:vk", publish_at=at)

    async def scenario(a: VkAdapter) -> list[Any]:
        result = await a.publish(post)
        found = await a.find_published(post, datetime.now(UTC))
        await a.cancel_scheduled(result.remote_id)
        gone = await a.find_published(post, datetime.now(UTC))
        return [result, found, gone]

    result, found, gone = run(adapter(fake), scenario)
    assert VkAdapter.supports_native_schedule
    assert fake.published[0]["publish_date"] == int(at.timestamp())
    assert found == result
    assert gone is None
    assert fake.published[0]["deleted"] is True
    assert fake.calls("wall.delete")[0].form == {
        "owner_id": "-45",
        "post_id": result.remote_id,
        "v": "5.199",
        "access_token": USER_TOKEN,
    }
    assert {c.form["filter"] for c in fake.calls("wall.get")} == {"owner", "postponed"}


def test_naive_publish_at_is_utc(fake: FakeVk) -> None:
    at = datetime.now(UTC).replace(microsecond=0, tzinfo=None) + timedelta(hours=1)
    publish(adapter(fake), OutgoingPost("Later", publish_at=at))
    assert fake.published[0]["publish_date"] == int(at.replace(tzinfo=UTC).timestamp())


# -- check(), limits, pacing -------------------------------------------------------------------------------------


def test_check_ok(fake: FakeVk) -> None:
    assert run(adapter(fake), lambda a: a.check()) == "user 1001 is an editor of club45 and can post"
    fake.groups[45].managers[1001] = 3
    assert run(adapter(fake), lambda a: a.check()) == "user 1001 is an administrator of club45 and can post"


@pytest.mark.parametrize(
    ("token", "managers", "fragment"),
    [
        (COMMUNITY_TOKEN, {1001: 2}, "a community token was given"),
        ("vk1.a.WRONG-not-real", {1001: 2}, "invalid or expired"),
        (USER_TOKEN, {1001: 1}, "user 1001 is a moderator of club45, who cannot post"),
        (USER_TOKEN, {}, "user 1001 is not a manager of club45"),
    ],
)
def test_check_fails_with_the_fix(fake: FakeVk, token: str, managers: dict[int, int], fragment: str) -> None:
    fake.groups[45].managers = managers
    exc = failure(adapter(fake, token=token), lambda a: a.check())
    assert type(exc) is AuthError
    assert fragment in str(exc)
    assert "not-real" not in str(exc)


def test_a_token_without_the_wall_right_is_refused_as_vk_refuses_it_and_says_how_to_get_it(fake: FakeVk) -> None:
    fake.rights[USER_TOKEN] = {"photos", "offline", "groups"}
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("text")))
    assert type(exc) is AuthError and exc.needs_attention and exc.code == 15
    assert "VK refused wall.post (error 15: Access denied: no access to call this method)" in str(exc)
    assert "VK grants a user token the wall right only on request to its support (devsupport@corp.vk.com" in str(exc)
    assert fake.published == []


def test_check_finds_a_token_without_the_wall_right_before_any_post_is_refused(fake: FakeVk) -> None:
    fake.rights[USER_TOKEN] = {"photos", "offline"}
    exc = failure(adapter(fake), lambda a: a.check())
    assert type(exc) is AuthError
    assert str(exc).startswith(
        "the token of user 1001 has no wall right, so VK refuses wall.post: VK grants a user token the wall right "
        "only on request to its support (devsupport@corp.vk.com"
    )
    assert fake.calls("wall.post") == []
    [asked] = fake.calls("account.getAppPermissions")
    assert "user_id" not in asked.form  # the token's own user


def test_check_network_failure_is_transient(fake: FakeVk) -> None:
    fake.inject("users.get", Fault.drop_after())
    exc = failure(adapter(fake), lambda a: a.check())
    assert type(exc) is TransientError


def test_rate_limits_and_requests(fake: FakeVk, tmp_path: Path) -> None:
    vk = adapter(fake)
    [limit] = vk.rate_limits()
    assert limit.scope.startswith("vk-token:") and len(limit.scope) == len("vk-token:") + 12
    assert (limit.rate, limit.per, limit.unit) == (3, 1, "request")
    assert "not-real" not in limit.scope
    assert vk.lease_group == limit.scope
    assert adapter(fake, group_id=46).lease_group == limit.scope  # one token, one budget
    assert vk.requests_for(OutgoingPost("x")) == 1
    assert vk.requests_for(OutgoingPost("x", media=photos(tmp_path, 3))) == 10


def test_pacing_is_vk_apis_by_default_and_settable(fake: FakeVk) -> None:
    assert VkAdapter(USER_TOKEN, 45).rps_delay == 0.34
    vk = adapter(fake, rps_delay=0.15)
    started = time.monotonic()
    run(vk, lambda a: a.check())  # three calls: two waits
    assert time.monotonic() - started >= 0.3
    vk.rps_delay = 0
    started = time.monotonic()
    run(vk, lambda a: a.check())
    assert time.monotonic() - started < 0.3


def test_group_id_may_be_given_negative(fake: FakeVk) -> None:
    assert publish(adapter(fake, group_id=-45), OutgoingPost("x")).remote_url == "https://vk.com/wall-45_1"


def test_capabilities(tmp_path: Path) -> None:
    gif = MediaFile(tmp_path / "a.gif", "image/gif", 10, 10, 10)
    webp = MediaFile(tmp_path / "a.webp", "image/webp", 10, 10, 10)
    wide = MediaFile(tmp_path / "w.jpg", "image/jpeg", 10, 2100, 100)
    assert VkAdapter.validate(OutgoingPost("x", media=(gif,))) == []
    assert [p.message for p in VkAdapter.validate(OutgoingPost("x", media=(webp, wide)))] == [
        "a.webp: image/webp is not accepted by vk (image/gif, image/jpeg, image/png)",
        "w.jpg: aspect ratio 21.0:1; vk allows at most 20:1",
    ]
    assert (
        VkAdapter.validate(OutgoingPost("x" * 16001))[0].message == "the text is 16001 characters long; vk allows 16000"
    )


def test_a_second_manager_group_is_a_separate_wall(fake: FakeVk) -> None:
    fake.groups[46] = FakeGroup(46, screen_name="second")
    assert publish(adapter(fake, group_id=46), OutgoingPost("x")).remote_url == "https://vk.com/wall-46_1"
    assert fake.published[0]["owner_id"] == -46


def test_the_fakes_daily_post_limit_is_rate_limited_until_tomorrow(fake: FakeVk) -> None:
    fake.limits = True
    fake.groups[45].posts.extend([fake.now()] * 50)
    exc = failure(adapter(fake), lambda a: a.publish(OutgoingPost("51st")))
    assert type(exc) is RateLimited
    assert "you can only add 50 posts a day" in str(exc)
    assert exc.retry_after is not None and 60 <= exc.retry_after <= 86400
    fake.advance(86401)
    assert publish(adapter(fake), OutgoingPost("next day")).remote_id == "1"


def test_the_fakes_other_read_methods(fake: FakeVk) -> None:
    session = build_session(fake.url)
    publish(adapter(fake), OutgoingPost("one"))

    def call(method: str, **values: Any) -> Any:
        answer = session.post(
            f"https://api.vk.ru/method/{method}", {"access_token": USER_TOKEN, "v": "5.199", **values}
        )
        return answer.json()

    assert call("groups.get", filter="admin,editor")["response"] == {"count": 1, "items": [45]}
    assert call("groups.get", filter="admin")["response"] == {"count": 0, "items": []}
    [post] = call("wall.getById", posts="-45_1")["response"]["items"]
    assert (post["id"], post["text"], post["post_type"]) == (1, "one", "post")
    assert call("wall.post", owner_id=-45, from_group=1, message="x", access_token="nope")["error"]["error_code"] == 5


def test_importing_the_adapter_does_not_import_the_client_library() -> None:
    code = (
        "import sys, adapters.vk;"
        "assert not {'vk_api', 'requests', 'telegram', 'httpx'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- after publishing: results, audience, comments, deletion --------------------------------------------------------


def test_results_grow_with_the_posts_age(fake: FakeVk) -> None:
    vk = adapter(fake)
    post_id = publish(vk, OutgoingPost("measured")).remote_id
    fake.add_comment(-45, int(post_id), 1001, "first!")
    fake.advance(3600)
    first = run(adapter(fake), lambda a: a.read_results(post_id))
    fake.advance(23 * 3600)
    later = run(adapter(fake), lambda a: a.read_results(post_id))
    assert first.views is not None and later.views is not None and first.likes is not None
    assert 0 < first.views < later.views and first.likes <= (later.likes or 0)
    assert (first.comments, first.gone, first.notes) == (1, False, ())
    assert fake.calls("wall.getById")[-1].params["posts"] == f"-45_{post_id}"


def test_results_of_a_deleted_post_say_gone(fake: FakeVk) -> None:
    post_id = publish(adapter(fake), OutgoingPost("short-lived")).remote_id
    fake.published[0]["deleted"] = True
    assert run(adapter(fake), lambda a: a.read_results(post_id)) == PostResults(gone=True)


def test_results_without_the_wall_right_name_it(fake: FakeVk) -> None:
    post_id = publish(adapter(fake), OutgoingPost("x")).remote_id
    fake.rights[USER_TOKEN] = {"photos", "offline", "groups"}
    exc = failure(adapter(fake), lambda a: a.read_results(post_id))
    assert type(exc) is AuthError and exc.code == 15 and "wall right" in str(exc)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.respond(500, b"oops"), TransientError),
        (Fault.respond(200, error_body(10, "Internal server error")), TransientError),
        (Fault.respond(200, error_body(6, "Too many requests per second")), RateLimited),
        (Fault.respond(200, error_body(5, "User authorization failed")), AuthError),
    ],
)
def test_results_errors_are_mapped(fake: FakeVk, fault: Fault, expected: type) -> None:
    fake.inject("wall.getById", fault)
    assert type(failure(adapter(fake), lambda a: a.read_results("1"))) is expected


def test_audience_is_the_members_count(fake: FakeVk) -> None:
    fake.groups[45].members = 4321
    assert run(adapter(fake), lambda a: a.read_audience()) == 4321
    assert fake.calls("groups.getById")[-1].params["fields"] == "members_count"


def test_comments_since_a_time_oldest_first_with_names_and_links(fake: FakeVk) -> None:
    post_id = int(publish(adapter(fake), OutgoingPost("talk to us")).remote_id)
    start = fake.now()
    fake.people[7] = ("Anna", "Smirnova")
    fake.add_comment(-45, post_id, 7, "old news", at=start - 7200)
    fake.add_comment(-45, post_id, 7, "hello", at=start)
    fake.add_comment(-45, post_id, -45, "thanks!", at=start + 60)
    since = datetime.fromtimestamp(start - 60, UTC)
    comments = run(adapter(fake), lambda a: a.read_comments(str(post_id), since))
    assert [(c.author, c.text) for c in comments] == [("Anna Smirnova", "hello"), ("Test community", "thanks!")]
    assert comments[0].url == f"https://vk.com/wall-45_{post_id}?reply={comments[0].remote_id}"
    assert comments[0].created_at == datetime.fromtimestamp(int(start), UTC)


def test_comments_are_read_page_by_page(fake: FakeVk) -> None:
    post_id = int(publish(adapter(fake), OutgoingPost("popular")).remote_id)
    start = fake.now()
    for index in range(130):
        fake.add_comment(-45, post_id, 1001, f"c{index}", at=start + index)
    since = datetime.fromtimestamp(int(start), UTC)
    comments = run(adapter(fake), lambda a: a.read_comments(str(post_id), since))
    assert [c.text for c in comments] == [f"c{index}" for index in range(130)]
    assert len(fake.calls("wall.getComments")) == 2


def test_replies_in_threads_are_read_inline_or_thread_by_thread(fake: FakeVk) -> None:
    post_id = int(publish(adapter(fake), OutgoingPost("discuss")).remote_id)
    start = fake.now()
    old = fake.add_comment(-45, post_id, 7, "an old comment", at=start - 7200)
    fake.add_comment(-45, post_id, 8, "a new reply to it", at=start + 5, reply_to=old)
    busy = fake.add_comment(-45, post_id, 7, "a busy comment", at=start)
    for index in range(12):  # more than VK shows inline: its thread is read on its own
        fake.add_comment(-45, post_id, 9, f"reply {index}", at=start + 10 + index, reply_to=busy)
    since = datetime.fromtimestamp(int(start), UTC)
    comments = run(adapter(fake), lambda a: a.read_comments(str(post_id), since))
    expected = ["a busy comment", "a new reply to it", *(f"reply {index}" for index in range(12))]
    assert [c.text for c in comments] == expected
    calls = fake.calls("wall.getComments")
    assert [c.params.get("comment_id") for c in calls] == [None, str(busy)]
    assert calls[0].params["thread_items_count"] == "10"


def test_delete(fake: FakeVk) -> None:
    post_id = publish(adapter(fake), OutgoingPost("a sale that ended")).remote_id
    now = datetime.now(UTC)
    run(adapter(fake), lambda a: a.delete_post(post_id, now - timedelta(days=90), now))
    assert fake.published[0]["deleted"] and fake.posts(-45) == []


def test_deleting_a_post_already_gone_succeeds(fake: FakeVk) -> None:
    post_id = publish(adapter(fake), OutgoingPost("gone")).remote_id
    fake.published[0]["deleted"] = True
    now = datetime.now(UTC)
    run(adapter(fake), lambda a: a.delete_post(post_id, now, now))
    assert len(fake.calls("wall.delete")) == 1 and len(fake.calls("wall.getById")) == 1


def test_a_delete_refused_for_another_reason_is_not_taken_for_gone(fake: FakeVk) -> None:
    post_id = publish(adapter(fake), OutgoingPost("kept")).remote_id
    fake.inject("wall.delete", Fault.respond(200, error_body(100, "One of the parameters specified was missing")))
    now = datetime.now(UTC)
    exc = failure(adapter(fake), lambda a: a.delete_post(post_id, now, now))
    assert isinstance(exc, PermanentError) and not fake.published[0]["deleted"]


def test_a_delete_without_an_answer_is_ambiguous(fake: FakeVk) -> None:
    post_id = publish(adapter(fake), OutgoingPost("slow")).remote_id
    fake.inject("wall.delete", Fault.delay(1.0))
    now = datetime.now(UTC)
    exc = failure(adapter(fake, timeout=0.3), lambda a: a.delete_post(post_id, now, now))
    assert type(exc) is AmbiguousError and "may be deleted" in str(exc)


def test_vk_can_do_everything_after_publishing() -> None:
    assert VkAdapter.unsupported == {} and VkAdapter.capabilities.delete_window is None


def test_an_answer_of_an_unknown_shape_is_transient(fake: FakeVk) -> None:
    fake.inject("wall.getById", Fault.respond(200, {"response": {"items": [{"id": "x1"}]}}))
    exc = failure(adapter(fake), lambda a: a.read_results("1"))
    assert type(exc) is TransientError and "wall.getById" in str(exc)
