"""The HTML page in a real browser: Debian's headless Chromium opens ``smm report --html``'s page (tests/browser.py),
and the charts must be drawn (SVG shapes with a size, a screenshot with many colours), the page must fit a laptop
and a phone, hostile texts must stay text, and the page must make no request at all, which a page that refers to
anything outside itself fails (the detector is tested on such a page).

Skipped, with the reason, only where /usr/bin/chromium is missing; ``SMM_REQUIRE_CHROMIUM=1`` (``.ci/run``, which
installs it) makes that a failure.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests import browser
from tests.browser import Browser, Page
from tests.integration.test_report_page import make_config, make_page

LAPTOP = (1280, 800)
PHONE = (390, 844)

# What a page could load from elsewhere: a style sheet, a font, a background and an image.
LEAKS_HEAD = """<link rel="stylesheet" href="https://cdn.example.com/style.css">
<style>@font-face { font-family: Remote; src: url(https://fonts.example.net/remote.woff2); }
body { font-family: Remote; background: url(http://images.example.org/back.png); }</style>
"""
LEAKS_BODY = '<img src="http://images.example.org/pixel.png" alt="">'
LEAKS = {
    "https://cdn.example.com/style.css",
    "https://fonts.example.net/remote.woff2",
    "http://images.example.org/back.png",
    "http://images.example.org/pixel.png",
}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    reason = browser.missing()
    if reason is not None:
        if os.environ.get("SMM_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"Chromium required (SMM_REQUIRE_CHROMIUM=1): {reason}")
        pytest.skip(reason)
    with Browser.start() as started:
        yield started


@pytest.fixture
def seeded(tmp_path: Path, sqlite_url: str) -> Path:
    """The dataset of test_report_page (the page's figures are checked there, on both databases)."""
    return make_config(tmp_path, sqlite_url, seeded=True)


def settle(page: Page) -> list[str]:
    """The URLs the page requested other than itself, once its fonts are loaded and a moment has passed."""
    page.call("Runtime.evaluate", expression="document.fonts.ready.then(() => true)", awaitPromise=True)
    time.sleep(0.5)
    return page.requests[1:]


def open_page(chromium: Browser, path: Path, size: tuple[int, int]) -> Page:
    page = chromium.open(path.as_uri(), width=size[0], height=size[1], mobile=size == PHONE)
    assert page.requests[0] == path.as_uri()
    return page


def shown(chromium: Browser, config: Path, folder: Path, size: tuple[int, int], *args: str) -> Page:
    """``smm report --html`` (with ``args``) opened at ``size``, once it has requested nothing but itself."""
    path = folder / "report.html"
    make_page(config, path, *args)
    page = open_page(chromium, path, size)
    assert settle(page) == []
    return page


def colours(png: bytes) -> tuple[int, float]:
    """How many distinct colours a screenshot has, and the share of its pixels that are not its background (the
    commonest colour)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    counts = image.getcolors(maxcolors=1 << 24)
    assert counts is not None
    background = max(counts)[0]
    return len(counts), 1 - background / (image.width * image.height)


def test_the_detector_sees_a_page_that_loads_from_elsewhere(chromium: Browser, seeded: Path, tmp_path: Path) -> None:
    """The page with references to elsewhere slipped in: each is seen (its Content-Security-Policy blocks them,
    but Chromium still reports each request it refused to make)."""
    page = make_page(seeded, tmp_path / "report.html")
    leaky = tmp_path / "leaky.html"
    leaky.write_text(page.replace("</head>", LEAKS_HEAD + "</head>").replace("</body>", LEAKS_BODY + "</body>"))
    opened = open_page(chromium, leaky, LAPTOP)
    deadline = time.monotonic() + 10
    while not set(opened.requests) >= LEAKS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(settle(opened)) >= LEAKS


def test_the_page_draws_its_charts_and_loads_nothing(chromium: Browser, seeded: Path, tmp_path: Path) -> None:
    page = shown(chromium, seeded, tmp_path, LAPTOP)
    drawn = page.evaluate(
        """(() => {
        const charts = [...document.querySelectorAll('svg.chart')];
        return {
          charts: charts.length,
          sized: charts.map(c => c.getBoundingClientRect()).filter(r => r.width > 250 && r.height > 100).length,
          paths: document.querySelectorAll('svg.chart path').length,
          bars: document.querySelectorAll('svg.chart rect').length,
          dots: document.querySelectorAll('svg.chart circle').length,
          lineLength: Math.round(document.querySelector('svg.chart path').getTotalLength()),
          slots: document.querySelectorAll('.calendar .slot').length,
          overflow: document.documentElement.scrollWidth > innerWidth,
        };
        })()"""
    )
    assert drawn["charts"] == drawn["sized"] == 5
    assert drawn["paths"] == 3  # one audience line per channel
    assert drawn["bars"] >= 8  # a bar per category, on two charts
    assert drawn["dots"] > 40
    assert drawn["lineLength"] > 300
    assert drawn["slots"] > 10
    assert not drawn["overflow"]
    count, ink = colours(page.screenshot())
    assert count > 200 and ink > 0.2


def test_on_a_phone_the_page_fits_the_screen(chromium: Browser, seeded: Path, tmp_path: Path) -> None:
    page = shown(chromium, seeded, tmp_path, PHONE)
    fit = page.evaluate(
        """(() => ({
          overflow: document.documentElement.scrollWidth - innerWidth,
          widest: Math.max(...[...document.querySelectorAll('svg.chart')].map(c => c.getBoundingClientRect().right)),
          columns: getComputedStyle(document.querySelector('.calendar')).gridTemplateColumns.split(' ').length,
        }))()"""
    )
    assert fit["overflow"] <= 0
    assert fit["widest"] <= PHONE[0]
    assert fit["columns"] == 1  # the calendar becomes a list of days
    count, ink = colours(page.screenshot())
    assert count > 100 and ink > 0.2


def test_hostile_texts_run_nothing(chromium: Browser, seeded: Path, tmp_path: Path) -> None:
    page = shown(chromium, seeded, tmp_path, LAPTOP, "--channel", "vk-main")
    found = page.evaluate(
        """(() => ({
          title: document.title,
          images: document.images.length,
          scripts: document.scripts.length,
          links: [...document.links].map(a => a.protocol),
          shown: document.body.innerText.includes("</script><img src=x onerror="),
        }))()"""
    )
    assert found["title"] != "pwned" and found["images"] == found["scripts"] == 0
    assert set(found["links"]) == {"https:"}
    assert found["shown"]


def test_an_empty_page_says_so_in_the_browser_too(chromium: Browser, sqlite_url: str, tmp_path: Path) -> None:
    page = shown(chromium, make_config(tmp_path, sqlite_url, seeded=False), tmp_path, LAPTOP)
    assert page.evaluate("document.querySelectorAll('svg').length") == 0
    assert "No post was published in this period." in page.evaluate("document.body.innerText")
    count, ink = colours(page.screenshot())
    assert count > 50 and ink > 0.05
