"""SVG charts drawn as text, for the HTML report: a line chart over days and a horizontal bar chart with dots.

No library, no script: each chart is one ``<svg>`` element with a ``<title>`` and a ``<desc>`` (``role="img"``,
``aria-labelledby``), axes with round ticks (:mod:`scheduler.scales`) and every text escaped. The page puts each
chart's numbers in a table beside it. Sizes are in the ``viewBox``'s units: the page's CSS scales a chart to its
column's width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

from scheduler.scales import Days, Linear, day_ticks, format_count, nice_ticks, tick_label

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
FONT = 12
_CHAR = 7
"""About the width of a character at :data:`FONT`, to leave room for labels."""


def esc(text: str) -> str:
    """Text for HTML or SVG, in content or in a quoted attribute."""
    return escape(text, quote=True)


def num(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


Attrs = dict[str, str | float | None]


def tag(name: str, attrs: Mapping[str, str | float | None], content: str = "") -> str:
    """An element; attributes that are None are left out, values escaped, numbers as coordinates."""
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        parts.append(f'{key}="{num(value) if isinstance(value, float | int) else esc(value)}"')
    opening = " ".join(parts)
    return f"<{opening}>{content}</{name}>" if content else f"<{opening}/>"


def _svg(ident: str, title: str, description: str, width: float, height: float, body: list[str]) -> str:
    head = tag("title", {"id": f"{ident}-title"}, esc(title)) + tag("desc", {"id": f"{ident}-desc"}, esc(description))
    attrs: Attrs = {
        "xmlns": "http://www.w3.org/2000/svg",
        "viewBox": f"0 0 {num(width)} {num(height)}",
        "role": "img",
        "aria-labelledby": f"{ident}-title {ident}-desc",
        "class": "chart",
        "font-size": FONT,
        "font-family": "inherit",
    }
    return tag("svg", attrs, head + "".join(body))


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = MUTED, **attrs: str | float) -> str:
    """A label; ``attrs`` are more attributes (``font_weight`` for ``font-weight``)."""
    more = {key.replace("_", "-"): value for key, value in attrs.items()}
    return tag("text", {"x": x, "y": y, "text-anchor": anchor, "fill": fill, **more}, esc(text))


@dataclass(frozen=True)
class Box:
    """The plot area inside a chart of ``width`` by ``height``."""

    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        """The bottom of the plot area (SVG's y grows downwards)."""
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top


@dataclass(frozen=True)
class LineSeries:
    """One line: a name, its colour and its values by day (in order)."""

    name: str
    color: str
    points: Sequence[tuple[date, float]]


def line_chart(
    series: Sequence[LineSeries],
    *,
    ident: str,
    title: str,
    description: str,
    width: float = 360,
    height: float = 220,
) -> str:
    """Lines over days on one value axis (round ticks around the values, not from zero: growth stays visible);
    each line ends in a dot, and each point has a tooltip when there are few."""
    points = [p for s in series for p in s.points]
    if not points:
        raise ValueError("a line chart needs at least one point")
    values = [v for _, v in points]
    first, last = min(d for d, _ in points), max(d for d, _ in points)
    ticks = nice_ticks(min(values), max(values), count=4)
    step = ticks[1] - ticks[0]
    left = 14 + _CHAR * max(len(tick_label(t, step)) for t in ticks)
    box = Box(width, height, left=left, right=16, top=12, bottom=28)
    y = Linear((ticks[0], ticks[-1]), (box.y0, box.y1))
    x = Days(first, last, (box.x0, box.x1))
    body = _value_axis(box, y, ticks)
    body += _day_axis(box, x, first, last)
    for s in series:
        body.append(_line(s, x, y))
    return _svg(ident, title, description, width, height, body)


def _value_axis(box: Box, y: Linear, ticks: Sequence[float]) -> list[str]:
    step = ticks[1] - ticks[0]
    out: list[str] = []
    for value in ticks:
        at = y(value)
        out.append(tag("line", {"x1": box.x0, "x2": box.x1, "y1": at, "y2": at, "stroke": GRID}))
        out.append(_text(box.x0 - 6, at + 4, tick_label(value, step), anchor="end"))
    return out


def _day_axis(box: Box, x: Days, first: date, last: date) -> list[str]:
    out = [tag("line", {"x1": box.x0, "x2": box.x1, "y1": box.y0, "y2": box.y0, "stroke": MUTED})]
    count = max(2, int((box.x1 - box.x0) // 56))
    for day, label in day_ticks(first, last, count):
        at = x(day)
        out.append(tag("line", {"x1": at, "x2": at, "y1": box.y0, "y2": box.y0 + 4, "stroke": MUTED}))
        anchor = "start" if at - box.x0 < 24 else "end" if box.x1 - at < 24 else "middle"
        out.append(_text(at, box.y0 + 17, label, anchor=anchor))
    return out


_TOOLTIPS = 62
"""Up to how many points a line gets one dot each with its value as a tooltip (about two months of days)."""


def _line(series: LineSeries, x: Days, y: Linear) -> str:
    coords = [(x(d), y(v)) for d, v in series.points]
    path = "M" + " L".join(f"{num(a)} {num(b)}" for a, b in coords)
    stroke: Attrs = {"stroke": series.color, "stroke-width": 2.5}
    parts = [tag("path", {"d": path, "fill": "none", "stroke-linejoin": "round", "stroke-linecap": "round", **stroke})]
    if len(coords) <= _TOOLTIPS:
        for (day, value), (a, b) in zip(series.points, coords, strict=True):
            tip = tag("title", {}, esc(f"{series.name}, {day.isoformat()}: {format_count(value)}"))
            parts.append(tag("circle", {"cx": a, "cy": b, "r": 2.5, "fill": series.color}, tip))
    a, b = coords[-1]
    parts.append(tag("circle", {"cx": a, "cy": b, "r": 4.5, "fill": "#fff", **stroke}))
    return tag("g", {"class": "series", "aria-label": series.name}, "".join(parts))


@dataclass(frozen=True)
class BarRow:
    """A bar (``value``, its ``label`` at the left with a ``note`` under it) and the single values behind it as
    dots."""

    label: str
    value: float
    color: str
    dots: Sequence[float] = field(default_factory=tuple)
    note: str = ""


def bar_chart(
    rows: Sequence[BarRow],
    *,
    ident: str,
    title: str,
    description: str,
    width: float = 440,
    row_height: float = 38,
) -> str:
    """Horizontal bars from zero on one value axis, each row's single values drawn over its bar as dots (spread
    up and down a little, so equal values stay visible); a row's ``note`` can give its value."""
    if not rows:
        raise ValueError("a bar chart needs at least one row")
    left = 14 + _CHAR * max(len(text) for r in rows for text in (r.label, r.note))
    height = 8 + row_height * len(rows) + 26
    box = Box(width, height, left=left, right=20, top=8, bottom=26)
    high = max([r.value for r in rows] + [d for r in rows for d in r.dots])
    ticks = nice_ticks(0.0, high if high > 0 else 1.0, count=max(2, int((box.x1 - box.x0) // 60)))
    x = Linear((0.0, ticks[-1]), (box.x0, box.x1))
    step = ticks[1] - ticks[0]
    body: list[str] = []
    for value in ticks:
        at = x(value)
        body.append(tag("line", {"x1": at, "x2": at, "y1": box.y1, "y2": box.y0, "stroke": GRID}))
        body.append(_text(at, box.y0 + 17, tick_label(value, step), anchor="middle"))
    for i, row in enumerate(rows):
        body.append(_bar_row(row, x, box.x0, box.y1 + i * row_height, row_height))
    body.append(tag("line", {"x1": box.x0, "x2": box.x0, "y1": box.y1, "y2": box.y0, "stroke": MUTED}))
    return _svg(ident, title, description, width, height, body)


def _bar_row(row: BarRow, x: Linear, x0: float, top: float, height: float) -> str:
    middle = top + height / 2
    parts = [_text(x0 - 8, middle - 1 if row.note else middle + 4, row.label, anchor="end", fill=INK)]
    if row.note:
        parts.append(_text(x0 - 8, middle + 13, row.note, anchor="end", font_size=FONT - 1))
    tip = tag("title", {}, esc(f"{row.label}: {format_count(row.value)}"))
    width = max(x(row.value) - x0, 1.0)
    bar: Attrs = {"x": x0, "y": top + 7, "width": width, "height": height - 14, "rx": 3}
    parts.append(tag("rect", {**bar, "fill": row.color, "fill-opacity": 0.3}, tip))
    end = x(row.value)
    mark: Attrs = {"x1": end, "x2": end, "y1": top + 5, "y2": top + height - 5, "stroke-width": 3}
    parts.append(tag("line", {**mark, "stroke": row.color}))
    for j, value in enumerate(row.dots):
        offset = ((j * 7) % 11 - 5) * (height - 18) / 10
        tip = tag("title", {}, esc(f"{row.label}: {format_count(value)}"))
        dot: Attrs = {"cx": x(value), "cy": middle + offset, "r": 3.5, "stroke": "#fff", "stroke-width": 1}
        parts.append(tag("circle", {**dot, "fill": row.color}, tip))
    return tag("g", {"class": "bar", "aria-label": row.label}, "".join(parts))
