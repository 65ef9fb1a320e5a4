"""Logging for operators: one line per event, journald-aware, JSON on request, and no secret ever printed.

Every handler's formatter passes its whole output (message, traceback) through :func:`redact`, which removes
every secret registered with :func:`register_secret` and anything shaped like a Telegram bot token or an
``access_token`` parameter. httpx logs each request URL at INFO, and a Telegram URL holds the bot token, so its
loggers are kept at WARNING unless ``-vv`` is given (and then still redacted).

Values from outside (a feed's URL or titles, a server's reason phrase) can hold line breaks and escape sequences:
every message passes through :func:`escape_for_terminal` too, so that one record is one line and nothing in it
drives the terminal. The CLI uses the same function for what it prints of such values.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from scheduler.timefmt import format_iso

_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
_BOT_TOKEN = re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{20,}")
_PARAMETER = re.compile(r"(?i)(access_token|token|sig|client_secret|application_secret)=[^&\s\"']+")
_BEARER = re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"']+")
#: DEL, C1 controls, the Unicode line and paragraph separators and the bidi controls (ALM, LRM, RLM, embeddings,
#: overrides and isolates); with C0 (line breaks among them), what :func:`escape_for_terminal` escapes.
_CONTROLS = "\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_CONTROLS}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_CONTROLS}]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
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
    value = value.strip().lower()
    if len(value) >= 6 and value not in _secrets:
        with _lock:
            _secrets.add(value)
            _secret_pattern = None  # built again when next needed: registering many secrets builds it once


def _secrets_regex() -> re.Pattern[str] | None:
    """The registered secrets, lowercase, to search a lowercased text for (faster than a case-insensitive search,
    which tries every branch of the tree at each character)."""
    global _secret_pattern
    with _lock:
        if _secret_pattern is None and _secrets:
            _secret_pattern = re.compile(_trie(sorted(_secrets)))
        return _secret_pattern


def _trie(words: list[str]) -> str:
    """A regex matching any of ``words`` (the longest one where several do), as a prefix tree: a line is searched
    in time independent of the number of words (an alternation is searched in time that grows with them)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = None

    def pattern(node: dict[str, Any]) -> str:
        branches = []
        for char, child in node.items():
            if not char:
                continue
            chain = [char]
            while len(child) == 1 and "" not in child:  # a run without a fork: literal characters, no group
                ((char, child),) = child.items()
                chain.append(char)
            branches.append(re.escape("".join(chain)) + pattern(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and "" not in node else "(?:" + "|".join(branches) + ")"
        return body + "?" if "" in node else body

    return pattern(root)


def redact(text: str) -> str:
    """``text`` with every registered secret and every token-shaped string replaced."""
    pattern = _secrets_regex()
    if pattern is not None:
        # Case-insensitive: some APIs quote a token back with its case changed (PTB capitalises descriptions).
        lowered = text.lower()
        if len(lowered) != len(text):  # a character whose lowercase is longer: the spans would not line up
            text = re.sub(pattern.pattern, "[REDACTED]", text, flags=re.IGNORECASE)
        else:
            parts: list[str] = []
            last = 0
            for found in pattern.finditer(lowered):
                parts += (text[last : found.start()], "[REDACTED]")
                last = found.end()
            if parts:
                text = "".join(parts) + text[last:]
    # Each shape only where its mark is: a case-insensitive search of every line is dear (a log line a post).
    if "bot" in text:
        text = _BOT_TOKEN.sub("bot[REDACTED]", text)
    if "=" in text:
        text = _PARAMETER.sub(r"\1=[REDACTED]", text)
    if "bearer" in text.lower():
        text = _BEARER.sub(r"\1[REDACTED]", text)
    return text


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_for_terminal(text: str) -> str:
    """``text`` fit for one line of a log or a terminal: line breaks, C0 and C1 control characters (ESC starts the
    sequences that recolour, retitle or rewrite a terminal) and bidi controls (which reorder what is shown) become
    visible escapes such as ``\\n``, ``\\x1b`` and ``\\u202e``; everything else is left as it is."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _escape_traceback(text: str) -> str:
    """A traceback keeps its lines; the rest of :func:`escape_for_terminal` applies."""
    if _UNSAFE_BUT_NEWLINE.search(text) is None:
        return text
    return _UNSAFE_BUT_NEWLINE.sub(_escape, text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: escape_for_terminal(v) if isinstance(v, str) else v
        for k, v in record.__dict__.items()
        if k not in _RECORD_FIELDS and not k.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """``2026-11-26 10:00:00 INFO smm.daemon: published ...``, or for journald ``<6>smm.daemon: published ...``."""

    def __init__(self, *, journald: bool) -> None:
        super().__init__()
        self.journald = journald
        self._second = -1
        self._when = ""

    def format(self, record: logging.LogRecord) -> str:
        message = escape_for_terminal(record.getMessage())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{_escape_traceback(record.exc_text)}"
        if self.journald:
            prefix = _LEVEL_PREFIX.get(record.levelno, "<6>")
            # journald takes one line per entry; keep a traceback in the same entry.
            line = f"{prefix}{record.name}: {message}".replace("\n", "\n" + prefix + "  ")
        else:
            second = int(record.created)
            if second != self._second:  # a line a post: the local time is worked out once a second
                self._second = second
                self._when = datetime.fromtimestamp(second, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            line = f"{self._when} {record.levelname} {record.name}: {message}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's ``extra`` fields (post_id, channel, ...) as keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": format_iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": escape_for_terminal(record.getMessage()),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["exc"] = _escape_traceback(self.formatException(record.exc_info))
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
    for name in ("httpx", "httpcore", "telegram", "urllib3", "apscheduler", "hpack", "vk_api", "apprise"):
        logging.getLogger(name).setLevel(noisy_level)
    for name in ("sqlalchemy", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def kept_off_terminal(name: str) -> Iterator[None]:
    """While the block runs, the records of the logger ``name`` reach only the handlers on it, not the terminal's
    (a command that says in its own words what they say)."""
    logger = logging.getLogger(name)
    before = logger.propagate
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = before
