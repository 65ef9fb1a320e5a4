"""Deleting published posts (``smm delete``) on every network through its fake: the request, the daemon's attempt,
its retries, an unclear answer settled by reading the post back, and the refusals."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from scheduler import store
from scheduler.alerts import Alert
from scheduler.channels import AdapterFactory
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.deleting import Deleter
from scheduler.intake import NewPost, add_post
from scheduler.models import Delivery
from scheduler.publisher import Publisher
from scheduler.ratelimit import Limiter
from scheduler.service import show_post
from scheduler.store import deletions
from scheduler.timefmt import format_local
from tests.conftest import run_cli, write_config
from tests.fakes.base import Fault
from tests.fakes.facebook import FakeFacebook
from tests.fakes.ok import FakeOk
from tests.fakes.telegram import DEFAULT_TOKEN, FakeTelegram, make_png
from tests.fakes.telegram import error_body as telegram_error
from tests.fakes.vk import GROUP_ID, USER_TOKEN, FakeVk
from tests.fakes.vk import error_body as vk_error

NETWORKS = ("vk", "facebook", "ok", "telegram", "outbox")
#: The fault key of each network's delete call.
DELETE_CALL = {"vk": "wall.delete", "facebook": "delete", "ok": "mediatopic.deleteTopic", "telegram": "deleteMessage"}
FAST = '[daemon]\nreconcile_delay = "1s"\n[retry]\nin_call_attempts = 1\nbackoff_base = "1s"\n'


def now() -> datetime:
    return datetime.now(UTC)


class World:
    """One channel ``ch`` on ``network``'s fake, and the daemon's parts that publish and delete on it."""

    def __init__(self, tmp_path: Path, db_url: str, network: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.network = network
        self.fake: Any = None
        if network == "vk":
            self.fake = FakeVk().start()
            table = f'group_id = {GROUP_ID}\ntoken_env = "TOKEN"\n'
            env = {"TOKEN": USER_TOKEN}
        elif network == "facebook":
            self.fake = FakeFacebook().start()
            table = f'page_id = {self.fake.page_id}\ntoken_env = "TOKEN"\n'
            env = {"TOKEN": self.fake.token}
        elif network == "ok":
            self.fake = FakeOk().start()
            table = (
                f'group_id = {self.fake.group_id}\napplication_key = "{self.fake.application_key}"\n'
                'application_secret_env = "SECRET"\ntoken_env = "TOKEN"\n'
            )
            env = {"SECRET": self.fake.application_secret, "TOKEN": self.fake.token}
        elif network == "telegram":
            self.fake = FakeTelegram().start()
            table = 'chat_id = "@testchannel"\ntoken_env = "TOKEN"\n'
            env = {"TOKEN": DEFAULT_TOKEN}
        else:
            table, env = f'path = "{tmp_path / "posts"}"\n', {}
        if self.fake is not None:
            table += f'api_url = "{self.fake.url}"\ntimeout = "1s"\n'
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        body = f'[[channels]]\nname = "ch"\nnetwork = "{network}"\n{table}'
        self.config = load_config(write_config(tmp_path / "config.toml", db_url, body, outbox=False, extra_top=FAST))
        self.channel = self.config.channel("ch")
        self.db = Database(self.config.database_url)
        self.db.check_schema(create=True)
        self.adapter = AdapterFactory().build(self.channel)
        if network == "vk":
            self.adapter.rps_delay = 0  # type: ignore[attr-defined]
        self.alerts: list[Alert] = []
        self.publisher = Publisher(self.config, self.db_call, Limiter(), now, time.monotonic, alert=self.alerts.append)
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.run_until_complete(self.adapter.aclose())
        self.loop.close()
        self.db.dispose()
        if self.fake is not None:
            self.fake.stop()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def db_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.sync(fn, *args, **kwargs)

    def sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.db.write() as session:
            return fn(session, *args, **kwargs)

    def published(self, text: str = "a sale", media: tuple[Path, ...] = ()) -> int:
        """A post published on ``ch`` (claimed and published as a worker does)."""
        view = add_post(self.config, self.db, NewPost(text=text, channels=["ch"], media=media, now=True), now())
        claim = self.sync(store.claim, "ch", now(), "me", timedelta(minutes=5))
        assert claim is not None and claim.post_id == view["id"]
        assert self.run(self.publisher.publish(claim, self.adapter, self.channel))
        return int(view["id"])

    def work(self, owner: str = "me") -> int:
        """What the daemon's deletion job does: claim each deletion due and carry it out; how many it claimed."""
        claimed = 0
        for delivery_id, _, _ in self.sync(deletions.deletions_due, now(), ["ch"]):
            deletion = self.sync(deletions.claim_deletion, delivery_id, now(), owner, timedelta(minutes=1))
            if deletion is not None:
                claimed += 1
                self.run(Deleter(self.publisher, owner).delete(deletion, self.adapter))
        return claimed

    def delivery(self, post_id: int) -> dict[str, Any]:
        return dict(show_post(self.db, post_id)["deliveries"][0])

    def delete_calls(self) -> int:
        return len(self.fake.calls(DELETE_CALL[self.network])) if self.fake is not None else 0

    def live(self, remote_id: str) -> bool:
        """Whether the network still shows the post."""
        if self.network == "outbox":
            return (Path(self.channel.options["path"]) / remote_id).exists()
        if self.network == "ok":
            return any(t["id"] == remote_id and not t.get("deleted") for t in self.fake._topics)
        if self.network == "telegram":
            return any(str(p["message_id"]) == remote_id and not p["deleted"] for p in self.fake.published)
        key = "post_id" if self.network == "vk" else "id"
        return any(str(p[key]) == remote_id and not p["deleted"] for p in self.fake.published)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    w = World(tmp_path, db_url, request.param, monkeypatch)
    yield w
    w.close()


