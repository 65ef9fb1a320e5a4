"""Attacks on the daemon itself (issue 22): a second daemon on the same SQLite file through another path, a full
disk at start and while it stays full, a server that keeps a call alive a byte at a time through a shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from scheduler import store
from scheduler.daemon import STOP_SLACK, open_daemon
from scheduler.errors import DatabaseError
from scheduler.intake import NewPost, add_post
from tests.conftest import write_config
from tests.fakes.base import FakeResponse, FakeServer
from tests.reliability.harness import Networks, queue_posts
from tests.reliability.test_network_faults import deliveries
from tests.support import DaemonProcess, smm, smm_env, wait_for

pytestmark = pytest.mark.slow

FAST = '[daemon]\ntick = "1s"\nshutdown_grace = "1s"\n'


def run(config: Path, *args: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``smm run`` in a fresh process, optionally under a file size limit (writes past it fail, as on a full
    disk)."""

    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, "-m", "scheduler", "--config", str(config), "run", *args],
        env=smm_env(),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=config.parent,
        preexec_fn=limit,
    )


@pytest.mark.parametrize("spelling", ["symlink", "dotdot", "hardlink"])
def test_a_second_daemon_on_the_same_file_through_another_path_refuses_to_start(tmp_path: Path, spelling: str) -> None:
    real = tmp_path / "data" / "smm.db"
    (tmp_path / "data" / "sub").mkdir(parents=True)
    other = tmp_path / "elsewhere" / "alias.db"
    other.parent.mkdir()
    if spelling == "symlink":
        other.symlink_to(real)
    elif spelling == "dotdot":
        (tmp_path / "linked").symlink_to(tmp_path / "data" / "sub")
        other = tmp_path / "linked" / ".." / "smm.db"  # through a symlinked folder: data/sub/.. is data
    first = write_config(tmp_path / "first.toml", f"sqlite:///{real}", extra_top=FAST)
    second = write_config(tmp_path / "second.toml", f"sqlite:///{other}", extra_top=FAST)
    with DaemonProcess(first) as daemon:
        daemon.wait_ready()
        if spelling == "hardlink":  # (a bind mount is the same file too, but needs root to make)
            os.link(real, other)
        refused = run(second)
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    if spelling == "hardlink":
        assert f"another `smm run` is already publishing from {other} (through another path to the same" in line
    else:
        assert "another `smm run` (pid " in line and f"is already publishing from {real};" in line
    assert "could publish posts twice" in line


def test_a_daemon_that_cannot_write_its_lock_at_start_says_so_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'smm.db'}", extra_top=FAST)
    refused = run(config, file_size_limit=0)
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.endswith(f"cannot write the lock file {tmp_path / 'smm.db.lock'}: File too large"), line
    assert "unexpected" not in line


def drip(fake: FakeServer, path: str, seconds: float, limit: float = 30.0) -> None:
    """Answer the requests to ``path`` (once applied) one byte every ``seconds``: no read ever waits long enough to
    time out, and the answer never ends (within ``limit``)."""
    send = fake._send

    def dripping(h: BaseHTTPRequestHandler, response: FakeResponse) -> None:
        if not h.path.startswith(path):
            send(h, response)
            return
        raw = f"HTTP/1.1 {response.status} OK\r\nContent-Length: {len(response.body)}\r\n\r\n".encode()
        end = time.monotonic() + limit
        try:
            for i in range(len(raw + response.body)):
                if time.monotonic() > end:
                    break
                h.wfile.write((raw + response.body)[i : i + 1])
                h.wfile.flush()
                time.sleep(seconds)
        except OSError:  # the daemon hung up
            pass
        h.close_connection = True

    setattr(fake, "_send", dripping)  # noqa: B010 - an instance hook


@pytest.mark.parametrize("once", [False, True])
def test_sigterm_ends_the_daemon_within_the_grace_while_a_call_drips_and_the_post_stays_in_doubt(
    tmp_path: Path, sqlite_url: str, once: bool
) -> None:
    """VK's client runs in a thread, which nothing can cancel; its timeout is per read, which a byte every 2 s never
    reaches. The stop abandons it after shutdown_grace; the post stays leased, and the next start settles it."""
    networks = Networks(per_network=1)
    try:
        body = networks.config_body().replace('timeout = "3s"', 'timeout = "60s"')
        config = write_config(tmp_path / "config.toml", sqlite_url, body, outbox=False, extra_top=FAST)
        networks.channels = [("vk0", "vk")]
        queue_posts(config, networks, 0, per_channel=1)
        drip(networks.vk, "/method/wall.post", 2.0)
        with DaemonProcess(config, *(["--once"] if once else []), env=networks.env) as daemon:
            wait_for(lambda: networks.vk.published, timeout=10, what="the post applied by VK")
            time.sleep(0.3)  # the daemon reads the first bytes of the answer
            daemon.signal(signal.SIGTERM)
            asked = time.monotonic()
            code = daemon.proc.wait(20)
            took = time.monotonic() - asked
            log = daemon.log
        assert code == 0, log
        assert took <= 1.0 + STOP_SLACK + 1.0, (took, log)
        assert "did not finish within shutdown_grace" in log
        ((_, _, status, _),) = deliveries(config)
        assert status == "publishing"  # in doubt: leased, reconciled at the next start, never resent blindly

        del networks.vk._send  # the instance hook: VK answers at once again
        again = smm("run", "--once", config=config, env=networks.env)
        assert again.returncode == 0, again.stderr
        ((_, _, status, _),) = deliveries(config)
        assert status == "published"
        assert list(networks.copies().values()) == [1]
    finally:
        networks.stop()


def test_while_the_disk_stays_full_the_daemon_backs_off_and_says_so_once(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Reads still work on a full disk, writes fail at once: the daemon used to log 'unavailable' and 'available
    again after 0s' at every wake-up. Writes fail here at the daemon's write boundary, as SQLite fails them."""
    t0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    elapsed = [0.0]
    config = write_config(tmp_path / "config.toml", sqlite_url, extra_top=FAST)
    daemon = open_daemon(str(config), clock=lambda: t0 + timedelta(seconds=elapsed[0]), monotonic=lambda: elapsed[0])
    daemon.rt.db.check_schema()
    add_post(daemon.config, daemon.rt.db, NewPost(text="on a full disk", channels=["outbox"], now=True), t0)
    full, tries = [True], []
    real_call = daemon.rt.writes.call

    async def disk(fn: Any, *args: Any) -> Any:
        if fn is store.claim:
            tries.append(elapsed[0])
            if full[0]:
                raise DatabaseError("database or disk is full")
        return await real_call(fn, *args)

    daemon.rt.writes.call = disk  # type: ignore[method-assign]

    async def scenario() -> None:
        await daemon.startup()
        for step in range(60):  # a wake-up every 300 ms for 18 s; the disk is freed after 8 s
            elapsed[0] = round(step * 0.3, 1)
            full[0] = elapsed[0] < 8
            await daemon.cycle.turn()
            while daemon.workers.tasks:
                await asyncio.gather(*daemon.workers.tasks.values())

    with caplog.at_level(logging.INFO, logger="smm.daemon"):
        try:
            asyncio.run(scenario())
        finally:
            daemon.release()
    lines = [r.getMessage() for r in caplog.records if "database" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0] == (
        "database unavailable: database or disk is full; trying again in 1s, then less and less often "
        "(every 30s at most)"
    )
    assert lines[1] == "database available again after 16s"
    assert tries == [0.0, 1.2, 3.3, 7.5, 15.6]  # 1, 2, 4, 8 s after the last try, at the next wake-up
    assert daemon.publisher.published_count == 1
