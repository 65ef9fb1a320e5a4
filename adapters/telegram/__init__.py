"""Telegram channels through the Bot API, with python-telegram-bot 22 (imported lazily).

A post becomes one message (sendMessage), one photo with its caption (sendPhoto) or an album with the caption on
its first item (sendMediaGroup). A text longer than a caption may be (1024) is sent as a message of its own after
the photos: the documented ``caption_overflow="split"``. A link is appended to the text on its own line and gets
the link preview. Markup (``parse_mode`` HTML or MarkdownV2) is checked when a post is queued, so that Telegram's
"can't parse entities" never surprises the daemon.
"""

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.client import DEFAULT_API_URL, build_bot, default_request
from adapters.telegram.reading import DELETE_WINDOW
from adapters.telegram_markup import (
    PARSE_MODES,
    escape,
    normalize_parse_mode,
    scan_html,
    scan_markdown_v2,
)

__all__ = [
    "DEFAULT_API_URL",
    "DELETE_WINDOW",
    "PARSE_MODES",
    "TelegramAdapter",
    "build_bot",
    "default_request",
    "escape",
    "normalize_parse_mode",
    "scan_html",
    "scan_markdown_v2",
]


def __getattr__(name: str) -> object:
    if name in ("HTML_TAGS", "MDV2_RESERVED"):
        import adapters.telegram_markup as markup

        return getattr(markup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
