"""Hostile feeds (issue 22): forged log lines and terminal escapes, slow servers, huge feeds and files that are not
files. Each attack that once broke stays here, so that it stays broken for the attacker."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli, write_config
from tests.integration.test_feeds import BERLIN_CHANNEL, FakeSite
from tests.support import smm

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
