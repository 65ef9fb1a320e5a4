"""A webhook on 127.0.0.1 that apprise's ``json://`` scheme posts alerts to; it records each message's JSON."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.base import FakeRequest, FakeResponse, FakeServer


class FakeWebhook(FakeServer):
    """Accepts every POST under ``/hook``; :attr:`messages` is what arrived, as apprise's JSON payloads."""

    def __init__(self) -> None:
        super().__init__()
        self.route("/hook", lambda request: FakeResponse.json({"ok": True}))

    def fault_key(self, request: FakeRequest) -> str:
        return "hook"

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.calls("hook")]

    def apprise_url(self, secret: str = "") -> str:
        """The ``json://`` URL of this webhook, with ``secret`` as the last path segment (a token in a URL)."""
        return f"json://127.0.0.1:{self.port}/hook/{secret}"
