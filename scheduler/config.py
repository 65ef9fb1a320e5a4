"""Loading and validating the TOML configuration.

:func:`load_config` is the only entry point: it finds the file, parses it (:func:`_parse_toml`) and returns a frozen
:class:`Config`, or raises :class:`~scheduler.errors.ConfigError` whose message names the file, the key and what is
allowed. Unknown keys are errors. Secrets never sit in the file: a channel names an environment variable, a file or
a systemd credential, read only when an adapter is built (:meth:`SecretRef.read`).
"""

from __future__ import annotations

import gc
import os
import re
import stat
import tomllib
from collections.abc import Iterable, KeysView, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from adapters.channel import show
from scheduler import config_marketing
from scheduler.config_channels import LATE_POLICIES, ChannelConfig, read_channel
from scheduler.errors import ConfigError
from scheduler.mix import CATEGORIES, MixRule
from scheduler.slots import DEFAULT_SLOTS, Slot
from scheduler.toml_table import SecretRef, Table
from scheduler.userfile import read_user_file
from scheduler.utm import UtmConfig

if TYPE_CHECKING:
    from scheduler.config_alerts import AlertsConfig
    from scheduler.config_comments import CommentsConfig
    from scheduler.config_feeds import FeedConfig
    from scheduler.config_results import ResultsConfig

__all__ = [
    "CATEGORIES",
    "LATE_POLICIES",
    "ChannelConfig",
    "Config",
    "DaemonConfig",
    "RetryConfig",
    "disabled_channels",
    "find_config",
    "load_config",
]

DEFAULT_CONFIG_LOCATIONS = (Path("config.toml"), Path("/etc/smm-scheduler/config.toml"))
COMPILED_TOML_FROM = 32 * 1024
"""Config size (characters) from which the compiled TOML parser repays its import, which is slower than tomllib's."""


@dataclass(frozen=True)
class RetryConfig:
    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=24)
    in_call_attempts: int = 3
    in_call_max_wait: float = 10.0
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0


@dataclass(frozen=True)
class DaemonConfig:
    late_grace: timedelta = timedelta(minutes=15)
    late_policy: str = "reslot"
    tick: float = 120.0
    shutdown_grace: float = 30.0
    lease: float = 60.0
    queue_warning_days: int = 7
    reconcile_delay: float = 60.0


