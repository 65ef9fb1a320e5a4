"""The outbox network: a folder per post, written under a temporary name, idempotent by the post's key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.base import OutgoingPost
from adapters.errors import AuthError
from adapters.outbox import OutboxAdapter

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def test_a_post_half_written_by_a_killed_process_leaves_no_trace(tmp_path: Path) -> None:
    # An attempt killed mid-write left its temporary folder, named after its own time; the retry, a few seconds
    # later, writes the post under a new time and must remove the leftover.
    leftover = tmp_path / f".writing-{T0:%Y%m%dT%H%M%SZ}-k1"
    leftover.mkdir()
    (leftover / "post.txt").write_text("half", encoding="utf-8")
    other = tmp_path / f".writing-{T0:%Y%m%dT%H%M%SZ}-k2"  # another post's: not this one's to remove
    other.mkdir()
    adapter = OutboxAdapter(tmp_path, clock=lambda: T0 + timedelta(seconds=7))
    result = asyncio.run(adapter.publish(OutgoingPost("hello", key="k1")))
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "20261201T070007Z-k1"]
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
    assert [p.name for p in tmp_path.iterdir()] == [result.remote_id]
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
