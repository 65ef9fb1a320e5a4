"""What every OK API call shares: the signature (:func:`sign`), the answer's parsing, and its shapes."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from adapters.errors import BadResponse

if TYPE_CHECKING:
    import httpx

_UNSIGNED = frozenset({"access_token", "session_key", "sig"})

OkCall = Callable[..., Awaitable[Any]]
"""One OK API call with its errors translated: the adapter's ``_call``."""


def sign(params: Mapping[str, str], access_token: str, application_secret: str) -> str:
    """The ``sig`` of an OK API call: md5 of the sorted ``k=v`` pairs and the session secret, lowercase hex.

    ``session_secret_key = md5(access_token + application_secret)``; ``access_token``, ``session_key`` and
    ``sig`` itself are not signed. Values are signed exactly as sent (UTF-8).
    """
    secret = hashlib.md5((access_token + application_secret).encode()).hexdigest()
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params) if key not in _UNSIGNED)
    return hashlib.md5((pairs + secret).encode()).hexdigest()


def parse(response: httpx.Response) -> Any:
    """The JSON answer of a successful call; errors come as HTTP 200 with ``error_code``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or body is None or (isinstance(body, dict) and "error_code" in body):
        raise BadResponse(response.status_code, body, response.headers)
    return body


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def listed(answer: Any, key: str = "memberships") -> list[dict[str, Any]]:
    """A list answer, whether bare (older API versions) or wrapped as ``{key: [...]}`` (current docs)."""
    rows = answer.get(key) if isinstance(answer, dict) else answer
    return [row for row in rows or [] if isinstance(row, dict)] if isinstance(rows, list) else []


def topic_url(group_id: str, topic_id: str) -> str:
    """The web address of a group topic."""
    return f"https://ok.ru/group/{group_id}/topic/{topic_id}"
