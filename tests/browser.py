"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol, for tests of the HTML page.

Chromium is started with ``--remote-debugging-pipe``: it reads commands from its file descriptor 3 and writes
answers and events to 4, each a JSON object ended by a NUL byte (no websocket, nothing to download). A
:class:`Browser` opens a page in a tab of a given size, records every request the page makes (the DevTools
``Network`` events of that tab only, so Chromium's own traffic, its component updater and such, is not counted),
evaluates JavaScript in it and takes screenshots.

Nothing can leave the machine whatever a page asks for: every request goes to a proxy on a closed port of the
loopback, and every host name resolves to nothing.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("SMM_TEST_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT = 60.0


def missing() -> str | None:
    """Why the browser tests cannot run (None when they can)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: `apt-get install -y chromium` (Debian's package) runs the browser tests"
    return None


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, closed, or took too long."""


@dataclass
class Page:
    """A tab: its DevTools session, and the URLs of the requests made while it loaded and since."""

    browser: Browser
    session: str
    requests: list[str] = field(default_factory=list)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, session=self.session, **params)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression!r} raised: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the whole page, as tall as its content."""
        self.call("Page.bringToFront")  # a tab behind another is not painted
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        return base64.b64decode(data)


class Browser:
    """One headless Chromium, with a fresh profile; see the module's docstring."""

    def __init__(self, process: subprocess.Popen[bytes], profile: Path) -> None:
        self.process = process
        self.profile = profile
        self._next_id = 0
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._pages: dict[str, Page] = {}

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[Browser]:
        profile = Path(tempfile.mkdtemp(prefix="smm-chromium-"))
        args = [
            str(CHROMIUM),
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # as root, in a container
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--hide-scrollbars",
            "--disable-renderer-backgrounding",
            "--disable-background-timer-throttling",
            "--disable-backgrounding-occluded-windows",
            "--font-render-hinting=none",
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{_closed_port()}",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "about:blank",
        ]
        # fd 3 is what Chromium reads commands from, fd 4 where it writes: our pipes, moved there by the shell.
        process = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        browser = cls(process, profile)
        try:
            yield browser
        finally:
            browser.close()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except BrowserError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        while chunk := self.process.stdout.read1(65536):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        box = self._answers.get(message["id"])
                    if box is not None:
                        box.put(message)
                else:
                    self._event(message)
        self._events.put({"method": "closed"})

    def _event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Network.requestWillBeSent":
            page = self._pages.get(message.get("sessionId", ""))
            if page is not None:
                page.requests.append(message["params"]["request"]["url"])
        self._events.put(message)

    def call(self, method: str, *, session: str | None = None, timeout: float = TIMEOUT, **params: Any) -> Any:
        """Send one command and wait for its answer's result."""
        with self._lock:
            self._next_id += 1
            number = self._next_id
            box: queue.Queue[dict[str, Any]] = queue.Queue()
            self._answers[number] = box
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\0")
            self.process.stdin.flush()
            answer = box.get(timeout=timeout)
        except (BrokenPipeError, queue.Empty) as exc:
            raise BrowserError(f"{method}: no answer from Chromium ({type(exc).__name__})") from exc
        finally:
            with self._lock:
                del self._answers[number]
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def _wait_for(self, method: str, session: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                break
            if event.get("method") == "closed":
                raise BrowserError("Chromium closed")
            if event.get("method") == method and event.get("sessionId") == session:
                return
        raise BrowserError(f"no {method} within {timeout:.0f} s")

    def open(self, url: str, *, width: int, height: int, mobile: bool = False) -> Page:
        """A new tab of ``width`` by ``height`` CSS pixels that has loaded ``url`` (its load event fired), with its
        requests recorded from the start."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        self._pages[session] = page
        page.call("Network.enable")
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        page.requests.clear()  # about:blank
        page.call("Page.navigate", url=url)
        self._wait_for("Page.loadEventFired", session)
        return page
