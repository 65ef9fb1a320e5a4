"""UTM tagging: ``utm_source``, ``utm_medium``, ``utm_campaign`` and ``utm_content`` added to links at render time.

A URL keeps everything it has: its query parameters (byte for byte, never re-encoded), its fragment, and any
``utm_*`` parameter already present (a parameter is only added when the URL does not have it). The new parameters
go at the end of the query, before the fragment; their values are percent-encoded.

URLs in a post's text are found and tagged where they are, markup-aware for Telegram's parse modes:

- plain text: the URL as written; trailing punctuation (``.``, ``,``, ``!``, a closing bracket that opens nowhere
  in the URL, quotes) is not part of it;
- HTML: URLs in text and in ``href="..."``, read through their entities (``&amp;``), the added text escaped
  (``&`` as ``&amp;``); nothing inside ``<code>`` or ``<pre>`` is touched;
- MarkdownV2: URLs in text are read through their ``\\`` escapes and the added text is escaped as the mode requires
  (``utm\\_source\\=...``); inside a link's ``(...)`` target only ``)`` and ``\\`` are escaped, so the added text goes
  in as it is; nothing inside code spans or blocks is touched.

Pure stdlib; nothing here reads the config.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from adapters.telegram_markup import escape

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")
_TRAILING = ".,;:!?…'\"»”’›"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_PLAIN_URL = re.compile(r"https?://[^\s<>\"'`«»“”]+", re.IGNORECASE)
_HTML_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_HTML_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#[xX][0-9a-fA-F]+);")
_HTML_CODE = re.compile(r"<(code|pre)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


@dataclass(frozen=True)
class UtmConfig:
    """A channel's tagging: off, or the values of the parameters (``source`` defaults to the network's name)."""

    enabled: bool = False
    source: str | None = None
    medium: str = "social"
    campaign: str | None = None
    domains: tuple[str, ...] = ()
    """Only URLs on these hosts (or their subdomains) are tagged; empty: every http(s) URL."""


def utm_params(
    config: UtmConfig, network: str, campaign: str | None = None, content: str | None = None
) -> dict[str, str]:
    """The parameters to add for a post (``campaign`` and ``content`` from the post, else the channel's)."""
    params = {"utm_source": config.source or network, "utm_medium": config.medium}
    if campaign or config.campaign:
        params["utm_campaign"] = campaign or config.campaign or ""
    if content:
        params["utm_content"] = content
    return params


def _host_key(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def on_domains(url: str, domains: Sequence[str]) -> bool:
    """Whether ``url``'s host is one of ``domains`` or under one (IDN hosts compare in either spelling)."""
    if not domains:
        return True
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    key = _host_key(host)
    return any(key == d or key.endswith("." + d) for d in (_host_key(d) for d in domains))


def addition(url: str, params: Mapping[str, str]) -> tuple[int, str] | None:
    """Where in ``url`` the missing parameters go (the end of the query) and the text to insert; None if none."""
    hash_at = url.find("#")
    end = hash_at if hash_at >= 0 else len(url)
    question = url.find("?", 0, end)
    query = url[question + 1 : end] if question >= 0 else ""
    present = {key.lower() for key, _ in parse_qsl(query, keep_blank_values=True)}
    missing = [(k, v) for k, v in params.items() if k.lower() not in present and v]
    if not missing:
        return None
    text = "&".join(f"{key}={quote(value, safe='')}" for key, value in missing)
    if question < 0:
        separator = "?"
    elif not query or query.endswith("&"):
        separator = ""
    else:
        separator = "&"
    return end, separator + text


def tag_url(url: str, params: Mapping[str, str], domains: Sequence[str] = ()) -> str:
    """``url`` with the UTM parameters it lacks (unchanged when it is not an http(s) URL on ``domains``)."""
    if not _is_web_url(url) or not on_domains(url, domains):
        return url
    found = addition(url, params)
    if found is None:
        return url
    at, text = found
    return url[:at] + text + url[at:]


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def trim(url: str) -> str:
    """``url`` without the punctuation that ends the sentence around it."""
    while url:
        last = url[-1]
        unbalanced = last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])
        if last not in _TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


# -- URLs in text -------------------------------------------------------------------------------------------------


