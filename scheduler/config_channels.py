"""A channel of the configuration (``[[channels]]``): :class:`ChannelConfig`, its reading and checking
(:func:`read_channel`, used by :mod:`scheduler.config`).

The keys every channel has are read here; a network's own keys and secrets are read by its adapter class
(:meth:`~adapters.base.Adapter.read_options`, :attr:`~adapters.base.Adapter.secret_keys`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters import ADAPTERS, adapter_class
from adapters.channel import show
from scheduler import config_marketing
from scheduler.mix import MixRule
from scheduler.slots import Slot
from scheduler.toml_table import SecretRef, Table
from scheduler.utm import UtmConfig

LATE_POLICIES = ("publish", "reslot", "skip")
_API_URL = re.compile(r"^https?://[^\s/]+")


@dataclass(frozen=True)
class ChannelConfig:
    """One channel: a VK community, a Telegram channel, a Facebook Page, an OK group, an outbox folder (one of
    the networks in :data:`adapters.ADAPTERS`)."""

    name: str
    network: str
    timezone: ZoneInfo
    slots: tuple[Slot, ...]
    api_url: str | None
    options: Mapping[str, Any]
    """Network-specific settings (group_id, chat_id, parse_mode, path, ...), validated by the network's adapter
    (:meth:`~adapters.base.Adapter.read_options`)."""
    secrets: Mapping[str, SecretRef]
    """Named secrets the adapter needs (``token``, ``application_secret``)."""
    on_uncertain: str = "hold"
    late_policy: str | None = None
    timeout: float = 30.0
    mix: MixRule = field(default_factory=MixRule)
    """The content mix rule (``[mix]``, overridden by ``mix``, ``mix_share``, ``mix_window``)."""
    utm: UtmConfig = field(default_factory=UtmConfig)
    """UTM tagging (``[utm]``, overridden by ``utm``, ``utm_source``, ``utm_medium``, ``utm_campaign``)."""
    hashtags: tuple[str, ...] = ()
    """Branded hashtags appended at render time, as far as the text limit allows (with their ``#``)."""
    evergreen: config_marketing.EvergreenConfig = field(default_factory=config_marketing.EvergreenConfig)
    """The evergreen pool (``[evergreen]``, overridden by ``evergreen_fill_ahead``, ``evergreen_cooldown``)."""
    native_schedule: bool = False
    """Hand each post to the network ahead of its time (VK ``publish_date``, Facebook ``scheduled_publish_time``),
    so that the network publishes it even if the daemon is down then."""

    @property
    def parse_mode(self) -> str | None:
        """The markup of the channel's texts (Telegram's ``parse_mode``; None for plain text), as its network's
        adapter reads it from the options (:meth:`~adapters.base.Adapter.markup`)."""
        return adapter_class(self.network).markup(self.options)

    @property
    def api_root(self) -> str:
        """``api_url``, else the network's own API root, without a trailing slash."""
        return (self.api_url or adapter_class(self.network).default_api_root).rstrip("/")


def read_channel(
    entry: Any,
    index: int,
    label: str,
    schedule_tz: ZoneInfo,
    schedule_slots: tuple[Slot, ...],
    base: Path,
    config_dir: Path,
    mix: MixRule,
    utm: UtmConfig,
    evergreen: config_marketing.EvergreenConfig,
) -> ChannelConfig:
    """``[[channels]]`` entry ``index``: the keys every channel has, then its network's own (read by its adapter
    class) and its secrets; ``schedule_*``, ``mix``, ``utm`` and ``evergreen`` are the defaults it overrides."""
    t = Table(label, f"channels[{index}].", entry)
    name = t.name("name")
    network = t.get("network")
    if network is None:
        raise t.error("network", f"is required: one of {', '.join(ADAPTERS)}")
    if network not in ADAPTERS:
        raise t.error("network", f"{show(network)} is not one of {', '.join(ADAPTERS)}")
    adapter = adapter_class(network)
    owner = f"channel {name!r}"
    timezone = t.timezone("timezone", schedule_tz)
    slots = t.slots("slots", schedule_slots)
    api_url = t.string("api_url")
    if api_url is not None and not _API_URL.match(api_url):
        raise t.error("api_url", f"{show(api_url)} is not an http(s) URL")
    on_uncertain = t.choice("on_uncertain", ("hold", "retry"), "hold")
    late_policy = t.choice("late_policy", LATE_POLICIES)
    timeout = t.duration("timeout", 30.0)
    options = adapter.read_options(t, base)
    secrets: dict[str, SecretRef] = {}
    for secret in adapter.secret_keys:
        ref = t.secret(secret, owner, config_dir)
        assert ref is not None
        secrets[secret] = ref
    channel_mix, channel_utm, hashtags, channel_evergreen = config_marketing.read_channel(t, mix, utm, evergreen)
    t.allow("native_schedule")
    native_schedule = t.boolean("native_schedule", False) if t.has("native_schedule") else False
    if native_schedule and not adapter.supports_native_schedule:
        able = [name for name in ADAPTERS if adapter_class(name).supports_native_schedule]
        raise t.error("native_schedule", f"{network} cannot schedule posts itself; only {' and '.join(able)} can")
    t.finish()
    return ChannelConfig(
        name=name,
        network=network,
        timezone=timezone,
        slots=slots,
        api_url=api_url,
        options=options,
        secrets=secrets,
        on_uncertain=on_uncertain or "hold",
        late_policy=late_policy,
        timeout=timeout,
        mix=channel_mix,
        utm=channel_utm,
        hashtags=hashtags,
        evergreen=channel_evergreen,
        native_schedule=native_schedule,
    )