@dataclass(frozen=True)
class Config:
    """The whole configuration, validated."""

    path: Path
    database_url: str
    media_dir: Path
    timezone: ZoneInfo
    slots: tuple[Slot, ...]
    channels: tuple[ChannelConfig, ...]
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    warnings: tuple[str, ...] = ()
    mix: MixRule = field(default_factory=MixRule)
    utm: UtmConfig = field(default_factory=UtmConfig)
    feeds: tuple[FeedConfig, ...] = ()
    alerts_section: AlertsConfig | None = None
    """``[alerts]`` as written; ``None`` when the config has none (read :attr:`alerts`)."""
    comments_section: CommentsConfig | None = None
    """``[comments]`` as written; ``None`` when the config has none (read :attr:`comments`)."""
    results_section: ResultsConfig | None = None
    """``[results]`` as written; ``None`` when the config has none (read :attr:`results`)."""

    # The sections only the daemon and a few commands use are read by modules loaded when the section is there
    # (or when it is asked for): `smm add` never pays for them.

    @property
    def alerts(self) -> AlertsConfig:
        """``[alerts]``, with its defaults when the config has none."""
        from scheduler.config_alerts import AlertsConfig

        return self.alerts_section or AlertsConfig()

    @property
    def comments(self) -> CommentsConfig:
        """``[comments]``, with its defaults when the config has none."""
        from scheduler.config_comments import CommentsConfig

        return self.comments_section or CommentsConfig()

    @property
    def results(self) -> ResultsConfig:
        """``[results]``, with its defaults when the config has none."""
        from scheduler.config_results import ResultsConfig

        return self.results_section or ResultsConfig()

    def channel(self, name: str) -> ChannelConfig:
        return self._channels_by_name[name]

    def zone_of(self, name: str) -> ZoneInfo:
        """Channel ``name``'s time zone, for times in messages; the config's own for a channel no longer in it."""
        channel = self._channels_by_name.get(name)
        return channel.timezone if channel is not None else self.timezone

    @cached_property
    def _channels_by_name(self) -> dict[str, ChannelConfig]:
        # The daemon asks for channels by name several times per post; an agency's config has thousands.
        return {c.name: c for c in self.channels}

    def feed(self, name: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise KeyError(name)

    @property
    def channel_names(self) -> KeysView[str]:
        """The channels' names, in the config's order (a set-like view: ``in`` is a hash lookup)."""
        return self._channels_by_name.keys()


def disabled_channels(config: Config, names: Iterable[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The channels among ``names`` that smm would disable, as far as this process can tell, and why: a secret it
    cannot read (the reason names where it looked, never a value). A systemd credential is checked only where
    ``$CREDENTIALS_DIRECTORY`` is set: in the service, not in an operator's shell."""
    env = os.environ if env is None else env
    disabled: dict[str, str] = {}
    for name in names:
        for ref in config.channel(name).secrets.values():
            if ref.source == "credential" and not env.get("CREDENTIALS_DIRECTORY"):
                continue
            try:
                ref.read(env)
            except ConfigError as exc:
                disabled[name] = str(exc).removeprefix(f"{ref.owner}: ")
                break
    return disabled


def find_config(explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to use: ``--config``, else ``$SMM_CONFIG``, else ./config.toml, else /etc/smm-scheduler."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("SMM_CONFIG"):
        return Path(env["SMM_CONFIG"])
    for candidate in DEFAULT_CONFIG_LOCATIONS:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "no config file: pass --config PATH, set $SMM_CONFIG, or create ./config.toml "
        "(config.example.toml is a working start)"
    )


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Find, read and validate the configuration."""
    env = os.environ if env is None else env
    config_path = find_config(path, env)
    label = str(config_path)
    raw = read_user_file(label, what="a config file", error=ConfigError)
    # An agency's config is tens of thousands of small objects without cycles: the cyclic collector would walk
    # them again and again while they are built (and `smm add` into one more full collection) and free nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            text = raw.decode("utf-8-sig")  # a byte order mark (Windows editors) is not an error
        except UnicodeDecodeError:
            raise ConfigError(f"{label}: not UTF-8 text") from None
        return _build(_parse_toml(text, label), config_path.resolve(), label, env)
    finally:
        if collecting:
            gc.enable()


def _parse_toml(text: str, label: str) -> dict[str, Any]:
    """The TOML document: parsed by ``tomli``, which is ``tomllib``'s own code compiled (faster on an agency's big
    config), when the file is big enough to repay its import; else by ``tomllib``. Same results, same messages."""
    parser: Any = tomllib
    if len(text) >= COMPILED_TOML_FROM:
        import tomli as parser  # pinned to the TOML version tomllib reads (pyproject.toml)
    try:
        data: dict[str, Any] = parser.loads(text)
    except parser.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML: {exc}") from None
    return data


# -- validation ---------------------------------------------------------------------------------------------------


def _base_dir(config_dir: Path, env: Mapping[str, str]) -> Path:
    state = env.get("STATE_DIRECTORY")
    if state:
        # systemd may pass several colon-separated directories; the first is ours.
        return Path(state.split(":")[0])
    return config_dir


def _database_url(table: Table, base: Path) -> str:
    url = table.string("url", "sqlite:///smm.db")
    assert url is not None
    if url.startswith("sqlite"):
        scheme, sep, rest = url.partition(":///")
        if not sep:
            raise table.error("url", f'{show(url)} is not a SQLite URL such as "sqlite:///smm.db"')
        if not rest or rest.split("?")[0] == ":memory:":
            raise table.error(
                "url", f'{show(url)} names no database file (the queue would be lost); use e.g. "sqlite:///smm.db"'
            )
        if not rest.startswith("/"):
            url = f"{scheme}:///{(base / rest).resolve()}"
        return url
    if url.startswith(("postgresql+psycopg://", "postgresql://", "postgres://")):
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://") :]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        _check_postgresql_url(table, url)
        return url
    raise table.error("url", f"{show(url)} is not a sqlite:/// or postgresql+psycopg:// URL")


def _check_postgresql_url(table: Table, url: str) -> None:
    """Refuse a PostgreSQL URL that cannot work (a port that is not a number, an option libpq does not know)
    now, naming it without its password, rather than as an unexpected error at the first query."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - parsing the port is the check
    except (ArgumentError, ValueError) as exc:
        raise table.error("url", f"{shown} is not a valid URL: {exc}") from None
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    except psycopg.Error as exc:
        raise table.error("url", f"{shown}: {' '.join(str(exc).split())}") from None


def _build(data: dict[str, Any], path: Path, label: str, env: Mapping[str, str]) -> Config:
    root = Table(label, "", data)
    base = _base_dir(path.parent, env)

    db = Table(label, "database.", _section(root, "database"))
    database_url = _database_url(db, base)
    db.finish()

    media = Table(label, "media.", _section(root, "media"))
    media_path = media.string("path")
    media.finish()
    if media_path is not None:
        media_dir = Path(media_path) if Path(media_path).is_absolute() else (base / media_path).resolve()
    elif database_url.startswith("sqlite"):
        media_dir = Path(database_url.partition(":///")[2].split("?")[0]).parent / "media"
    else:
        media_dir = (base / "media").resolve()

    schedule = Table(label, "schedule.", _section(root, "schedule"))
    timezone = schedule.timezone("timezone", ZoneInfo("UTC"))
    slots = schedule.slots("slots", DEFAULT_SLOTS)
    schedule.finish()

    d = Table(label, "daemon.", _section(root, "daemon"))
    daemon = DaemonConfig(
        late_grace=timedelta(seconds=d.duration("late_grace", 900)),
        late_policy=d.choice("late_policy", LATE_POLICIES, "reslot") or "reslot",
        tick=max(0.05, d.duration("tick", 120)),
        shutdown_grace=d.duration("shutdown_grace", 30),
        lease=max(1.0, d.duration("lease", 60)),
        queue_warning_days=d.whole("queue_warning_days", 7),
        reconcile_delay=d.duration("reconcile_delay", 60),
    )
    d.finish()

    r = Table(label, "retry.", _section(root, "retry"))
    retry = RetryConfig(
        max_attempts=r.whole("max_attempts", 8, minimum=1),
        max_age=timedelta(seconds=r.duration("max_age", 86400)),
        in_call_attempts=r.whole("in_call_attempts", 3, minimum=1),
        in_call_max_wait=r.duration("in_call_max_wait", 10),
        backoff_base=r.duration("backoff_base", 30),
        backoff_cap=r.duration("backoff_cap", 3600),
    )
    r.finish()

    root.allow("mix", "utm", "feeds", "alerts", "comments", "evergreen", "results")
    evergreen = config_marketing.EvergreenConfig()
    if root.has("evergreen"):
        e = Table(label, "evergreen.", _section(root, "evergreen"))
        evergreen = config_marketing.read_evergreen(e, evergreen, ("fill_ahead", "cooldown"))
        e.finish()
    alerts: AlertsConfig | None = None
    if root.has("alerts"):
        from scheduler.config_alerts import read_alerts

        alerts = read_alerts(_section(root, "alerts"), label, path.parent)
    comments: CommentsConfig | None = None
    if root.has("comments"):
        from scheduler.config_comments import read_comments

        comments = read_comments(_section(root, "comments"), label)
    results: ResultsConfig | None = None
    if root.has("results"):
        from scheduler.config_results import read_results

        results = read_results(_section(root, "results"), label)
    mix, utm = config_marketing.read_top_level(
        label,
        _section(root, "mix") if root.has("mix") else None,
        _section(root, "utm") if root.has("utm") else None,
    )

    raw_channels = root.get("channels")
    if raw_channels is None:
        raw_channels = []
    if not isinstance(raw_channels, list):
        raise root.error("channels", "must be an array of tables: [[channels]]")
    config_dir = path.parent
    channels = tuple(
        read_channel(entry, i, label, timezone, slots, base, config_dir, mix, utm, evergreen)
        for i, entry in enumerate(raw_channels)
    )
    seen: dict[str, int] = {}
    for i, channel in enumerate(channels):
        if channel.name in seen:
            first = seen[channel.name]
            raise ConfigError(
                f"{label}: channels[{i}].name: {show(channel.name)} is already the name of channels[{first}]"
            )
        seen[channel.name] = i
    feeds: tuple[FeedConfig, ...] = ()
    if root.has("feeds"):
        from scheduler.config_feeds import read_feeds

        feeds = read_feeds(root, label, tuple(c.name for c in channels), path.parent)
    root.finish()

    return Config(
        path=path,
        database_url=database_url,
        media_dir=media_dir,
        timezone=timezone,
        slots=slots,
        channels=channels,
        daemon=daemon,
        retry=retry,
        warnings=_permission_warnings(
            path,
            label,
            [
                *(ref for c in channels for ref in c.secrets.values()),
                *(d.url for d in (alerts.destinations if alerts else ())),
            ],
        ),
        mix=mix,
        utm=utm,
        feeds=feeds,
        alerts_section=alerts,
        comments_section=comments,
        results_section=results,
    )


def _section(root: Table, name: str) -> Any:
    """A top-level table; absent means empty (a present non-table, even ``""`` or ``[]``, is an error)."""
    value = root.get(name)
    return {} if value is None else value


def _permission_warnings(path: Path, label: str, refs: list[SecretRef]) -> tuple[str, ...]:
    """Secret files others can read, and a config others can edit (they could send the secrets elsewhere)."""
    warnings: list[str] = []
    modes: dict[str, int | None] = {}  # channels often share their secret files
    for ref in refs:
        if ref.source != "file":
            continue
        if ref.name not in modes:
            try:
                modes[ref.name] = Path(ref.name).stat().st_mode
            except OSError:
                modes[ref.name] = None  # reported when the secret is read
        mode = modes[ref.name]
        if mode is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{label}: {ref.key}: {ref.name} is readable or writable by other users "
                f"(mode {stat.S_IMODE(mode):o}): chmod 600 it"
            )
    if refs:
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        names_files = any(ref.source == "file" for ref in refs)
        if names_files and mode & stat.S_IROTH:
            warnings.append(
                f"{label} is readable by other users (mode {stat.S_IMODE(mode):o}) and names the files that hold "
                "the secrets: chmod o-r it (640 with the service's group, or 600)"
            )
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            warnings.append(
                f"{label} is writable by other users (mode {stat.S_IMODE(mode):o}), who could send the channels' "
                "secrets to another api_url: chmod go-w it"
            )
    return tuple(warnings)