@dataclass
class _Span:
    """A URL found in raw text: its decoded form, and for each decoded character where it ends in the raw text."""

    start: int
    decoded: str
    raw_end: list[int]
    escape: Callable[[str], str]
    delimited: bool = False
    """Written between delimiters (an ``href`` attribute, a link target): no sentence punctuation to trim."""


def tag_text(text: str, params: Mapping[str, str], parse_mode: str | None = None, domains: Sequence[str] = ()) -> str:
    """``text`` with every http(s) URL in it tagged, in Telegram ``parse_mode`` (None, "HTML" or "MarkdownV2")."""
    if "://" not in text:
        return text
    if parse_mode == "HTML":
        spans = _html_spans(text)
    elif parse_mode == "MarkdownV2":
        spans = _mdv2_spans(text)
    else:
        spans = [
            _Span(m.start(), m.group(), list(range(m.start() + 1, m.end() + 1)), str) for m in _PLAIN_URL.finditer(text)
        ]
    inserts: list[tuple[int, str]] = []
    for span in spans:
        url = span.decoded if span.delimited else trim(span.decoded)
        if not _is_web_url(url) or not on_domains(url, domains):
            continue
        found = addition(url, params)
        if found is None:
            continue
        at, added = found
        inserts.append((span.raw_end[at - 1], span.escape(added)))
    for position, added in sorted(inserts, reverse=True):
        text = text[:position] + added + text[position:]
    return text


def _decode(raw: str, start: int, unit: re.Pattern[str]) -> tuple[str, list[int]]:
    """``raw`` (found at ``start``) with each match of ``unit`` decoded, and where each decoded character ends."""
    decoded: list[str] = []
    ends: list[int] = []
    i = 0
    while i < len(raw):
        match = unit.match(raw, i)
        if match:
            value = html.unescape(match.group()) if match.group().startswith("&") else match.group()[1:]
            decoded.append(value)
            i = match.end()
        else:
            decoded.append(raw[i])
            i += 1
        ends.extend([start + i] * len(decoded[-1]))
    return "".join(decoded), ends


def _html_spans(text: str) -> list[_Span]:
    code = [m.span() for m in _HTML_CODE.finditer(text)]
    spans: list[_Span] = []
    for match in _HTML_URL.finditer(text):
        if any(a <= match.start() < b for a, b in code):
            continue
        decoded, ends = _decode(match.group(), match.start(), _HTML_ENTITY)
        # An entity may decode to a character that ends the URL (``&gt;``, ``&quot;``).
        cut = min((decoded.find(c) for c in "<>\"'" if c in decoded), default=len(decoded))
        quoted = text[max(0, match.start() - 2) : match.start()].rstrip("\"'").endswith("=")
        spans.append(_Span(match.start(), decoded[:cut], ends[:cut], lambda s: escape(s, "HTML"), quoted))
    return spans


_MDV2_ESCAPE = re.compile(r"\\[\x21-\x7e]")
_TARGET_ESCAPE = re.compile(r"\\[)\\]")


def _mdv2_spans(text: str) -> list[_Span]:
    """URLs in MarkdownV2 text and in inline-link targets; code spans and blocks are skipped."""
    spans: list[_Span] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif text.startswith("```", i):
            close = text.find("```", i + 3)
            i = n if close < 0 else close + 3
        elif c == "`":
            j = i + 1
            while j < n and text[j] != "`":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith("](", i):
            j = i + 2
            while j < n and text[j] != ")":
                j += 2 if text[j] == "\\" else 1
            decoded, ends = _decode(text[i + 2 : j], i + 2, _TARGET_ESCAPE)
            spans.append(_Span(i + 2, decoded, ends, str, delimited=True))
            i = j + 1
        elif text[i : i + 8].lower().startswith(("http://", "https://")):
            j = i
            while j < n and not text[j].isspace():
                if text[j] == "\\" and j + 1 < n and 0x21 <= ord(text[j + 1]) <= 0x7E:
                    j += 2
                elif text[j] in _MDV2_RESERVED or text[j] == "\\":
                    break
                else:
                    j += 1
            decoded, ends = _decode(text[i:j], i, _MDV2_ESCAPE)
            spans.append(_Span(i, decoded, ends, lambda s: escape(s, "MarkdownV2")))
            i = max(j, i + 1)
        else:
            i += 1
    return spans
