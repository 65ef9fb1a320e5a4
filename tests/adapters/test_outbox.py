"""The outbox network: a folder per post, written under a temporary name, idempotent by the post's key."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.base import OutgoingPost
from adapters.errors import AuthError, NotSupported, PermanentError
from adapters.outbox import OutboxAdapter

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def entries(folder: Path) -> list[str]:
    """What a person sees in the folder, and the leftovers of killed attempts (not the index)."""
    return sorted(p.name for p in folder.iterdir() if p.name != ".keys")


def links(folder: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in (folder / ".keys").iterdir()}


def test_a_post_half_written_by_a_killed_process_leaves_no_trace(tmp_path: Path) -> None:
    # An attempt killed mid-write (by a version without the key index) left its temporary folder, named after its
    # own time; the retry, a few seconds later, writes the post under a new time and must remove the leftover.
    leftover = tmp_path / f".writing-{T0:%Y%m%dT%H%M%SZ}-k1"
    leftover.mkdir()
    (leftover / "post.txt").write_text("half", encoding="utf-8")
    other = tmp_path / f".writing-{T0:%Y%m%dT%H%M%SZ}-k2"  # another post's: not this one's to remove
    other.mkdir()
    adapter = OutboxAdapter(tmp_path, clock=lambda: T0 + timedelta(seconds=7))
    result = asyncio.run(adapter.publish(OutgoingPost("hello", key="k1")))
    assert entries(tmp_path) == [other.name, "20261201T070007Z-k1"]
    assert result.remote_id == "20261201T070007Z-k1"
    assert (tmp_path / result.remote_id / "post.txt").read_text(encoding="utf-8") == "hello\n"
    again = asyncio.run(adapter.publish(OutgoingPost("hello", key="k1")))
    assert again == result  # the same key publishes once


def test_a_post_killed_just_before_its_rename_is_not_taken_for_published(tmp_path: Path) -> None:
    # The temporary folder was complete (post.json written and synced) when the process died before renaming it:
    # the post was not published, so the retry publishes it (and read-back does not find it before).
    leftover = tmp_path / f".writing-{T0:%Y%m%dT%H%M%SZ}-k1"
    leftover.mkdir()
    (leftover / "post.json").write_text("{}", encoding="utf-8")
    adapter = OutboxAdapter(tmp_path, clock=lambda: T0 + timedelta(seconds=7))
    assert asyncio.run(adapter.find_published(OutgoingPost("hello", key="k1"), T0)) is None
    result = asyncio.run(adapter.publish(OutgoingPost("hello", key="k1")))
    assert result.remote_id == "20261201T070007Z-k1"
    assert result.remote_url == (tmp_path / result.remote_id).resolve().as_uri()
    assert entries(tmp_path) == [result.remote_id]
    found = asyncio.run(adapter.find_published(OutgoingPost("hello", key="k1"), T0))
    assert found == result


def test_a_folder_that_cannot_be_read_is_a_publish_error_not_a_crash(tmp_path: Path) -> None:
    # A symbolic link to itself stands for any folder the daemon cannot list (permissions, a stale NFS handle).
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    adapter = OutboxAdapter(loop, clock=lambda: T0)
    with pytest.raises(AuthError, match="cannot write to the outbox"):
        asyncio.run(adapter.publish(OutgoingPost("hello", key="k1")))
    with pytest.raises(AuthError):
        asyncio.run(adapter.find_published(OutgoingPost("hello", key="k1"), T0))


def test_a_folder_written_before_the_key_index_is_indexed_once(tmp_path: Path) -> None:
    # Posts published by a version that scanned the folder: the first publish indexes them (the post in place wins
    # over a leftover of the same key), and a published key is never written again.
    old = OutboxAdapter(tmp_path, clock=lambda: T0)
    first = asyncio.run(old.publish(OutgoingPost("one", key="k1")))
    shutil.rmtree(tmp_path / ".keys")
    (tmp_path / f".writing-{T0:%Y%m%dT%H%M%SZ}-k1").mkdir()  # a retry of k1 killed after k1 went out
    (tmp_path / "notes").mkdir()  # a person's own folder: no post.json, not a post
    adapter = OutboxAdapter(tmp_path, clock=lambda: T0 + timedelta(seconds=9))
    assert asyncio.run(adapter.find_published(OutgoingPost("one", key="k1"), T0)) == first
    assert links(tmp_path) == {"k1": first.remote_id}
    assert asyncio.run(adapter.publish(OutgoingPost("one", key="k1"))) == first
    second = asyncio.run(adapter.publish(OutgoingPost("two", key="k2")))
    assert links(tmp_path) == {"k1": first.remote_id, "k2": second.remote_id}
    assert not list(tmp_path.glob(".keys-building-*"))


def test_a_publish_does_not_list_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One readlink finds a key's post: listing the folder cost milliseconds a post at tens of thousands of posts.
    adapter = OutboxAdapter(tmp_path, clock=lambda: T0)
    for k in range(50):
        asyncio.run(adapter.publish(OutgoingPost(f"post {k}", key=f"k{k}")))
    listed: list[object] = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda *a: listed.append(a) or real(*a))
    again = asyncio.run(adapter.publish(OutgoingPost("post 7", key="k7")))
    new = asyncio.run(adapter.publish(OutgoingPost("post 50", key="k50")))
    assert listed == []
    assert again.remote_id == "20261201T070000Z-k7"
    assert new.remote_id == "20261201T070000Z-k50"
    assert len(entries(tmp_path)) == 51


def test_an_attempt_killed_after_its_link_was_written_is_published_again(tmp_path: Path) -> None:
    # The link is written first, then the folder under its temporary name: a kill in between leaves a link to a
    # folder that is not there, and the half-written one. Neither counts as published; the retry cleans both.
    adapter = OutboxAdapter(tmp_path, clock=lambda: T0 + timedelta(seconds=5))
    asyncio.run(adapter.publish(OutgoingPost("warm-up", key="k0")))
    killed = f"{T0:%Y%m%dT%H%M%SZ}-k1"
    (tmp_path / ".keys" / "k1").symlink_to(killed)
    (tmp_path / f".writing-{killed}").mkdir()
    (tmp_path / f".writing-{killed}" / "post.json").write_text("{}", encoding="utf-8")
    assert asyncio.run(adapter.find_published(OutgoingPost("hello", key="k1"), T0)) is None
    result = asyncio.run(adapter.publish(OutgoingPost("hello", key="k1")))
    assert result.remote_id == "20261201T070005Z-k1"
    assert entries(tmp_path) == ["20261201T070005Z-k0", result.remote_id]
    assert links(tmp_path)["k1"] == result.remote_id
    sidecar = json.loads((tmp_path / result.remote_id / "post.json").read_text(encoding="utf-8"))
    assert sidecar == {
        "key": "k1",
        "text": "hello",
        "link": None,
        "media": [],
        "published_at": "2026-12-01T07:00:05+00:00",
    }


def test_an_outbox_removed_while_the_daemon_runs_is_made_again(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    adapter = OutboxAdapter(folder, clock=lambda: T0)
    asyncio.run(adapter.publish(OutgoingPost("one", key="k1")))
    shutil.rmtree(folder)
    assert asyncio.run(adapter.find_published(OutgoingPost("one", key="k1"), T0)) is None
    again = asyncio.run(adapter.publish(OutgoingPost("one", key="k1")))
    assert entries(folder) == [again.remote_id]
    shutil.rmtree(folder / ".keys")  # the index alone: it is rebuilt from the folders
    assert asyncio.run(adapter.publish(OutgoingPost("one", key="k1"))) == again
    assert links(folder) == {"k1": again.remote_id}


def test_nothing_can_be_read_and_each_refusal_says_why(tmp_path: Path) -> None:
    outbox = OutboxAdapter(tmp_path)
    name = asyncio.run(outbox.publish(OutgoingPost("kept", key="k1"))).remote_id
    now = datetime.now(UTC)
    calls = {
        "results": outbox.read_results(name),
        "audience": outbox.read_audience(),
        "comments": outbox.read_comments(name, now),
    }
    for action, call in calls.items():
        with pytest.raises(NotSupported) as info:
            asyncio.run(call)
        assert str(info.value) == OutboxAdapter.unsupported[action] and isinstance(info.value, PermanentError)
    assert (tmp_path / name / "post.txt").read_text().startswith("kept")


def test_a_deleted_post_leaves_no_folder_and_is_never_written_again(tmp_path: Path) -> None:
    outbox = OutboxAdapter(tmp_path)
    name = asyncio.run(outbox.publish(OutgoingPost("gone", key="k1"))).remote_id
    now = datetime.now(UTC)
    asyncio.run(outbox.delete_post(name, now, now))
    assert [p.name for p in tmp_path.iterdir()] == [".keys"]
    asyncio.run(outbox.delete_post(name, now, now))  # already gone: deleted all the same
    for bad in ("", ".keys", "../elsewhere", "a/b"):
        with pytest.raises(PermanentError):
            asyncio.run(outbox.delete_post(bad, now, now))
    assert links(tmp_path) == {"k1": name}  # the key still points at it: a resend of k1 finds no post
