"""What every Graph API request of the Facebook adapter shares: the answer (:class:`Reply`), the usage headers'
backoff, and the request's type that the reading side calls through."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

#: Seconds to slow a Page down once a usage header reports >= 90 % of a quota and gives no regain time.
USAGE_BACKOFF = 300.0
USAGE_THRESHOLD = 90.0


class Reply(NamedTuple):
    """A Graph answer's JSON body and the backoff its usage headers ask for."""

    body: dict[str, Any]
    backoff: float | None


GraphCall = Callable[..., Awaitable[Reply]]
"""One Graph API request with its errors translated: the adapter's ``_call``."""


def usage_backoff(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait according to the usage headers, or ``None`` when no quota is near its end.

    ``X-App-Usage``/``X-Page-Usage`` are ``{"call_count", "total_cputime", "total_time"}`` percentages;
    ``X-Business-Use-Case-Usage`` maps a business id to a list of those plus ``estimated_time_to_regain_access``
    (minutes).
    """
    worst, regain = 0.0, 0.0
    entries: list[Any] = []
    for name in ("x-app-usage", "x-page-usage", "x-business-use-case-usage"):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if name == "x-business-use-case-usage" and isinstance(data, dict):
            entries.extend(item for value in data.values() if isinstance(value, list) for item in value)
        else:
            entries.append(data)
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key in ("call_count", "total_cputime", "total_time"):
            value = entry.get(key)
            if isinstance(value, int | float):
                worst = max(worst, float(value))
        value = entry.get("estimated_time_to_regain_access")
        if isinstance(value, int | float):
            regain = max(regain, float(value))
    if regain > 0:
        return regain * 60
    return USAGE_BACKOFF if worst >= USAGE_THRESHOLD else None


def unix(moment: datetime) -> int:
    """``moment`` in Unix seconds, a naive one read as UTC."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