def cli(w: World, *args: str) -> Any:
    return run_cli(*args, config=w.config.path)


@pytest.mark.parametrize("world", NETWORKS, indirect=True)
def test_a_published_post_is_deleted_on_its_network(world: World) -> None:
    post_id = world.published()
    remote_id = world.delivery(post_id)["remote_id"]
    assert world.live(remote_id)
    result = cli(world, "delete", str(post_id))
    assert result.code == 0, result.err
    assert f"ch: deleting {world.delivery(post_id)['remote_url']}" in result.out
    assert "smm run --once" in result.out
    assert world.delivery(post_id)["delete_at"] is not None
    assert world.work() == 1
    assert not world.live(remote_id)
    assert world.delete_calls() == (0 if world.network == "outbox" else 1)
    shown = json.loads(cli(world, "show", str(post_id), "--json").out)["deliveries"][0]
    assert shown["status"] == "deleted" and shown["deleted_at"] is not None and shown["delete_at"] is None
    assert [(a["kind"], a["outcome"]) for a in shown["history"]] == [("publish", "published"), ("delete", "deleted")]
    text = cli(world, "show", str(post_id)).out
    assert "deleted" in text and "ch delete attempt 1:" in text
    assert "deleted" in cli(world, "queue", "--all").out
    assert world.work() == 0  # nothing more to do


@pytest.mark.parametrize("fault", ["timeout", "dropped"])
@pytest.mark.parametrize("world", ["vk", "facebook", "ok", "telegram"], indirect=True)
def test_a_deletion_whose_answer_is_lost_is_read_back_before_any_resend(world: World, fault: str) -> None:
    post_id = world.published()
    remote_id = world.delivery(post_id)["remote_id"]
    assert cli(world, "delete", str(post_id)).code == 0
    # Deleted there, the answer lost: past the channel's 1 s timeout, or the connection closed.
    lost = Fault.delay(1.3) if fault == "timeout" else Fault.drop_after()
    world.fake.inject(DELETE_CALL[world.network], lost)
    assert world.work() == 1
    time.sleep(0.4 if fault == "timeout" else 0)  # the fake applies it when its delay ends
    unclear = world.delivery(post_id)
    assert unclear["status"] == "published" and "unclear" in unclear["last_error"]
    assert not world.live(remote_id) and world.delete_calls() == 1
    assert world.work() == 0  # leased until the check: nobody sends it again meanwhile
    time.sleep(1.1)  # reconcile_delay
    assert world.work() == 1
    done = world.delivery(post_id)
    assert done["status"] == "deleted" and done["deleted_at"] is not None
    history = show_post(world.db, post_id)["deliveries"][0]["history"]
    if world.network == "telegram":
        # The Bot API cannot read a message back: the delete is sent again, and "not found" counts as done.
        assert world.delete_calls() == 2
        assert [a["outcome"] for a in history[1:]] == ["abandoned", "deleted"]
    else:
        assert world.delete_calls() == 1
        assert [a["outcome"] for a in history[1:]] == ["deleted"]
        assert "read back" in (history[-1]["error"] or "")


