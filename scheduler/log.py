"""Logging for operators: one line per event, journald-aware, JSON on request, and no secret ever printed.

Every handler's formatter passes its whole output (message, traceback) through :func:`redact`, which removes
every secret registered with :func:`register_secret` and anything shaped like a Telegram bot token or an
``access_token`` parameter. httpx logs each request URL at INFO, and a Telegram URL holds the bot token, so its
loggers are kept at WARNING unless ``-vv`` is given (and then still redacted).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
_PATTERNS = (
    (re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{20,}"), "bot[REDACTED]"),
    (re.compile(r"(?i)(access_token|token|sig|client_secret|application_secret)=[^&\s\"']+"), r"\1=[REDACTED]"),
    (re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"']+"), r"\1[REDACTED]"),
)
_LEVEL_PREFIX = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}
#: Attributes of a LogRecord that are not user-supplied ``extra`` fields.
_RECORD_FIELDS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def register_secret(value: str) -> None:
    """Never print ``value`` (a token, a password) in any log line or error message from now on."""
    global _secret_pattern
    value = value.strip()
    if len(value) >= 6:
        with _lock:
            _secrets.add(value)
            alternatives = "|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True))
            _secret_pattern = re.compile(alternatives, re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every registered secret and every token-shaped string replaced."""
    with _lock:
        pattern = _secret_pattern
    if pattern is not None:
        # Case-insensitive: some APIs quote a token back with its case changed (PTB capitalises descriptions).
        text = pattern.sub("[REDACTED]", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2026-11-26 10:00:00 INFO smm.daemon: published ...``, or for journald ``<6>smm.daemon: published ...``."""

    def __init__(self, *, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if self.journald:
            prefix = _LEVEL_PREFIX.get(record.levelno, "<6>")
            # journald takes one line per entry; keep a traceback in the same entry.
            line = f"{prefix}{record.name}: {message}".replace("\n", "\n" + prefix + "  ")
        else:
            when = datetime.fromtimestamp(record.created, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            line = f"{when} {record.levelname} {record.name}: {message}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's ``extra`` fields (post_id, channel, ...) as keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, ensure_ascii=False, default=str))


def under_journald() -> bool:
    """Whether stderr goes to the systemd journal (systemd sets ``JOURNAL_STREAM`` to its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def configure_logging(verbosity: int = 0, fmt: str = "text", *, quiet: bool = False) -> None:
    """Configure the root logger once, for the CLI or the daemon: level from ``-v`` count, format by name."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(journald=under_journald()))
    root.addHandler(handler)
    level = logging.DEBUG if verbosity > 0 else (logging.WARNING if quiet else logging.INFO)
    root.setLevel(level)
    noisy_level = logging.DEBUG if verbosity > 1 else logging.WARNING
    for name in ("httpx", "httpcore", "telegram", "urllib3", "apscheduler", "hpack", "vk_api"):
        logging.getLogger(name).setLevel(noisy_level)
    for name in ("sqlalchemy", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
