"""A small threaded HTTP server that the network fakes build on.

Each fake (Telegram, VK, Facebook, OK) subclasses :class:`FakeServer`, routes requests to handlers that speak the
network's real wire format, and records what arrived. Tests, the fault-injection suite and the benchmarks drive the
real client libraries against it over real HTTP on 127.0.0.1.

Faults are scripted per route with :meth:`FakeServer.inject`:

- ``Fault.respond(status, body)``: answer with this instead of handling the request (nothing is applied);
- ``Fault.delay(seconds)``: wait, then handle (the request *is* applied: past a client timeout, that is ambiguous);
- ``Fault.drop_before()``: close the connection without handling the request;
- ``Fault.drop_after()``: handle the request (apply it), then close the connection without answering;
- ``Fault.drip(seconds)``: handle the request (apply it), then send the answer, status line and headers included, one
  byte every ``seconds``; after ``limit`` seconds (or when the client hangs up) the connection is closed.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class UploadedFile:
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class FakeRequest:
    """An HTTP request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    received_at: float = field(default_factory=time.time)

    @property
    def params(self) -> dict[str, str]:
        """Query string and form fields together (form wins)."""
        return {**self.query, **self.form}


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
        return cls(status=status, body=json.dumps(data).encode(), headers=headers or {})


@dataclass
class Fault:
    kind: str
    status: int = 200
    body: Any = None
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    limit: float = 0.0

    @classmethod
    def respond(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> Fault:
        return cls("respond", status=status, body=body, headers=headers or {})

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def drop_before(cls) -> Fault:
        return cls("drop_before")

    @classmethod
    def drop_after(cls) -> Fault:
        return cls("drop_after")

    @classmethod
    def drip(cls, seconds: float, *, limit: float = 30.0) -> Fault:
        """Apply the request, then answer one byte every ``seconds``, for at most ``limit`` seconds."""
        return cls("drip", seconds=seconds, limit=limit)


Handler = Callable[[FakeRequest], FakeResponse]


def engagement(age: float, weight: int = 1) -> dict[str, int]:
    """Plausible figures of a post ``age`` seconds old, growing with its age and slowing down like real ones:
    views, likes and reposts (``weight`` sets a network's scale)."""
    hours = max(0.0, age) / 3600
    views = int(weight * 120 * hours**0.5 + weight * 3 * hours) if hours > 0 else 0
    return {"views": views, "likes": views // 25, "reposts": views // 300}


def grown(audience: int, advanced: float) -> int:
    """A channel's audience once its fake's clock was moved ``advanced`` seconds ahead: 1 % more a day, as a
    steadily growing community does (the day's figure the daemon reads changes from one day to the next)."""
    return int(audience * 1.01 ** (max(0.0, advanced) / 86400))


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (killed daemons, timeouts) are normal here, not errors to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def parse_body(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Form fields and uploaded files of a urlencoded or multipart body."""
    ctype = headers.get("content-type", "")
    form: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    if ctype.startswith("application/x-www-form-urlencoded"):
        for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
            form[key] = values[-1]
    elif ctype.startswith("multipart/form-data"):
        raw = b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is None:
                form[name] = payload.decode("utf-8")
            else:
                files[name] = UploadedFile(filename, part.get_content_type(), payload)
    elif ctype.startswith("application/json") and body:
        data = json.loads(body)
        if isinstance(data, dict):
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return form, files


class FakeServer:
    """A fake network API on 127.0.0.1 with routes, a request log and scripted faults."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, Handler]] = []
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.RLock()
        self.requests: list[FakeRequest] = []
        #: TCP connections accepted so far (tests of connection reuse).
        self.connections = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routing ---------------------------------------------------------------------------------------------

    def route(self, prefix: str, handler: Handler) -> None:
        """Send requests whose path starts with ``prefix`` to ``handler`` (longest prefix wins)."""
        self._routes.append((prefix, handler))
        self._routes.sort(key=lambda item: len(item[0]), reverse=True)

    def fault_key(self, request: FakeRequest) -> str:
        """The name faults are keyed by for this request; subclasses return the API method's name."""
        return request.path

    def inject(self, key: str, *faults: Fault) -> None:
        """Apply ``faults``, one per request, to the next requests whose :meth:`fault_key` is ``key``."""
        with self._lock:
            self._faults.setdefault(key, []).extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self, key: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(key)
            if queue:
                return queue.pop(0)
            return None

    def calls(self, key: str) -> list[FakeRequest]:
        """The recorded requests whose :meth:`fault_key` is ``key``."""
        with self._lock:
            return [r for r in self.requests if self.fault_key(r) == key]

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, the body waits for a delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        server = _QuietServer(("127.0.0.1", 0), RequestHandler)
        accept = server.process_request

        def counting(request: Any, address: Any) -> None:
            with self._lock:
                self.connections += 1
            accept(request, address)

        server.process_request = counting  # type: ignore[method-assign]
        server.daemon_threads = True
        self._server = server
        # A short poll interval: shutdown() waits for the serving loop to notice, up to one interval (0.5 s default).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling ------------------------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        form, files = parse_body(headers, body)
        request = FakeRequest(h.command, parts.path, query, headers, body, form, files)
        key = self.fault_key(request)
        with self._lock:
            self.requests.append(request)
        fault = self._next_fault(key)
        if fault is not None and fault.kind == "drop_before":
            self._drop(h)
            return
        if fault is not None and fault.kind == "respond":
            body_bytes = fault.body if isinstance(fault.body, bytes) else json.dumps(fault.body).encode()
            self._send(h, FakeResponse(fault.status, body_bytes, headers=fault.headers))
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        try:
            response = self.handle(request)
        except Exception as exc:  # a bug in a fake must show up in the test, not hang the client
            response = FakeResponse.json({"fake_error": repr(exc)}, status=500)
        if fault is not None and fault.kind == "drop_after":
            self._drop(h)
            return
        if fault is not None and fault.kind == "drip":
            self._drip(h, response, fault.seconds, fault.limit)
            return
        self._send(h, response)

    def handle(self, request: FakeRequest) -> FakeResponse:
        for prefix, handler in self._routes:
            if request.path.startswith(prefix):
                return handler(request)
        return FakeResponse.json({"error": f"no route for {request.path}"}, status=404)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, response: FakeResponse) -> None:
        try:
            h.send_response(response.status)
            h.send_header("Content-Type", response.content_type)
            h.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(response.body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    @classmethod
    def _drip(cls, h: BaseHTTPRequestHandler, response: FakeResponse, seconds: float, limit: float) -> None:
        reason = h.responses.get(response.status, ("",))[0]
        head = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}"]
        head += [f"Content-Length: {len(response.body)}", *(f"{k}: {v}" for k, v in response.headers.items())]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body
        end = time.monotonic() + limit
        try:
            for index in range(len(raw)):
                if time.monotonic() >= end:
                    break
                h.wfile.write(raw[index : index + 1])
                h.wfile.flush()
                time.sleep(seconds)
        except OSError:  # the client hung up
            pass
        cls._drop(h)

    @staticmethod
    def _drop(h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