@pytest.mark.parametrize("world", ["vk"], indirect=True)
def test_a_deletion_lost_before_it_arrived_is_sent_again_after_the_read_back(world: World) -> None:
    post_id = world.published()
    remote_id = world.delivery(post_id)["remote_id"]
    assert cli(world, "delete", str(post_id)).code == 0
    world.fake.inject("wall.delete", Fault.delay(1.5))  # past the 1 s timeout: VK deletes it, the answer is lost
    world.fake.inject("wall.getById", Fault.respond(200, vk_error(10, "Internal server error")))
    assert world.work() == 1
    time.sleep(1.6)
    assert not world.live(remote_id)
    # The first read-back fails: the delivery stays in doubt, nothing is sent.
    assert world.work() == 1
    assert world.delivery(post_id)["status"] == "published" and world.delete_calls() == 1
    assert "reading the post back" in world.delivery(post_id)["last_error"]


@pytest.mark.parametrize("world", ["vk"], indirect=True)
def test_a_post_still_there_after_an_unclear_deletion_is_deleted_again(world: World) -> None:
    post_id = world.published()
    remote_id = world.delivery(post_id)["remote_id"]
    assert cli(world, "delete", str(post_id)).code == 0
    world.fake.inject("wall.delete", Fault.drop_before())  # never arrived
    assert world.work() == 1
    assert world.live(remote_id) and world.delivery(post_id)["status"] == "published"
    time.sleep(1.1)
    assert world.work() == 1
    assert not world.live(remote_id) and world.delivery(post_id)["status"] == "deleted"
    history = show_post(world.db, post_id)["deliveries"][0]["history"]
    assert [(a["kind"], a["outcome"]) for a in history[1:]] == [("delete", "transient"), ("delete", "deleted")]


#: A passing error of each network's delete call that surely deleted nothing, in the network's own wire format (a
#: server error from Facebook or OK may have deleted the post: that is an unclear answer, read back first).
TRANSIENT = {
    "vk": Fault.respond(200, vk_error(6, "Too many requests per second")),
    "facebook": Fault.respond(
        400, {"error": {"message": "(#32) Page request limit reached", "type": "OAuthException", "code": 32}}
    ),
    "ok": Fault.respond(200, {"error_code": 1, "error_msg": "UNKNOWN : Unknown error", "error_data": None}),
    "telegram": Fault.respond(502, telegram_error(502, "Bad Gateway")),
}


@pytest.mark.parametrize("world", ["vk", "facebook", "ok", "telegram"], indirect=True)
def test_a_transient_error_is_retried_with_backoff(world: World) -> None:
    post_id = world.published()
    remote_id = world.delivery(post_id)["remote_id"]
    assert cli(world, "delete", str(post_id)).code == 0
    world.fake.inject(DELETE_CALL[world.network], TRANSIENT[world.network])
    assert world.work() == 1
    waiting = world.delivery(post_id)
    assert waiting["status"] == "published" and "deleting:" in waiting["last_error"]
    assert datetime.fromisoformat(waiting["delete_at"].replace("Z", "+00:00")) > now()
    assert world.work() == 0  # not before its backoff
    time.sleep(1.5)
    assert world.work() == 1
    assert world.delivery(post_id)["status"] == "deleted" and not world.live(remote_id)
    assert world.delete_calls() == 2


