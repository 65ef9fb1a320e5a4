"""The HTML page's calendar section: the weeks of :class:`scheduler.report_calendar.Calendar` as a grid of days (a
list of days on a phone), each entry a post in its category's colour or an empty slot, and where the content mix
rule binds. A busy day shows its first :data:`PER_DAY` entries and counts the rest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from scheduler.report_calendar import DAYS, Calendar, Entry
from scheduler.report_palette import category_order, category_style, legend
from scheduler.scales import month_name
from scheduler.svg import esc
from scheduler.views import plural, some_of

PER_DAY = 8
"""At most this many entries shown in a day."""
_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EXCERPT = 80


def calendar_section(calendar: Calendar) -> str:
    """The section, with its legend and each channel's mix rule."""
    end = calendar.today.toordinal() + DAYS
    cells = [f'<div class="dow" aria-hidden="true">{n}</div>' for n in _NAMES]
    for week in calendar.weeks():
        for day in week:
            state = "past" if day < calendar.today else "outside" if day.toordinal() > end else ""
            cells.append(_day(day, calendar.on(day), state, day == calendar.today))
    used = sorted({e.category for e in calendar.entries if e.category}, key=category_order)
    key = legend(
        used,
        [
            ("free", "free slot"),
            ("binds", "free, but no room for a commercial post (mix rule)"),
            ("breaks", "breaks the mix rule"),
        ],
    )
    empty = "" if calendar.entries else '<p class="empty">No channel has a slot or a post in the next four weeks.</p>'
    return (
        '<section class="panel" aria-labelledby="calendar"><header><h2 id="calendar">The next four weeks</h2>'
        "<p class=\"muted small\">Queued posts by category, and the cadence's empty slots, in each channel's time."
        "</p></header>"
        f'{key}{empty}<div class="calendar">{"".join(cells)}</div>'
        f'<p class="rules">Commercial posts: {esc(_rules(calendar.rules))}.</p></section>'
    )


def _rules(rules: dict[str, str]) -> str:
    """``at most 50% of any 4`` for every channel, or per rule the channels it applies to."""
    by_rule: dict[str, list[str]] = {}
    for channel, rule in rules.items():
        by_rule.setdefault(rule, []).append(channel)
    if len(by_rule) == 1:
        return next(iter(by_rule))
    return "; ".join(f"{rule} on {some_of(channels, 10)}" for rule, channels in by_rule.items())


def _day(day: date, entries: Sequence[Entry], state: str, today: bool) -> str:
    css = " ".join(c for c in ("day", state, "today" if today else "", "" if entries else "empty-day") if c)
    label = f"{_NAMES[day.weekday()]} {day.day} {month_name(day.month)}"
    items = [_entry(e) for e in entries[:PER_DAY]]
    if len(entries) > PER_DAY:
        rest = entries[PER_DAY:]
        posts = sum(1 for e in rest if e.post_id is not None)
        counts = [plural(posts, "post", "posts"), plural(len(rest) - posts, "free slot", "free slots")]
        shown = " and ".join(c for c in counts if not c.startswith("0 "))
        items.append(f'<li class="more">and {shown} more</li>')
    listed = f"<ul>{''.join(items)}</ul>" if items else ""
    return f'<div class="{css}"><div class="date"><span>{esc(label)}</span></div>{listed}</div>'


def _entry(entry: Entry) -> str:
    head = f'<span class="time">{esc(entry.local_time)}</span>{esc(entry.channel)}'
    if entry.post_id is None:
        css = "slot free binds" if entry.mix_binds else "slot free"
        what = "free, no commercial post (mix rule)" if entry.mix_binds else "free"
        label = f"{entry.local_time} {entry.channel}: {what}"
        return f'<li class="{css}" title="{esc(label)}">{head}<span class="what"> · {esc(what)}</span></li>'
    css = "slot" + (" breaks" if entry.mix_binds else "") + (" published" if entry.status == "published" else "")
    excerpt = entry.text if len(entry.text) <= _EXCERPT else entry.text[: _EXCERPT - 1] + "…"
    label = f"{entry.local_time} {entry.channel}: post {entry.post_id}, {entry.category}, {entry.status}"
    if entry.mix_binds:
        label += ", breaks the content mix rule"
    what = f"{entry.category}{' (breaks the mix rule)' if entry.mix_binds else ''}: {excerpt}"
    return (
        f'<li class="{css}" style="{category_style(entry.category)}" title="{esc(label + ": " + excerpt)}">'
        f'{head}<span class="what"> · {esc(what)}</span></li>'
    )
