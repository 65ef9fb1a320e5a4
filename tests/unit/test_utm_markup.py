"""UTM tagging reads a marked-up text with Telegram's tokenizer: it tags what Telegram reads as a URL."""

from __future__ import annotations

from adapters.telegram_markup import scan, tokenize, written_argument
from scheduler.utm import tag_text

P = {"utm_source": "telegram", "utm_medium": "social", "utm_campaign": "spring"}
TAGS = "utm_source=telegram&utm_medium=social&utm_campaign=spring"


def test_a_url_telegram_shows_as_code_is_not_tagged() -> None:
    # a backtick inside a pre block opens inline code there: the last ``` ends the block, not the first
    text = "```=`\\\\|\\\\```http://y\\.org/ ```"
    assert scan(text, "MarkdownV2")[1] == []
    assert tag_text(text, P, "MarkdownV2") == text


def test_the_link_after_a_bare_angle_bracket_is_tagged() -> None:
    # Telegram refuses the bare "<" but reads the <a> after it as a link
    text = '<<a href="https://x.org/">x</a>'
    assert tag_text(text, P, "HTML") == f'<<a href="https://x.org/?{TAGS.replace("&", "&amp;")}">x</a>'


def test_written_argument_says_where_each_character_of_a_link_is_written() -> None:
    html = '<a href="https://x.org/?a=1&amp;b">x</a>'
    (opening,) = [t for t in tokenize(html, "HTML") if t.kind == "open"]
    pieces = [(t.value, html[t.start : t.end]) for t in written_argument(html, opening, "HTML")]
    assert pieces == [("https://x.org/?a=1", "https://x.org/?a=1"), ("&", "&amp;"), ("b", "b")]
    md = r"[x](https://x.org/a\)b)"
    (closing,) = [t for t in tokenize(md, "MarkdownV2") if t.kind == "close"]
    pieces = [(t.value, md[t.start : t.end]) for t in written_argument(md, closing, "MarkdownV2")]
    assert pieces == [("https://x.org/a", "https://x.org/a"), (")", r"\)"), ("b", "b")]