def album_and_text(world: World, tmp_path: Path) -> int:
    """A Telegram post of four messages: an album of 3 photos, then its text, too long for their caption."""
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"photo{i}.png")
        photos[-1].write_bytes(make_png(4 + i, 3))
    post_id = world.published("word " * 300, media=tuple(photos))
    sent = world.fake.published
    assert [m["method"] for m in sent] == ["sendMediaGroup"] * 3 + ["sendMessage"]
    assert world.delivery(post_id)["remote_id"] == str(sent[0]["message_id"])  # the CLI and JSON show the first
    return post_id


def telegram_messages_left(world: World) -> list[int]:
    return [m["message_id"] for m in world.fake.published if not m["deleted"]]


@pytest.mark.parametrize("world", ["telegram"], indirect=True)
def test_every_message_of_a_telegram_post_is_deleted(world: World, tmp_path: Path) -> None:
    post_id = album_and_text(world, tmp_path)
    assert telegram_messages_left(world) == [1, 2, 3, 4]
    result = cli(world, "delete", str(post_id))
    assert result.code == 0, result.err
    assert world.work() == 1
    assert telegram_messages_left(world) == []
    (call,) = world.fake.calls("deleteMessages")
    assert call.params["message_ids"] == "[1, 2, 3, 4]" and world.delete_calls() == 0  # one request, no deleteMessage
    assert world.delivery(post_id)["status"] == "deleted"


@pytest.mark.parametrize("fault", ["timeout", "dropped"])
@pytest.mark.parametrize("world", ["telegram"], indirect=True)
def test_an_unclear_deletion_of_a_telegram_album_is_sent_again(world: World, tmp_path: Path, fault: str) -> None:
    post_id = album_and_text(world, tmp_path)
    assert cli(world, "delete", str(post_id)).code == 0
    world.fake.inject("deleteMessages", Fault.delay(1.3) if fault == "timeout" else Fault.drop_after())
    assert world.work() == 1
    time.sleep(0.4 if fault == "timeout" else 0)  # the fake applies it when its delay ends
    unclear = world.delivery(post_id)
    assert unclear["status"] == "published" and "messages 1, 2, 3, 4 may be deleted" in unclear["last_error"]
    assert telegram_messages_left(world) == []
    assert world.work() == 0  # leased until the check
    time.sleep(1.1)  # reconcile_delay
    assert world.work() == 1
    # No read-back on Telegram: the same messages are deleted again, all skipped as gone, which counts as done.
    assert world.delivery(post_id)["status"] == "deleted"
    assert [c.params["message_ids"] for c in world.fake.calls("deleteMessages")] == ["[1, 2, 3, 4]"] * 2
    history = show_post(world.db, post_id)["deliveries"][0]["history"]
    assert [a["outcome"] for a in history[1:]] == ["abandoned", "deleted"]


@pytest.mark.parametrize("world", ["telegram"], indirect=True)
def test_a_telegram_post_published_before_its_messages_were_kept_deletes_its_first(
    world: World, tmp_path: Path
) -> None:
    post_id = album_and_text(world, tmp_path)
    world.sync(lambda s: s.execute(update(Delivery).values(more_remote_ids=None)))  # as migration 0012 left it
    assert cli(world, "delete", str(post_id)).code == 0
    assert world.work() == 1
    assert telegram_messages_left(world) == [2, 3, 4]  # as before: only the id it kept
    assert world.delete_calls() == 1 and world.fake.calls("deleteMessages") == []
    assert world.delivery(post_id)["status"] == "deleted"


@pytest.mark.parametrize("world", ["telegram"], indirect=True)
def test_telegram_refuses_a_message_older_than_48_hours(world: World) -> None:
    post_id = world.published()
    old = now() - timedelta(hours=49)
    world.sync(lambda s: s.execute(update(Delivery).values(published_at=old)))
    result = cli(world, "delete", str(post_id))
    assert result.code == 2 and result.out == ""
    assert "48 hours" in result.err and len(result.err.strip().splitlines()) == 1
    assert world.delivery(post_id)["delete_at"] is None
    # A request made in time but carried out too late: refused before any request, the operator told.
    world.sync(lambda s: s.execute(update(Delivery).values(delete_at=now())))
    assert world.work() == 1
    kept = world.delivery(post_id)
    assert kept["status"] == "published" and "48 hours" in kept["last_error"] and kept["delete_at"] is None
    assert world.delete_calls() == 0
    assert [a.event for a in world.alerts] == ["delivery_failed"]
    assert "48 hours" in cli(world, "show", str(post_id)).out


