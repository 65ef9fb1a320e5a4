"""Chart scales: numbers and days mapped to positions, with ticks a reader takes in at a glance.

Pure functions and small value classes, for :mod:`scheduler.svg`. A numeric axis steps by 1, 2 or 5 times a power
of ten (:func:`nice_ticks`) and labels its ticks compactly and distinctly (``12k``, ``12.5k``); a time axis steps
by days, weeks (on Mondays) or months (on the 1st), whichever gives a handful of ticks (:func:`day_ticks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

_STEPS = (1.0, 2.0, 5.0, 10.0)
_DAY_STEPS = (1, 2, 7, 14)
_MONTH_STEPS = (1, 2, 3, 6, 12)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def nice_step(span: float, count: int) -> float:
    """The step of 1, 2 or 5 times a power of ten that cuts ``span`` into about ``count`` parts (at most)."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in _STEPS if raw <= m * magnitude * (1 + 1e-9))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low`` to ``high``: the first at or below ``low``, the last at or above ``high``."""
    if high < low:
        low, high = high, low
    if high == low:
        low, high = (low - 1, high + 1) if low == 0 else (low - abs(low) / 10, high + abs(high) / 10)
    step = nice_step(high - low, count)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [_clean(i * step) for i in range(first, last + 1)]


def _clean(value: float) -> float:
    """``0.30000000000000004`` as ``0.3`` (tick values are sums of steps)."""
    return float(f"{value:.12g}")


def tick_label(value: float, step: float) -> str:
    """``value`` as a compact label precise enough to tell ticks ``step`` apart: ``950``, ``12.5k``, ``1.2M``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return _digits(value / size, step / size) + suffix
    return _digits(value, step)


def _digits(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    decimals = min(decimals, 3)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_count(value: float | None) -> str:
    """A figure for a table or a card: ``12,345``, ``3.5``; ``–`` where there is none."""
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")


def compact(value: float | None) -> str:
    """A key figure, whole up to 99,999 (``12,345``), else to three digits (``144M``, ``2.25B``)."""
    if value is None or abs(value) < 100_000:
        return format_count(value)
    return tick_label(value, 10.0 ** (math.floor(math.log10(abs(value))) - 2))


@dataclass(frozen=True)
class Linear:
    """Maps ``domain`` (values) linearly onto ``span`` (positions); a domain of one value maps to the middle."""

    domain: tuple[float, float]
    span: tuple[float, float]

    def __call__(self, value: float) -> float:
        (d0, d1), (r0, r1) = self.domain, self.span
        if d1 == d0:
            return (r0 + r1) / 2
        return r0 + (value - d0) / (d1 - d0) * (r1 - r0)


@dataclass(frozen=True)
class Days:
    """Maps days onto positions (``first`` to ``last``, inclusive); a single day maps to the middle."""

    first: date
    last: date
    span: tuple[float, float]

    def __call__(self, day: date) -> float:
        total = (self.last - self.first).days
        return Linear((0, total), self.span)((day - self.first).days)


def day_ticks(first: date, last: date, count: int = 5) -> list[tuple[date, str]]:
    """Ticks of a day axis from ``first`` to ``last``: every day or few days, Mondays, or firsts of months, each
    with a short label (``3 Nov``, ``Nov 2026``; a year is named where it changes)."""
    total = (last - first).days
    if total <= 0:
        return [(first, _day_label(first, None))]
    for step in _DAY_STEPS:
        if total / step <= count:
            # weeks start on Mondays
            start = first + timedelta(days=-first.weekday() % 7) if step >= 7 else first
            days = [start + timedelta(days=i) for i in range(0, (last - start).days + 1, step)]
            return _labelled(days, _day_label)
    months = (last.year - first.year) * 12 + last.month - first.month
    step = next((s for s in _MONTH_STEPS if months / s <= count), 12 * math.ceil(months / 12 / count))
    days = []
    year, month = first.year, first.month
    if first.day != 1:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    month -= (month - 1) % step  # months at multiples of the step: Jan, Apr, Jul, Oct for 3
    while (day := date(year, month, 1)) <= last:
        if day >= first:
            days.append(day)
        year, month = (year + (month + step - 1) // 12, (month + step - 1) % 12 + 1)
    return _labelled(days, _month_label)


def _labelled(days: list[date], label: Callable[[date, date | None], str]) -> list[tuple[date, str]]:
    out: list[tuple[date, str]] = []
    previous: date | None = None
    for day in days:
        out.append((day, label(day, previous)))
        previous = day
    return out


def _day_label(day: date, previous: date | None) -> str:
    text = f"{day.day} {_MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if previous is not None and previous.year != day.year else text


def _month_label(day: date, previous: date | None) -> str:
    name = _MONTHS[day.month - 1]
    return f"{name} {day.year}" if previous is None or previous.year != day.year or day.month == 1 else name


def month_name(month: int) -> str:
    """``Nov`` for 11."""
    return _MONTHS[month - 1]
