"""``smm doctor``: check the config and every channel's credentials and rights, one line per channel."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import click

from adapters.errors import PublishError
from scheduler import repository as repo
from scheduler.channels import AdapterFactory
from scheduler.config import ChannelConfig, Config
from scheduler.db import Database
from scheduler.errors import SmmError
from scheduler.log import redact

log = logging.getLogger("smm.doctor")


async def check_channel(factory: AdapterFactory, channel: ChannelConfig) -> tuple[bool, str]:
    """Whether the channel can publish, and a line saying what was checked or what to fix."""
    try:
        adapter = factory.build(channel)
    except SmmError as exc:
        return False, str(exc)
    try:
        return True, await adapter.check()
    except PublishError as exc:
        return False, str(exc)
    except Exception as exc:  # doctor reports; it must not crash on one channel
        return False, f"unexpected {type(exc).__name__}: {exc}"
    finally:
        try:
            await adapter.aclose()
        except Exception as exc:
            log.debug("closing %s: %s", channel.name, exc)


async def _check_all(config: Config) -> list[tuple[ChannelConfig, bool, str]]:
    factory = AdapterFactory()
    try:
        results = await asyncio.gather(*(check_channel(factory, c) for c in config.channels))
    finally:
        await factory.aclose()
    return [(c, ok, detail) for c, (ok, detail) in zip(config.channels, results, strict=True)]


def run_doctor(config: Config, db: Database) -> int:
    """Print one line per channel and return 0 only when every channel is ready."""
    for warning in config.warnings:
        click.echo(f"warn  config: {warning}")
    if not config.channels:
        click.echo(f"FAIL  config: no channels in {config.path}")
        return 1
    with db.read() as session:
        attention: dict[str, Any] = repo.attention(session)
    all_ok = True
    width = max(len(c.name) for c in config.channels)
    for channel, ok, detail in asyncio.run(_check_all(config)):
        all_ok &= ok
        click.echo(redact(f"{'ok  ' if ok else 'FAIL'}  {channel.name:<{width}}  {channel.network}: {detail}"))
        if channel.name in attention:
            click.echo(redact(f"{'':4}  {'':<{width}}  last publish error: {attention[channel.name]}"))
    return 0 if all_ok else 1
