"""What every ``smm`` command shares: :class:`Context` (the config, loaded on first use, and the database) and the
global options ``--config`` and ``-v``, taken before or after a (sub)command's name (:class:`RootGroup`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from scheduler.config import Config, load_config
from scheduler.errors import NoDatabaseYet, NotFound
from scheduler.log import configure_logging

if TYPE_CHECKING:
    from scheduler.db import Database  # imported when a command needs it: it loads SQLAlchemy

log = logging.getLogger("smm.cli")


class Context:
    """What every command needs: the config (loaded on first use) and the database."""

    def __init__(self, config_path: str | None, verbose: int) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._db: Database | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            for warning in self._config.warnings:
                log.warning("%s", warning)
        return self._config

    @property
    def db(self) -> Database:
        """The database, for commands that write: created (with a note on stderr) when it does not exist yet."""
        if self._db is None:
            from scheduler.db import Database, sqlite_path

            path = sqlite_path(self.config.database_url)
            if path is not None and not path.exists():
                self._db = Database(self.config.database_url, before_first_write=self._create_schema)
            else:
                self._db = database = Database(self.config.database_url)
                database.check_schema(create=True)
        return self._db

    def close(self) -> None:
        """Close the database's connections: SQLite folds its write-ahead log back into the file when the last one
        closes (no daemon running), so that ``smm.db`` alone then holds everything."""
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def db_of_post(self, post_id: int) -> Database:
        """The database, for commands on a queued post: never created by them; none yet means no such post."""
        try:
            return self.existing_db
        except NoDatabaseYet as exc:
            raise NotFound(f"no post with id {post_id}: {exc}") from None

    @staticmethod
    def _create_schema(database: Database) -> None:
        database.check_schema(create=True)
        click.echo(f"smm: created a new database at {database.where}", err=True)

    @property
    def existing_db(self) -> Database:
        """The database, for commands that only read: never created by them."""
        if self._db is None:
            from scheduler.db import Database, sqlite_path

            path = sqlite_path(self.config.database_url)
            if path is not None and not path.exists():
                raise NoDatabaseYet(
                    f"no database at {path} yet: nothing was queued with this config ({self.config.path}); "
                    "`smm add` creates it"
                )
            self._db = database = Database(self.config.database_url)  # closed by close(), even if the check fails
            database.check_schema(create=False)
        return self._db


CONFIG_HELP = "Config file (default: $SMM_CONFIG, ./config.toml, /etc/smm-scheduler/config.toml)."
VERBOSE_HELP = "More log output (-vv includes the HTTP libraries, redacted)."


def _later_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_object(Context).config_path = value  # type: ignore[union-attr]


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    ctx.find_object(Context).verbose += value  # type: ignore[union-attr]


def global_options() -> list[click.Parameter]:
    """``--config`` and ``-v`` once more, for after a (sub)command's name: a later ``--config`` wins, ``-v`` adds."""
    return [
        click.Option(["--config"], metavar="PATH", expose_value=False, callback=_later_config, help=CONFIG_HELP),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_more_verbose, help=VERBOSE_HELP),
    ]


class SmmCommand(click.Command):
    """A subcommand: takes the global options too, and configures logging once they are all read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_options())

    def invoke(self, ctx: click.Context) -> Any:
        obj = ctx.find_object(Context)
        assert obj is not None
        configure_logging(obj.verbose, quiet=not obj.verbose)
        return super().invoke(ctx)


class SmmGroup(click.Group):
    """A group of subcommands (``smm db``): takes the global options too."""

    command_class = SmmCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_options())


class RootGroup(click.Group):
    """``smm``: its commands, and ``lazy`` ones (name to ``"module:attribute"``), imported only when used (or
    listed), so that a command group of its own module costs ``smm add`` nothing."""

    command_class = SmmCommand
    group_class = SmmGroup

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)
