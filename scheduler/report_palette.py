"""The HTML page's colours: one per category on every chart, list and calendar, one per channel, and the legend
that names them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scheduler.mix import CATEGORIES
from scheduler.svg import esc

CATEGORY_COLORS = {
    "entertaining": "#e69f00",
    "educational": "#0072b2",
    "commercial": "#d55e00",
    "ugc": "#009e73",
    "news": "#cc79a7",
}
"""Okabe and Ito's palette, which most colour-blind readers tell apart."""
OTHER_COLOR = "#7b8794"
"""A category not in :data:`CATEGORY_COLORS`."""
_CHANNEL_COLORS = ("#3d5a80", "#2a9d8f", "#8e6c8a", "#e76f51", "#264653", "#a07a16", "#5c7f3a", "#b5446e")


def category_color(category: str | None) -> str:
    return CATEGORY_COLORS.get(category or "", OTHER_COLOR)


def category_style(category: str | None) -> str:
    """The inline style giving an element its category's colour (``--cat``) and the text colour that reads best on
    it (``--cat-ink``: white or near black, whichever contrasts more; at least 4.5:1 on every category's colour)."""
    color = category_color(category)
    ink = max(_INKS, key=lambda candidate: contrast(color, candidate))
    return f"--cat:{color};--cat-ink:{ink}"


_INKS = ("#ffffff", "#111111")


def contrast(first: str, second: str) -> float:
    """WCAG's contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _luminance(color: str) -> float:
    """WCAG's relative luminance of ``#rrggbb``."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def category_order(category: str) -> tuple[int, str]:
    """Categories in the order ``smm add --category`` lists them, others after."""
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), category)


def channel_colors(channels: Iterable[str]) -> dict[str, str]:
    """A colour per channel, in the order given."""
    return {name: _CHANNEL_COLORS[i % len(_CHANNEL_COLORS)] for i, name in enumerate(channels)}


def legend(categories: Iterable[str], extra: Sequence[tuple[str, str]] = ()) -> str:
    """A legend of ``categories`` in their colours, then ``extra`` items ``(swatch class, label)``."""
    items = [
        f'<li><span class="swatch" style="background:{category_color(c)}"></span>{esc(c)}</li>' for c in categories
    ]
    items += [f'<li><span class="swatch {css}"></span>{esc(label)}</li>' for css, label in extra]
    return f'<ul class="legend" aria-label="Legend">{"".join(items)}</ul>'
