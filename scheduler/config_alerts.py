"""The ``[alerts]`` table of the configuration: where alerts go (:class:`AlertsConfig`) and its validation
(:func:`read_alerts`). Used by :mod:`scheduler.config`; every error is one line naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.channel import show
from scheduler.toml_table import SecretRef, Table, closest

ALERT_EVENTS = (
    "delivery_failed",
    "delivery_unknown",
    "channel_attention",
    "queue_dry",
    "quota_deferred",
    "unclean_start",
    "comment_digest",
)
"""What an alert destination can ask for (``events``; all of them by default)."""


@dataclass(frozen=True)
class AlertDestination:
    """Where alerts go (``[[alerts.destinations]]``): an apprise URL, itself a secret, and the events it wants."""

    name: str
    url: SecretRef
    events: frozenset[str] = frozenset(ALERT_EVENTS)


@dataclass(frozen=True)
class AlertsConfig:
    """``[alerts]``: the destinations, and how often and how long each may be sent to."""

    destinations: tuple[AlertDestination, ...] = ()
    interval: float = 60.0
    """At most one message per destination in this many seconds; what happens meanwhile goes into one digest."""
    timeout: float = 30.0
    """The longest one send may take."""


def read_alerts(section: Any, label: str, config_dir: Path) -> AlertsConfig:
    """The ``[alerts]`` table (``section``, the TOML value): its destinations (each URL a secret) and timings."""
    a = Table(label, "alerts.", section)
    interval = a.duration("interval", 60)
    timeout = a.duration("timeout", 30)
    if timeout <= 0:
        raise a.error("timeout", "must be more than 0 seconds")
    raw = a.get("destinations")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise a.error("destinations", "must be an array of tables: [[alerts.destinations]]")
    destinations: list[AlertDestination] = []
    for i, entry in enumerate(raw):
        t = Table(label, f"alerts.destinations[{i}].", entry)
        name = t.name("name", f"destination-{i + 1}")
        if any(d.name == name for d in destinations):
            raise t.error("name", f"{show(name)} is already the name of another destination")
        url = t.secret("url", f"alert destination {name!r}", config_dir)
        assert url is not None
        events = t.strings("events")
        for event in events:
            if event not in ALERT_EVENTS:
                close = closest(event, list(ALERT_EVENTS))
                hint = f", did you mean {' or '.join(close)}?" if close else ""
                raise t.error("events", f"{show(event)} is not an event{hint} (known: {', '.join(ALERT_EVENTS)})")
        if t.has("events") and not events:
            raise t.error("events", "is empty: leave it out to get every event")
        t.finish()
        destinations.append(AlertDestination(name, url, frozenset(events or ALERT_EVENTS)))
    a.finish()
    return AlertsConfig(destinations=tuple(destinations), interval=interval, timeout=timeout)
