"""Alerts where the operator is: a Telegram chat, e-mail, a webhook, anything `apprise <https://appriseit.com>`_ sends.

The daemon owns one :class:`AlertSender` and calls :meth:`AlertSender.notify` wherever something needs the operator
(a delivery failed, a channel's token was revoked); ``notify`` only queues, so a slow or failing destination never
delays a post. The sender's task sends what is queued, per destination: at most one message per ``interval``, and
what happened meanwhile as one digest (:class:`Outbox`, which is plain data and takes the time as a parameter). A
failed send is tried again after a backoff, then logged once and dropped.

apprise is synchronous and slow to import: it is imported on the first send, and each send runs in a thread of its
own under a deadline. A destination's URL holds its secret (a bot token, a password): every part of it that could be
one is registered with :func:`scheduler.log.register_secret`, and apprise's own log lines go through the same
redacting handlers as ours (its logger is kept at WARNING, :func:`scheduler.log.configure_logging`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from scheduler.errors import ConfigError, SmmError
from scheduler.log import escape_for_terminal, redact, register_secret
from scheduler.views import plural

if TYPE_CHECKING:
    from scheduler.config_alerts import AlertsConfig

log = logging.getLogger("smm.alerts")

EVENT_NOUNS: Mapping[str, tuple[str, str]] = {
    "delivery_failed": ("delivery failed", "deliveries failed"),
    "delivery_unknown": ("delivery in doubt", "deliveries in doubt"),
    "channel_attention": ("channel needs attention", "channels need attention"),
    "queue_dry": ("queue runs dry", "queues run dry"),
    "quota_deferred": ("post deferred by a quota", "posts deferred by a quota"),
    "unclean_start": ("start after an unclean stop", "starts after an unclean stop"),
    "comment_digest": ("comment digest", "comment digests"),
}
"""How a digest counts each event: ``1 delivery failed``, ``3 deliveries failed``."""

SHOWN_PER_EVENT = 5
"""A digest lists this many alerts of each event, then counts the rest."""
SECRET_PART = 8
"""Parts of a destination URL at least this long (user, path segments, query values) are treated as secrets."""

Transport = Callable[[str, str, str, float], None]
"""``send(url, title, body, timeout)``: sends one message, or raises :class:`AlertSendError`."""


def ignore_alert(alert: Alert) -> None:
    """Where alerts go when nothing sends them (a publisher outside the daemon, tests)."""


def wanted_by_none(event: str) -> bool:
    """Whether an alert of ``event`` would go anywhere, when nothing sends alerts: never."""
    return False


class AlertSendError(SmmError):
    """A message could not be sent; the text says why, without the URL."""


@dataclass(frozen=True)
class Alert:
    """Something the operator should know: the event (one of :data:`~scheduler.config.ALERT_EVENTS`), what happened
    and what to do, and the post, channel and link it concerns where there is one."""

    event: str
    text: str
    channel: str | None = None
    post_id: int | None = None
    link: str | None = None
    details: tuple[str, ...] = ()
    """Lines under the alert (a digest's comments), each made safe like the text."""

    def lines(self) -> str:
        """:meth:`line`, then each of the ``details`` on a line of its own, indented."""
        return "\n".join([self.line(), *(f"  {escape_for_terminal(redact(d))}" for d in self.details)])

    def line(self) -> str:
        """One line: ``post 12 on vk-news: the token was revoked; run smm doctor https://vk.com/wall-1_2``."""
        about = " on ".join(
            part for part in (f"post {self.post_id}" if self.post_id is not None else "", self.channel or "") if part
        )
        text = f"{about}: {self.text}" if about else self.text
        if self.link:
            text = f"{text} {self.link}"
        return escape_for_terminal(redact(text))


@dataclass(frozen=True)
class Target:
    """A destination ready to send to: its name, its URL (the secret read) and the events it wants."""

    name: str
    url: str
    events: frozenset[str]


@dataclass
class Outbox:
    """What waits to be sent to one destination, and when it may be: one message per ``interval``, and after a
    failed send, the next try after a backoff. Times are ``time.monotonic()`` seconds, passed in."""

    interval: float
    pending: list[Alert] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    not_before: float = float("-inf")
    failures: int = 0

    def add(self, alert: Alert) -> None:
        """Queue ``alert``; past :data:`SHOWN_PER_EVENT` of its event, only counted (a flood stays small)."""
        if self.counts[alert.event] < SHOWN_PER_EVENT:
            self.pending.append(alert)
        self.counts[alert.event] += 1

    def due(self, now: float) -> bool:
        return bool(self.counts) and now >= self.not_before

    def take(self) -> tuple[list[Alert], Counter[str]]:
        """The alerts to send now (and their counts), emptying the box."""
        batch, counts = self.pending, self.counts
        self.pending, self.counts = [], Counter()
        return batch, counts

    def sent(self, now: float) -> None:
        self.failures = 0
        self.not_before = now + self.interval

    def failed(self, batch: list[Alert], counts: Counter[str], now: float, backoff: float) -> None:
        """Put an unsent batch back ahead of what came meanwhile, to be tried after a growing backoff."""
        self.failures += 1
        self.put_back(batch, counts)
        self.not_before = now + backoff * 2 ** (self.failures - 1)

    def put_back(self, batch: list[Alert], counts: Counter[str]) -> None:
        """Put a batch that was not sent back ahead of what came meanwhile."""
        unsent, unsent_counts = self.take()
        shown: Counter[str] = Counter()
        for alert in batch + unsent:
            shown[alert.event] += 1
            if shown[alert.event] <= SHOWN_PER_EVENT:
                self.pending.append(alert)
        self.counts = counts + unsent_counts

    def give_up(self) -> tuple[int, int]:
        """Drop what is queued (after too many failed tries): how many alerts, and the failures, for the log."""
        count, failures = sum(self.counts.values()), self.failures
        self.pending, self.counts, self.failures = [], Counter(), 0
        return count, failures


def compose(batch: Sequence[Alert], counts: Mapping[str, int]) -> tuple[str, str]:
    """The title and body of one message: the alert itself, or a digest by event (``3 deliveries failed: ...``)."""
    total = sum(counts.values())
    if total == 1 and batch:
        alert = batch[0]
        return f"smm: {EVENT_NOUNS[alert.event][0]}", alert.lines()
    sections = []
    for event, nouns in EVENT_NOUNS.items():
        count = counts.get(event, 0)
        if not count:
            continue
        lines = [f"- {alert.lines()}" for alert in batch if alert.event == event]
        shown = len(lines)
        if count > shown:
            lines.append(f"- and {count - shown:,} more")
        sections.append(f"{plural(count, *nouns)}:\n" + "\n".join(lines))
    return f"smm: {plural(total, 'alert', 'alerts')}", "\n\n".join(sections)


class AlertSender:
    """Queues alerts and sends them from a task of its own: :meth:`notify` never waits; :meth:`start` the task in the
    daemon's loop, :meth:`stop` it on the way out (what is still due gets one last bounded try)."""

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        interval: float = 60.0,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 5.0,
        transport: Transport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.targets = tuple(targets)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.transport = transport or send_with_apprise
        self.monotonic = monotonic
        self.boxes = {target.name: Outbox(interval) for target in self.targets}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def from_config(
        cls, alerts: AlertsConfig, env: Mapping[str, str] | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> AlertSender:
        """A sender for the configured destinations; one whose URL cannot be read is left out, and logged."""
        targets = []
        for destination in alerts.destinations:
            try:
                targets.append(Target(destination.name, secret_url(destination.url.read(env)), destination.events))
            except ConfigError as exc:
                log.error("alerts: %s is disabled: %s", destination.name, exc, extra={"action": "alerts_disabled"})
        return cls(targets, interval=alerts.interval, timeout=alerts.timeout, monotonic=monotonic)

    def wants(self, event: str) -> bool:
        """Whether an alert of ``event`` would go anywhere: a destination this sender sends to (its URL was read)
        wants it."""
        return any(event in target.events for target in self.targets)

    def notify(self, alert: Alert) -> None:
        """Queue ``alert`` for every destination that wants its event; returns at once."""
        queued = False
        for target in self.targets:
            if alert.event in target.events:
                self.boxes[target.name].add(alert)
                queued = True
        if queued:
            self._wake.set()

    def start(self) -> None:
        """Run the sending task in the running loop (none without destinations)."""
        if self._task is None and self.targets:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="smm-alerts")

    async def stop(self, within: float | None = None) -> None:
        """Stop the task once the sends it has under way are done, then send what is queued, each destination
        once; all within the send timeout (and ``within`` seconds, the daemon's stop deadline: what is not sent by
        then is dropped)."""
        loop = asyncio.get_running_loop()
        limit = self.timeout if within is None else max(0.0, min(self.timeout, within))
        deadline = loop.time() + limit
        if self._task is not None:
            self._closing = True
            self._wake.set()
            try:
                await asyncio.wait_for(self._task, limit)  # a send cut short puts its alerts back
            except (TimeoutError, asyncio.CancelledError):
                pass
            self._task, self._closing = None, False
        queued = sum(sum(box.counts.values()) for box in self.boxes.values())
        try:
            await asyncio.wait_for(self.pump(final=True), max(0.0, deadline - loop.time()))
        except TimeoutError:
            log.warning("alerts: stopping before %s could be sent", plural(queued, "alert", "alerts"))

    async def _run(self) -> None:
        while not self._closing:
            await self.pump()
            if self._closing:
                return
            self._wake.clear()
            wait = self.next_due()
            try:
                await asyncio.wait_for(self._wake.wait(), None if wait is None else max(0.0, wait))
            except TimeoutError:
                pass

    def next_due(self) -> float | None:
        """Seconds until some destination may be sent to with something queued; None when nothing is queued."""
        now = self.monotonic()
        waits = [box.not_before - now for box in self.boxes.values() if box.counts]
        return min(waits, default=None)

    async def pump(self, *, final: bool = False) -> None:
        """Send to every destination that is due now, together (one slow destination does not hold up another)."""
        now = self.monotonic()
        due = [t for t in self.targets if self.boxes[t.name].due(now) or (final and self.boxes[t.name].counts)]
        await asyncio.gather(*(self._send(target, final) for target in due))

    async def _send(self, target: Target, final: bool) -> None:
        box = self.boxes[target.name]
        batch, counts = box.take()
        title, body = compose(batch, counts)
        try:
            error = await send_bounded(self.transport, target.url, title, body, self.timeout)
        except asyncio.CancelledError:
            box.put_back(batch, counts)
            raise
        now = self.monotonic()
        if error is None:
            box.sent(now)
            return
        box.failed(batch, counts, now, self.backoff)
        if final or box.failures >= self.attempts:
            count, failures = box.give_up()
            log.warning(
                "alerts: %s: dropped %s after %s: %s",
                target.name,
                plural(count, "alert", "alerts"),
                plural(failures, "failed send", "failed sends"),
                error,
            )


async def send_bounded(transport: Transport, url: str, title: str, body: str, timeout: float) -> str | None:
    """Send in a thread of its own and wait at most ``timeout`` (a hung destination's thread is left to its socket
    timeouts, never joined): None when sent, else why not (redacted, one line)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()

    def finish(result: str | None) -> None:
        if not done.done():
            done.set_result(result)

    def work() -> None:
        try:
            transport(url, title, body, timeout)
            result = None
        except AlertSendError as exc:
            result = str(exc)
        except Exception as exc:  # a plugin's bug must not end the sender
            result = f"{type(exc).__name__}: {exc}"
        try:
            loop.call_soon_threadsafe(finish, result)
        except RuntimeError:  # the loop closed while this send hung
            pass

    threading.Thread(target=work, name="smm-alert-send", daemon=True).start()
    try:
        result = await asyncio.wait_for(asyncio.shield(done), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    return None if result is None else escape_for_terminal(redact(result))


def secret_url(url: str) -> str:
    """``url``, with it and every part of it that could be a secret registered, so that no log line shows them."""
    register_secret(url)
    parts = urlsplit(url)
    candidates: list[str] = [parts.password or "", parts.username or ""]
    candidates += [unquote(segment) for segment in parts.path.split("/")]
    candidates += [value for _, value in parse_qsl(parts.query)]
    if "@" not in parts.netloc and "." not in parts.netloc:
        candidates += parts.netloc.split(":")  # tgram://123456:AAE.../chat: the bot token is where a host would be
    for part in candidates:
        if len(part) >= SECRET_PART:
            register_secret(part)
    return url


def send_with_apprise(url: str, title: str, body: str, timeout: float) -> None:
    """Send one message through apprise, its sockets bounded by ``timeout``; :class:`AlertSendError` says why not
    (from apprise's warnings, which name the status or the connection error)."""
    import apprise

    asset = apprise.AppriseAsset(app_id="smm-scheduler", app_desc="smm-scheduler alerts")
    plugin = apprise.Apprise.instantiate(url, asset=asset)
    if plugin is None:
        raise AlertSendError("not a URL apprise can send to (check its scheme and parts)")
    plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, timeout)
    plugin.socket_read_timeout = timeout
    with _Warnings() as warnings:
        ok = plugin.notify(body=body, title=title)
    if not ok:
        raise AlertSendError("; ".join(warnings.messages) or "apprise reported a failure")


class _Warnings(logging.Handler):
    """apprise's warnings and errors logged by this thread while the block runs: the reason a send failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(escape_for_terminal(redact(record.getMessage())))

    def __enter__(self) -> _Warnings:
        logging.getLogger("apprise").addHandler(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        logging.getLogger("apprise").removeHandler(self)


def send_test_alerts(alerts: AlertsConfig, env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """Send a test message to every destination at once: each one's name and None, or why it failed."""

    async def one(name: str, url: str) -> tuple[str, str | None]:
        title = "smm: test alert"
        body = f"A test from smm-scheduler: alerts reach {name}."
        return name, await send_bounded(send_with_apprise, url, title, body, alerts.timeout)

    async def every(targets: Iterable[tuple[str, str]]) -> list[tuple[str, str | None]]:
        return list(await asyncio.gather(*(one(name, url) for name, url in targets)))

    ready: list[tuple[str, str]] = []
    results: dict[str, str | None] = {}
    for destination in alerts.destinations:
        try:
            ready.append((destination.name, secret_url(destination.url.read(env))))
        except ConfigError as exc:
            results[destination.name] = str(exc).removeprefix(f"{destination.url.owner}: ")
    results.update(asyncio.run(every(ready)))
    return [(d.name, results[d.name]) for d in alerts.destinations]
