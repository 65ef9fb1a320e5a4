"""Every error smm raises, in one tree rooted in ``SmmError`` (the CLI prints one as one line, exit code 1 unless
the class says otherwise)::

    SmmError                            the root; defined in adapters/errors.py, which adapters share   exit 1
    ├── ConfigError                     the config file is missing, malformed or invalid                exit 2
    ├── InputError                      a command's input is invalid; nothing was written               exit 2
    │   ├── NotFound                    no post with this id
    │   ├── StateConflict               the post is in a state that does not allow this
    │   ├── ImportRejected              some rows of an import are invalid; one line each (scheduler/importer.py)
    │   └── FeedError                   a feed cannot be fetched or read (scheduler/feed_fetch.py)
    ├── DatabaseError                   the database cannot be used right now                           exit 1
    │   ├── NoDatabaseYet               nothing was queued with this config yet: there is no database to read
    │   └── SchemaMismatch              the database schema is not the one this version expects
    ├── AlreadyRunning                  another daemon is using this database (scheduler/lock.py)
    ├── AlertSendError                  an alert could not be sent; the daemon logs it (scheduler/alerts.py)
    ├── PublishError                    publishing failed (adapters/errors.py draws this branch)
    │   ├── TransientError              surely not applied: retry later
    │   │   └── RateLimited             the network asked us to slow down
    │   ├── PermanentError              retrying cannot help
    │   │   ├── AuthError               the channel's token needs a person
    │   │   ├── ContentRejected         the network refused this post's content
    │   │   ├── CaptchaRequired         VK wants a captcha solved for this token (adapters/vk/errors.py)
    │   │   ├── NotSupported            the network's API cannot do this (results, comments, deletion)
    │   │   └── PostTooOld              older than the network lets a post be deleted (Telegram: 48 h)
    │   └── AmbiguousError              the network may have applied the request: reconcile
    │       └── DuplicateSuspected      the network says it already has this post
    ├── ReadBackUnsupported             the network cannot be read back (adapters/errors.py)
    ├── UnknownNetwork                  no adapter under this network name (adapters/errors.py)
    └── BadResponse                     a network's answer before its adapter translates it (adapters/errors.py)

A new error class belongs in this drawing (tests/unit/test_error_tree.py checks that every one is).
"""

from __future__ import annotations

from adapters.errors import SmmError as SmmError


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
