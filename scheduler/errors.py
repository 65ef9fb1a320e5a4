"""Errors the scheduler raises to its callers (the CLI prints them as one line and picks the exit code)::

SmmError
├── ConfigError          the config file is missing, malformed or invalid            exit 2
├── InputError           a command's input is invalid; nothing was written           exit 2
│   ├── NotFound         no post with this id
│   └── StateConflict    the post is in a state that does not allow this
└── DatabaseError        the database cannot be used right now                       exit 1
    └── SchemaMismatch   the database schema is not the one this version expects
"""

from __future__ import annotations


class SmmError(Exception):
    """Something went wrong."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(SmmError):
    """The configuration is invalid."""

    exit_code = 2


class InputError(SmmError):
    """The input is invalid; nothing was written."""

    exit_code = 2


class NotFound(InputError):
    """No such post."""


class StateConflict(InputError):
    """The post is not in a state that allows this."""


class DatabaseError(SmmError):
    """The database cannot be used right now."""

    exit_code = 1


class NoDatabaseYet(DatabaseError):
    """Nothing was queued with this config yet, so there is no database to read."""


class SchemaMismatch(DatabaseError):
    """The database schema is not the one this version of smm expects."""