@pytest.mark.parametrize("world", ["outbox"], indirect=True)
def test_refusals_write_nothing(world: World) -> None:
    assert cli(world, "delete", "99").code == 2
    queued = add_post(world.config, world.db, NewPost(text="later", channels=["ch"], next=True), now())
    result = cli(world, "delete", str(queued["id"]))
    assert result.code == 2 and "nothing published" in result.err and "smm cancel" in result.err
    assert world.delivery(int(queued["id"]))["status"] == "queued"
    post_id = world.published()
    result = cli(world, "delete", str(post_id), "--channel", "nope")
    assert result.code == 2 and "no delivery on channel 'nope'" in result.err
    assert world.delivery(post_id)["delete_at"] is None


@pytest.mark.parametrize("world", ["outbox"], indirect=True)
def test_queued_deliveries_of_the_post_are_cancelled(world: World, tmp_path: Path) -> None:
    body = (
        f'[[channels]]\nname = "ch"\nnetwork = "outbox"\npath = "{tmp_path / "posts"}"\n'
        f'[[channels]]\nname = "later"\nnetwork = "outbox"\npath = "{tmp_path / "later"}"\n'
    )
    world.config = load_config(write_config(world.config.path, world.config.database_url, body, outbox=False))
    at = (now() + timedelta(days=1)).replace(microsecond=0).isoformat()
    view = add_post(world.config, world.db, NewPost(text="sale", channels=["ch"], now=True), now())
    later = add_post(world.config, world.db, NewPost(text="x", channels=["later"], at=at), now())
    assert later["id"] != view["id"]
    post_id = int(view["id"])
    claim = world.sync(store.claim, "ch", now(), "me", timedelta(minutes=5))
    assert world.run(world.publisher.publish(claim, world.adapter, world.channel))
    # A second delivery of the same post, still queued on "later".
    world.sync(lambda s: s.execute(update(Delivery).where(Delivery.post_id == later["id"]).values(post_id=post_id)))
    result = cli(world, "delete", str(post_id))
    assert result.code == 0, result.err
    assert "later: queued, cancelled" in result.out
    statuses = {d["channel"]: d["status"] for d in show_post(world.db, post_id)["deliveries"]}
    assert statuses == {"ch": "published", "later": "cancelled"}
    assert world.work() == 1
    assert {d["channel"]: d["status"] for d in show_post(world.db, post_id)["deliveries"]}["ch"] == "deleted"


