"""Hostile feeds (issue 22): forged log lines and terminal escapes, slow servers, huge feeds and files that are not
files. Each attack that once broke stays here, so that it stays broken for the attacker."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from scheduler import feed_fetch, feeds
from scheduler.config import load_config
from scheduler.db import Database
from scheduler.feeds import poll_feeds
from tests.conftest import run_cli, write_config
from tests.integration.test_cli import NOW
from tests.integration.test_feeds import BERLIN_CHANNEL, FIRST, FakeSite, rss
from tests.support import smm


@contextmanager
def serving(feed: bytes) -> Iterator[FakeSite]:
    """A site serving ``feed`` at ``/feed.xml``."""
    site = FakeSite()
    site.pages["/feed.xml"] = ("application/rss+xml", feed)
    site.start()
    try:
        yield site
    finally:
        site.stop()


#: An HTML page naming its "feed" with a whole forged log line and OSC (window title) and SGR (colour) sequences.
FORGED_HREF = "/rss\n2026-12-06 10:00:00 INFO smm.daemon: published post 999\x1b]0;owned\x07\x1b[31m\x9b2J\u202e"
FORGED_PAGE = (
    '<!DOCTYPE html><html><head><link rel="alternate" type="application/rss+xml" href="' + FORGED_HREF + '">'
).encode()


def assert_harmless(text: str) -> None:
    """Nothing in ``text`` drives a terminal, and no line of it was written by the page."""
    assert not any(c in text for c in "\x1b\x07\x9b\u202e"), repr(text)
    assert not any(line.startswith("2026-12-06 10:00:00") for line in text.splitlines()), text


def test_a_feed_cannot_forge_log_lines_or_terminal_escapes(tmp_path: Path, sqlite_url: str) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(FORGED_PAGE)
    config = write_config(tmp_path / "config.toml", sqlite_url, BERLIN_CHANNEL, outbox=False)
    result = run_cli("import-feed", str(page), config=config)
    assert result.code == 2 and len(result.err.splitlines()) == 1, result
    assert_harmless(result.err)
    assert "\\n2026-12-06 10:00:00 INFO smm.daemon: published post 999\\x1b]0;owned\\x07" in result.err

    site = FakeSite()
    site.pages["/index.html"] = ("text/html", FORGED_PAGE)
    site.start()
    try:
        over_http = run_cli("import-feed", f"{site.url}/index.html", config=config)
    finally:
        site.stop()
    assert over_http.code == 2 and len(over_http.err.splitlines()) == 1, over_http
    assert_harmless(over_http.err)

    body = BERLIN_CHANNEL + f'\n[[feeds]]\nname = "blog"\nurl = "{page}"\nchannels = ["berlin"]\n'
    daemon = smm("run", "--once", config=write_config(tmp_path / "daemon.toml", sqlite_url, body, outbox=False))
    assert daemon.returncode == 0, daemon.stderr
    assert "feed 'blog': " in daemon.stderr and "an HTML page, not a feed" in daemon.stderr
    assert_harmless(daemon.stderr)


class DrippingServer:
    """An HTTP server on 127.0.0.1 that sends its whole answer (headers included) one byte at a time, a byte every
    ``gap`` seconds, so that no single read ever waits long enough for a per-read timeout; it stops when stopped
    or after ``limit`` bytes."""

    ANSWER = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 100000\r\n\r\n<rss>" + b" " * 99995
    )

    def __init__(self, gap: float = 0.2, limit: int = 200) -> None:
        self.gap, self.limit = gap, limit
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed.xml"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.served: list[threading.Thread] = []

    def __enter__(self) -> DrippingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)
        for thread in self.served:
            thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            self.served.append(thread)
            thread.start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                for byte in self.ANSWER[: self.limit]:
                    if self.stopped.wait(self.gap):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:  # the client gave up: what the test expects
                return


def test_a_dripping_server_holds_a_feed_read_no_longer_than_its_timeout(tmp_path: Path, sqlite_url: str) -> None:
    with DrippingServer() as drip, serving(rss(FIRST)) as site:
        tables = (
            f'\n[[feeds]]\nname = "drip"\nurl = "{drip.url}"\ntimeout = "1s"\n'
            f'\n[[feeds]]\nname = "blog"\nurl = "{site.url}/feed.xml"\ntimeout = "1s"\n'
        )
        config = write_config(tmp_path / "config.toml", sqlite_url, BERLIN_CHANNEL + tables, outbox=False)
        started = time.monotonic()
        result = run_cli("import-feed", "--feed", "drip", config=config)
        assert time.monotonic() - started < 3.5
        assert result.err == f"smm: error: {drip.url}: no answer within 1 s; try again later\n"

        # the daemon's poll: the hanging feed holds up no other
        loaded = load_config(config, env={})
        db = Database(loaded.database_url)
        db.check_schema(create=True)
        try:
            started = time.monotonic()
            lines = poll_feeds(loaded, db, NOW)
            assert time.monotonic() - started < 3.5
        finally:
            db.dispose()
    assert lines == [
        f"feed 'drip': {drip.url}: no answer within 1 s; try again later",
        "feed 'blog': 1 new entry queued (post 1) (0 already seen)",
    ]


def test_a_huge_feed_is_queued_in_short_transactions_and_capped_per_poll(tmp_path: Path, sqlite_url: str) -> None:
    count = feeds.MAX_NEW_ENTRIES + 30
    items = "".join(
        f"<item><guid>g{i}</guid><title>Entry {i}</title><link>https://acme.example/{i}</link></item>"
        for i in reversed(range(count))  # newest first
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>{items}</channel></rss>'
    with serving(body.encode()) as site:
        table = f'\n[[feeds]]\nname = "big"\nurl = "{site.url}/feed.xml"\nchannels = ["berlin"]\n'
        path = write_config(tmp_path / "c.toml", sqlite_url, BERLIN_CHANNEL + table, outbox=False)
        config = load_config(path, env={})
        db = Database(config.database_url)
        db.check_schema(create=True)
        posts_per_commit: list[int] = []
        inserted = [0]

        def count_posts(statement: str) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO POSTS"):
                inserted[0] += 1

        def trace(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            # Posts are written through the driver (executemany), past SQLAlchemy's statement events.
            dbapi_conn.set_trace_callback(count_posts)

        def commit(conn: Any) -> None:
            posts_per_commit.append(inserted[0])
            inserted[0] = 0

        event.listen(db.write_engine, "checkout", trace)
        event.listen(db.write_engine, "commit", commit)
        try:
            first = poll_feeds(config, db, NOW)
            assert first == [
                f"feed 'big': {feeds.MAX_NEW_ENTRIES} new entries queued (posts {', '.join(map(str, range(1, 21)))} "
                f"and {feeds.MAX_NEW_ENTRIES - 20} more), 30 more new entries wait for the next read "
                f"({feeds.MAX_NEW_ENTRIES} at most a read) (0 already seen)"
            ]
            assert sum(posts_per_commit) == feeds.MAX_NEW_ENTRIES
            assert max(posts_per_commit) <= feeds.BATCH_ENTRIES
            # the rest come with the next poll, although the feed has not changed since (its ETag was not kept)
            second = poll_feeds(config, db, NOW + timedelta(hours=1))
            assert second[0].startswith(f"feed 'big': 30 new entries queued (posts {feeds.MAX_NEW_ENTRIES + 1}, ")
            assert second[0].endswith(f"({feeds.MAX_NEW_ENTRIES} already seen)")
            third = poll_feeds(config, db, NOW + timedelta(hours=2))
            assert third == ["feed 'big': not modified since the last poll"]
        finally:
            db.dispose()


def test_feed_files_that_are_not_files_or_too_big_are_refused(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "config.toml", sqlite_url, BERLIN_CHANNEL, outbox=False)
    fifo = tmp_path / "fifo.xml"
    os.mkfifo(fifo)
    big = tmp_path / "big.xml"
    with big.open("wb") as file:  # sparse: nothing big is written
        file.truncate(feed_fetch.MAX_FEED_BYTES + 1)
    cases = {
        "/dev/zero": "/dev/zero: not a regular file (a FIFO, a device or a socket); not a feed to import",
        str(fifo): f"{fifo}: not a regular file (a FIFO, a device or a socket); not a feed to import",
        str(big): f"{big}: larger than 20 MB; not a feed to import",
    }
    for source, message in cases.items():
        result = smm("import-feed", source, config=config, timeout=30)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", f"smm: error: {message}\n")
