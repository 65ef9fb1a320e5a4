"""The marketing keys of the configuration: the content mix rule (``[mix]``), UTM tagging (``[utm]``), the
evergreen pool (``[evergreen]``) and, per channel, their overrides and branded ``hashtags``. Used by
:mod:`scheduler.config`; every error is one line naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from adapters.channel import show
from scheduler.mix import MixRule
from scheduler.toml_table import Table
from scheduler.utm import UtmConfig
from scheduler.views import plural

CHANNEL_MIX_KEYS = ("mix", "mix_share", "mix_window")
CHANNEL_UTM_KEYS = ("utm", "utm_source", "utm_medium", "utm_campaign")
CHANNEL_EVERGREEN_KEYS = ("evergreen_fill_ahead", "evergreen_cooldown")
_CHANNEL_KEYS = (*CHANNEL_MIX_KEYS, *CHANNEL_UTM_KEYS, *CHANNEL_EVERGREEN_KEYS, "hashtags")
_HASHTAG = re.compile(r"#?(\w+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class EvergreenConfig:
    """The evergreen pool of a channel (``[evergreen]``, overridden by ``evergreen_fill_ahead`` and
    ``evergreen_cooldown``): an empty slot is filled from the pool once it is ``fill_ahead`` away or less, with a
    post not used on the channel within ``cooldown``."""

    fill_ahead: timedelta = timedelta(days=2)
    cooldown: timedelta = timedelta(days=30)


def read_evergreen(t: Table, base: EvergreenConfig, keys: tuple[str, str], *, quiet: bool = False) -> EvergreenConfig:
    """``fill_ahead`` and ``cooldown`` (under the names ``keys``), each defaulting to ``base``."""
    values: list[timedelta] = []
    for key, default in zip(keys, (base.fill_ahead, base.cooldown), strict=True):
        if quiet and not t.has(key):
            values.append(default)
            continue
        seconds = t.duration(key, default.total_seconds())
        if key == keys[0] and seconds <= 0:
            raise t.error(key, "must be more than 0 seconds (how long before an empty slot the pool fills it)")
        values.append(timedelta(seconds=seconds))
    return EvergreenConfig(fill_ahead=values[0], cooldown=values[1])


def read_top_level(label: str, mix_section: object, utm_section: object) -> tuple[MixRule, UtmConfig]:
    """The config's ``[mix]`` and ``[utm]`` tables (their TOML values, None when absent), with their defaults."""
    mix = MixRule()
    if mix_section is not None:
        m = Table(label, "mix.", mix_section)
        mix = read_mix(m, mix, ("enabled", "share", "window"))
        m.finish()
    utm = UtmConfig()
    if utm_section is not None:
        u = Table(label, "utm.", utm_section)
        domains = tuple(d.lower().lstrip(".") for d in u.strings("domains"))
        utm = read_utm(u, UtmConfig(domains=domains), ("enabled", "source", "medium", "campaign"))
        u.finish()
    return mix, utm


def read_channel(
    t: Table, mix: MixRule, utm: UtmConfig, evergreen: EvergreenConfig
) -> tuple[MixRule, UtmConfig, tuple[str, ...], EvergreenConfig]:
    """A channel's mix rule, UTM settings, hashtags and evergreen pool: its own keys over the config's."""
    # Read only when present: a channel with none of them shares the top-level rule, which was checked with the
    # same values.
    t.allow(*_CHANNEL_KEYS)
    keys = t.data.keys()
    if keys.isdisjoint(_CHANNEL_KEYS):  # most channels of an agency's config
        return mix, utm, (), evergreen
    channel_mix = mix if keys.isdisjoint(CHANNEL_MIX_KEYS) else read_mix(t, mix, CHANNEL_MIX_KEYS, quiet=True)
    channel_utm = utm if keys.isdisjoint(CHANNEL_UTM_KEYS) else read_utm(t, utm, CHANNEL_UTM_KEYS, quiet=True)
    hashtags = read_hashtags(t, "hashtags") if t.has("hashtags") else ()
    if not keys.isdisjoint(CHANNEL_EVERGREEN_KEYS):
        evergreen = read_evergreen(t, evergreen, CHANNEL_EVERGREEN_KEYS, quiet=True)
    return channel_mix, channel_utm, hashtags, evergreen


def read_mix(t: Table, base: MixRule, keys: tuple[str, str, str], *, quiet: bool = False) -> MixRule:
    """A mix rule from ``enabled``/``share``/``window`` keys, each defaulting to ``base``."""
    enabled_key, share_key, window_key = keys
    enabled = t.boolean(enabled_key, base.enabled) if not quiet or t.has(enabled_key) else base.enabled
    share = t.number(share_key, base.share) if not quiet or t.has(share_key) else base.share
    if share > 1:
        raise t.error(share_key, f"{show(t.data[share_key])} is not a share between 0 and 1 (0.5 is half)")
    window = t.whole(window_key, base.window, minimum=1) if not quiet or t.has(window_key) else base.window
    rule = MixRule(share=share, window=window, enabled=enabled)
    if enabled and share > 0 and rule.limit == 0:
        raise t.error(
            share_key if t.has(share_key) else window_key,
            f"{share:g} of {plural(window, 'delivery', 'deliveries')} rounds down to no commercial post at all: "
            "raise the share or the window (or set the share to 0 to allow no commercial post)",
        )
    return rule


def read_utm(t: Table, base: UtmConfig, keys: tuple[str, ...], *, quiet: bool = False) -> UtmConfig:
    """UTM settings from ``enabled``/``source``/``medium``/``campaign`` keys, each defaulting to ``base``."""
    enabled_key, source_key, medium_key, campaign_key = keys

    def value(key: str, default: str | None) -> str | None:
        if quiet and not t.has(key):
            return default
        text = t.string(key, default)
        if text is not None and (len(text) > 128 or _CONTROL.search(text)):
            raise t.error(key, f"{show(text)} must be at most 128 characters without control characters")
        return text

    enabled = t.boolean(enabled_key, base.enabled) if not quiet or t.has(enabled_key) else base.enabled
    medium = value(medium_key, base.medium)
    return UtmConfig(
        enabled=enabled,
        source=value(source_key, base.source),
        medium=medium or "social",
        campaign=value(campaign_key, base.campaign),
        domains=base.domains,
    )


def read_hashtags(t: Table, key: str) -> tuple[str, ...]:
    """Branded hashtags, each with its ``#``, without duplicates (whatever their case)."""
    tags: list[str] = []
    for raw in t.strings(key):
        match = _HASHTAG.fullmatch(raw)
        if not match:
            raise t.error(key, f"{show(raw)} is not a hashtag: letters, digits and _ after an optional #")
        tag = f"#{match.group(1)}"
        if tag.lower() not in (existing.lower() for existing in tags):
            tags.append(tag)
    return tuple(tags)
