"""``smm doctor``: check the config and every channel's credentials and rights, one line per channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import click

from adapters import Adapter
from adapters.errors import PublishError, RateLimited
from adapters.reading_check import ReadingCheck, check_reading
from scheduler import repository as repo
from scheduler.channels import AdapterFactory
from scheduler.config import ChannelConfig, Config, RetryConfig
from scheduler.db import Database
from scheduler.errors import NoDatabaseYet, SmmError
from scheduler.log import redact
from scheduler.store.results import last_published

log = logging.getLogger("smm.doctor")
T = TypeVar("T")
#: Attempts per check when the network says "too many requests" (several channels on one token or bot).
RATE_LIMITED_ATTEMPTS = 3


@dataclass(frozen=True)
class ChannelCheck:
    """What ``smm doctor`` found of one channel: whether it can publish and the line saying so, a note on its
    comments where the network needs one (:meth:`Adapter.comments_check`), and whether its results and audience
    can be read back (:func:`adapters.reading_check.check_reading`)."""

    ok: bool
    detail: str
    comments: str | None = None
    reading: tuple[ReadingCheck, ...] = ()


async def check_channel(
    adapter: Adapter, retry: RetryConfig, last_post: str | None = None, *, reading: bool = False
) -> ChannelCheck:
    """Check the channel; with ``reading``, also read back its audience and the results of ``last_post`` (its last
    published post's remote id).

    A rate limit with a short ``retry_after`` (at most ``in_call_max_wait``) is waited out and the check repeated.
    """
    try:
        line = await _patiently(adapter.check, retry)
        back: tuple[ReadingCheck, ...] = ()
        if reading:
            try:
                back = tuple(await _patiently(partial(check_reading, adapter, last_post), retry))
            except RateLimited as exc:
                back = (ReadingCheck("results", False, f"not checked: {exc}"),)
        return ChannelCheck(True, line, await _comments_note(adapter), back)
    except PublishError as exc:
        return ChannelCheck(False, str(exc))
    except Exception as exc:  # doctor reports; it must not crash on one channel
        return ChannelCheck(False, f"unexpected {type(exc).__name__}: {exc}")
    finally:
        try:
            await adapter.aclose()
        except Exception as exc:
            log.debug("closing %s adapter: %s", adapter.network, exc)


async def _patiently(call: Callable[[], Awaitable[T]], retry: RetryConfig) -> T:
    """``call()``, again after the wait the network asked for when it says "too many requests" (several channels on
    one token or bot), at most ``RATE_LIMITED_ATTEMPTS`` times and only for waits up to ``in_call_max_wait``."""
    attempt = 1
    while True:
        try:
            return await call()
        except RateLimited as exc:
            wait = exc.retry_after or 1.0
            if attempt >= RATE_LIMITED_ATTEMPTS or wait > retry.in_call_max_wait:
                raise
        attempt += 1
        await asyncio.sleep(wait)


async def _comments_note(adapter: Adapter) -> str | None:
    try:
        return await adapter.comments_check()
    except PublishError as exc:
        return f"cannot tell whether comments can be read: {exc}"


async def _check_all(config: Config, last_posts: dict[str, str]) -> list[tuple[ChannelConfig, ChannelCheck]]:
    """Check every channel; channels sharing a rate limit (one VK user token, one bot) one after another."""
    factory = AdapterFactory()
    results: dict[str, ChannelCheck] = {}
    groups: dict[str, list[tuple[ChannelConfig, Adapter]]] = {}

    async def check_group(members: list[tuple[ChannelConfig, Adapter]]) -> None:
        for channel, adapter in members:
            results[channel.name] = await check_channel(
                adapter, config.retry, last_posts.get(channel.name), reading=config.results.enabled
            )

    try:
        for channel in config.channels:
            try:
                adapter = factory.build(channel)
            except SmmError as exc:
                results[channel.name] = ChannelCheck(False, str(exc))
                continue
            groups.setdefault(adapter.lease_group, []).append((channel, adapter))
        await asyncio.gather(*(check_group(members) for members in groups.values()))
    finally:
        await factory.aclose()
    return [(c, results[c.name]) for c in config.channels]


def run_doctor(config: Config, open_db: Callable[[], Database]) -> int:
    """Print one line for the database and one per channel; return 0 only when every line is ``ok``.

    ``FAIL``: smm cannot work until it is fixed. ``warn``: it works, but a person should act (a config warning, no
    database yet). Checking changes nothing: no database, folder or file is created.
    """
    all_ok = True
    for warning in config.warnings:
        all_ok = False
        click.echo(f"warn  config: {warning}")
    if not config.channels:
        click.echo(f"FAIL  config: no channels in {config.path}")
        return 1
    attention: dict[str, Any] = {}
    last_posts: dict[str, str] = {}
    try:
        db = open_db()
        with db.read() as session:
            attention = repo.attention(session)
            last_posts = last_published(session, [c.name for c in config.channels])
        click.echo(f"ok    database: {db.where} (schema current)")
    except NoDatabaseYet as exc:
        all_ok = False
        click.echo(f"warn  database: {exc}")
    except SmmError as exc:
        all_ok = False
        click.echo(redact(f"FAIL  database: {exc}"))
    width = max(len(c.name) for c in config.channels)
    for channel, check in asyncio.run(_check_all(config, last_posts)):
        all_ok &= check.ok
        click.echo(
            redact(f"{'ok  ' if check.ok else 'FAIL'}  {channel.name:<{width}}  {channel.network}: {check.detail}")
        )
        if channel.name in attention:
            click.echo(redact(f"{'':4}  {'':<{width}}  last publish error: {attention[channel.name]}"))
        for line in check.reading:  # a read the token may not make is a warning: publishing works
            all_ok &= line.ok
            click.echo(redact(f"{'' if line.ok else 'warn':4}  {'':<{width}}  {line.what}: {line.detail}"))
        if check.comments is not None:
            click.echo(redact(f"{'':4}  {'':<{width}}  comments: {check.comments}"))
    return 0 if all_ok else 1
