"""A TOML table under validation: typed getters whose errors name the file and the key, and unknown-key checks.

Used by :mod:`scheduler.config`; every error is one line: ``<file>: <section>.<key>: <what is allowed>``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.channel import show
from scheduler.errors import ConfigError
from scheduler.slots import Slot, parse_slots

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: an environment variable, a file, or a systemd credential."""

    source: str  # "env" | "file" | "credential"
    name: str
    key: str  # the config key that named it, for messages
    owner: str  # "channels[1] (vk-news)", for messages

    def read(self, env: Mapping[str, str] | None = None) -> str:
        """The secret's value, or a ConfigError naming the channel and where the secret was looked for."""
        env = os.environ if env is None else env
        if self.source == "env":
            value = env.get(self.name, "")
            if not value.strip():
                raise ConfigError(f"{self.owner}: {self.key}: environment variable {self.name} is not set")
            return value.strip()
        if self.source == "credential":
            directory = env.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(
                    f"{self.owner}: {self.key}: credential {self.name!r} needs $CREDENTIALS_DIRECTORY "
                    "(set by systemd's LoadCredential=)"
                )
            path = Path(directory) / self.name
        else:
            path = Path(self.name)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{self.owner}: {self.key}: cannot read {path}: {exc.strerror or exc}") from None
        if not value:
            raise ConfigError(f"{self.owner}: {self.key}: {path} is empty")
        return value


class Table:
    """A TOML table being validated: typed getters that raise ConfigError naming the key, and unknown-key checks."""

    def __init__(self, label: str, prefix: str, data: Any) -> None:
        self.label = label
        self.prefix = prefix
        if not isinstance(data, dict):
            raise ConfigError(f"{label}: {prefix.rstrip('.')}: must be a table")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()
        self.known: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.label}: {self.prefix}{key}: {message}")

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return key in self.data

    def allow(self, *keys: str) -> None:
        """Count ``keys`` as valid here, for the unknown-key hint, although they were not read (being absent)."""
        self.known.update(keys)

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.get(key)
        if value is None:
            if required:
                raise self.error(key, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, not {show(value)}")
        return value.strip()

    def name(self, key: str, default: str | None = None) -> str:
        """A name (of a channel, a feed, an alert destination): 1-64 letters, digits, '-', '_' or '.'; required
        when there is no ``default``."""
        name = self.string(key, default, required=default is None)
        assert name is not None
        if not _NAME.fullmatch(name):
            raise self.error(key, f"{show(name)} must be 1-64 letters, digits, '-', '_' or '.'")
        return name

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.get(key)
        if value is None:
            return default
        if value not in allowed:
            raise self.error(key, f"{show(value)} is not one of {', '.join(allowed)}")
        return str(value)

    def whole(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be a whole number >= {minimum}, not {show(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {show(value)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, f"must be a list of non-empty strings, not {show(value)}")
        return tuple(v.strip() for v in value)

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(key, f"must be a number >= {minimum:g}, not {show(value)}")
        return float(value)

    def duration(self, key: str, default: float) -> float:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        if isinstance(value, str):
            seconds = duration_seconds(value)
            if seconds is not None:
                return seconds
        raise self.error(key, f'{show(value)} is not a duration such as 90, "30s", "15m", "2h" or "1d"')

    def durations(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        """A list of durations, each a number of seconds or a string with a unit (as :meth:`duration` reads)."""
        value = self.get(key)
        if value is None:
            return default
        found: list[float | None] = []
        for item in value if isinstance(value, list) else [None]:
            if isinstance(item, int | float) and not isinstance(item, bool) and item >= 0:
                found.append(float(item))
            else:
                found.append(duration_seconds(item) if isinstance(item, str) else None)
        if not isinstance(value, list) or None in found:
            raise self.error(key, f'{show(value)} is not a list of durations such as ["1h", "24h", "7d"]')
        return tuple(seconds for seconds in found if seconds is not None)

    def timezone(self, key: str, default: ZoneInfo) -> ZoneInfo:
        name = self.string(key)
        if name is None:
            return default
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error(key, f'{show(name)} is not an IANA time zone such as "Europe/Moscow"') from None

    def slots(self, key: str, default: tuple[Slot, ...]) -> tuple[Slot, ...]:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, 'must be a list of slots such as ["tue 10:00", "fri 10:00"]')
        try:
            return _parse_slots(tuple(value))
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def secret(self, base: str, owner: str, folder: Path, *, required: bool = True) -> SecretRef | None:
        """``<base>_env``, ``<base>_file`` or ``<base>_credential``: exactly one of them.

        A relative ``<base>_file`` is read from ``folder`` (the config file's), not from wherever smm was started.
        """
        if self.has(base):
            raise self.error(base, f"secrets never go in the config: use {base}_env, {base}_file or {base}_credential")
        present = [(s, v) for s in ("env", "file", "credential") if (v := self.string(f"{base}_{s}")) is not None]
        if len(present) > 1:
            keys = " and ".join(f"{base}_{s}" for s, _ in present)
            raise self.error(f"{base}_*", f"{keys} both given; use one")
        if not present:
            if required:
                raise self.error(f"{base}_env", f"is required (or {base}_file, or {base}_credential)")
            return None
        source, name = present[0]
        assert name is not None
        if source == "file":
            name = _in_folder(folder, name)
        return SecretRef(source=source, name=name, key=f"{self.prefix}{base}_{source}", owner=owner)

    def finish(self) -> None:
        """Refuse the first key nobody read, naming the closest valid keys and every valid key of this table."""
        if not self.used.issuperset(self.data):
            unknown = min(set(self.data) - self.used)
            known = sorted(self.used | self.known)
            close = closest(unknown, known)
            hint = f"unknown key, did you mean {' or '.join(close)}?" if close else "unknown key"
            raise self.error(toml_key(unknown), f"{hint} (known here: {', '.join(known)})")


def closest(word: str, candidates: list[str]) -> list[str]:
    """The candidates closest to a misspelt ``word`` (case aside), best first: those about as close as the best."""
    import difflib  # only on an error: not on every command's path

    lowered = word.lower()
    by_case = {c.lower(): c for c in candidates}
    scored = [
        (difflib.SequenceMatcher(None, lowered, c).ratio(), c)
        for c in difflib.get_close_matches(lowered, by_case, n=3, cutoff=0.6)
    ]
    return [by_case[c] for score, c in scored if score >= scored[0][0] - 0.1]


# An agency's config repeats the same few durations, slot lists and secret folders over thousands of channels.
@lru_cache(maxsize=256)
def duration_seconds(text: str) -> float | None:
    """A duration string (`"90"`, `"30s"`, `"15m"`, `"2h"`, `"1d"`) in seconds, or None when it is not one."""
    match = _DURATION.match(text)
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)] if match else None


@lru_cache(maxsize=256)
def _parse_slots(texts: tuple[str, ...]) -> tuple[Slot, ...]:
    return parse_slots(texts)


@lru_cache(maxsize=256)
def _in_folder(folder: Path, name: str) -> str:
    """``name`` as it is, when absolute, else inside ``folder``."""
    return name if Path(name).is_absolute() else str(folder / name)


def toml_key(key: str) -> str:
    """A key as TOML would spell it: bare when it can be, else quoted (and on one line)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)