@pytest.mark.parametrize("world", ["telegram"], indirect=True)
def test_an_expiry_telegram_cannot_keep_is_refused_at_queue_time(world: World) -> None:
    at = now() + timedelta(hours=1)
    late, soon = at + timedelta(hours=49), at + timedelta(hours=47)
    result = cli(world, "add", "sale", "--at", at.isoformat(), "--expire-at", late.isoformat())
    assert result.code == 2 and result.out == "" and len(result.err.strip().splitlines()) == 1
    assert "--expire-at: ch cannot delete it then: Telegram lets a post be deleted only within 48 hours" in result.err
    result = cli(world, "add", "sale", "--at", at.isoformat(), "--expire-at", (at - timedelta(minutes=5)).isoformat())
    assert result.code == 2 and "--expire-at is not after the post goes out on ch" in result.err
    assert cli(world, "queue", "--all").out.strip() in ("no posts", "")  # nothing was written
    added = cli(world, "add", "sale", "--at", at.isoformat(), "--expire-at", soon.isoformat(), "--json")
    assert added.code == 0, added.err
    (delivery,) = json.loads(added.out)["deliveries"]
    assert delivery["delete_at"] is not None and delivery["delete_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))


def one_line_error(result: Any) -> str:
    assert result.code == 2 and result.out == "", (result.code, result.out, result.err)
    (line,) = result.err.strip().splitlines()
    return str(line)


@pytest.mark.parametrize("world", ["outbox", "telegram"], indirect=True)
def test_a_move_that_breaks_the_expiry_is_refused(world: World) -> None:
    at = (now() + timedelta(days=2)).replace(second=0, microsecond=0)
    expiry = at + timedelta(hours=2)
    added = cli(world, "add", "sale", "--at", at.isoformat(), "--expire-at", expiry.isoformat(), "--json")
    assert added.code == 0, added.err
    post_id = str(json.loads(added.out)["id"])
    before = cli(world, "show", post_id, "--json").out
    for later in (at + timedelta(days=1), expiry):  # after it, or at it
        line = one_line_error(cli(world, "reschedule", post_id, "--at", later.isoformat()))
        assert line.startswith(f"smm: error: cannot move post {post_id}: its expiry (")
        assert ") is not after the post goes out on ch (" in line
    if world.network == "telegram":  # too long before it: the bot may no longer delete the post by then
        line = one_line_error(cli(world, "reschedule", post_id, "--at", (expiry - timedelta(hours=49)).isoformat()))
        assert ": ch cannot delete it then: Telegram lets a post be deleted only within 48 hours" in line
    assert cli(world, "show", post_id, "--json").out == before  # nothing changed
    moved = cli(world, "reschedule", post_id, "--at", (at - timedelta(hours=1)).isoformat())
    assert moved.code == 0, moved.err


@pytest.mark.parametrize("world", ["outbox"], indirect=True)
@pytest.mark.parametrize("command", [("retry",), ("resolve", "--retry")])
def test_a_post_whose_expiry_passed_is_not_sent_again(world: World, command: tuple[str, ...]) -> None:
    """smm retry and smm resolve --retry would send a post that ended, and the daemon would then delete it."""
    post_id = json.loads(
        cli(world, "add", "sale", "--expire-at", (now() + timedelta(days=400)).isoformat(), "--json").out
    )["id"]
    status = "failed" if command == ("retry",) else "unknown"
    ended = now().replace(microsecond=0) - timedelta(hours=1)
    world.sync(
        lambda s: s.execute(update(Delivery).where(Delivery.post_id == post_id).values(status=status, delete_at=ended))
    )
    before = cli(world, "show", str(post_id), "--json").out
    line = one_line_error(cli(world, command[0], str(post_id), *command[1:]))
    assert line == (
        f"smm: error: post {post_id} expired ({format_local(ended, world.channel.timezone)}): it is not sent "
        "again; add it anew with a later --expire-at if it should still go out"
    )
    assert cli(world, "show", str(post_id), "--json").out == before  # nothing changed


@pytest.mark.parametrize("world", ["outbox"], indirect=True)
def test_next_cancels_a_post_it_pushes_past_its_expiry_and_says_so(world: World) -> None:
    sale = json.loads(cli(world, "add", "sale", "--expire-at", (now() + timedelta(days=400)).isoformat(), "--json").out)
    slot = datetime.fromisoformat(sale["deliveries"][0]["due_at"].replace("Z", "+00:00"))
    ends = slot + timedelta(hours=1)  # the sale ends an hour after its slot
    world.sync(lambda s: s.execute(update(Delivery).where(Delivery.post_id == sale["id"]).values(delete_at=ends)))
    kept = json.loads(cli(world, "add", "kept", "--json").out)
    result = cli(world, "add", "urgent", "--next")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and f"post {sale['id']} on ch expires (" in warnings[0], result.err
    assert ") before its new slot (" in warnings[0] and warnings[0].endswith("): cancelled")
    cancelled = world.delivery(int(sale["id"]))
    assert (cancelled["status"], cancelled["note"]) == ("cancelled", "cancelled: the post expired before it went out")
    assert world.delivery(int(kept["id"]))["status"] == "queued"  # pushed back a slot, as --next does


@pytest.mark.parametrize("world", ["ok"], indirect=True)
def test_a_post_is_deleted_at_its_expiry_and_a_queued_one_never_goes_out(world: World) -> None:
    soon = (now() + timedelta(seconds=2)).isoformat()
    view = add_post(
        world.config, world.db, NewPost(text="flash sale", channels=["ch"], now=True, expire_at=soon), now()
    )
    claim = world.sync(store.claim, "ch", now(), "me", timedelta(minutes=5))
    assert world.run(world.publisher.publish(claim, world.adapter, world.channel))
    post_id = int(view["id"])
    remote_id = world.delivery(post_id)["remote_id"]
    later = (now() + timedelta(hours=1)).isoformat()
    queued = add_post(world.config, world.db, NewPost(text="moved past its expiry", channels=["ch"], at=later), now())
    # Queued with an expiry that comes first (a post moved later than its expiry, say).
    world.sync(
        lambda s: s.execute(
            update(Delivery).where(Delivery.post_id == queued["id"]).values(delete_at=now() + timedelta(seconds=2))
        )
    )
    assert "to be deleted at" in cli(world, "show", str(post_id)).out
    assert world.work() == 0  # not yet
    assert world.sync(deletions.next_deletion, now()) is not None
    time.sleep(2.1)
    expired = world.sync(deletions.expired_queued, now())
    assert world.sync(deletions.expire_queued, expired, now()) == [(queued["id"], "ch")]
    assert world.work() == 1
    assert world.delivery(post_id)["status"] == "deleted" and not world.live(remote_id)
    assert world.delivery(int(queued["id"]))["status"] == "cancelled"
    shown = cli(world, "show", str(queued["id"])).out
    assert "cancelled" in shown and "(cancelled: the post expired before it went out)" in shown


@pytest.mark.parametrize("world", ["telegram"], indirect=True)
def test_a_csv_expiry_telegram_cannot_keep_is_refused(world: World, tmp_path: Path) -> None:
    at = (now() + timedelta(hours=1)).replace(microsecond=0)
    csv = tmp_path / "posts.csv"
    rows = [
        f"in time,{at.isoformat()},{(at + timedelta(hours=47)).isoformat()}\n",
        f"too late,{(at + timedelta(hours=1)).isoformat()},{(at + timedelta(hours=50)).isoformat()}\n",
    ]
    csv.write_text("text,at,expire_at\n" + "".join(rows), encoding="utf-8")
    result = cli(world, "import", str(csv))
    assert result.code == 2 and result.out == ""
    assert result.err.strip().splitlines() == [
        f"smm: error: {csv}:3: expire_at: ch cannot delete it then: Telegram lets a post be deleted only within 48 "
        "hours of publishing, and that is 49 hours after it"
    ]
    assert cli(world, "queue", "--all").out.strip() in ("no posts", "")  # nothing was written
    csv.write_text("text,at,expire_at\n" + rows[0], encoding="utf-8")
    assert cli(world, "import", str(csv)).code == 0
    (post,) = json.loads(cli(world, "queue", "--json").out)
    assert post["deliveries"][0]["delete_at"] is not None


def test_the_csv_expire_at_column(tmp_path: Path, config_file: Path) -> None:
    at = (now() + timedelta(days=1)).replace(microsecond=0)
    csv = tmp_path / "posts.csv"
    csv.write_text(
        "text,at,expire_at\n"
        f"sale,{at.isoformat()},{(at + timedelta(days=7)).isoformat()}\n"
        f"too soon,{at.isoformat()},{(at - timedelta(hours=1)).isoformat()}\n",
        encoding="utf-8",
    )
    result = run_cli("import", str(csv), config=config_file)
    assert result.code == 2 and f"{csv}:3: expire_at is not after the post goes out on outbox" in result.err
    assert run_cli("queue", config=config_file).out.startswith("the queue is empty")
    csv.write_text(f"text,expire_at\nsale,{(now() + timedelta(days=400)).isoformat()}\nplain,\n", encoding="utf-8")
    assert run_cli("import", str(csv), config=config_file).code == 0
    posts = json.loads(run_cli("queue", "--json", config=config_file).out)
    assert [p["deliveries"][0]["delete_at"] is not None for p in posts] == [True, False]
