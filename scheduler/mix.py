"""The content mix rule: commercial posts at most a share of any window of consecutive deliveries of a channel.

A channel's deliveries, in order of their time, form a sequence; each is commercial or not. The rule "at most
``share`` of any ``window`` consecutive deliveries" allows at most ``floor(share * window)`` commercial deliveries in
every run of ``window`` consecutive ones. Runs that start before the channel's first delivery count too (as if the
channel had published non-commercial posts before), so three commercial posts on a new channel already break
"at most 2 of any 4".

Everything here is a pure function of sequences of booleans (``True`` = commercial). A change to a channel's
queue (a post added, moved or cancelled) *worsens* the mix when it raises the number of :func:`offenders`, the
commercial deliveries that sit in some window over the limit: a change on a channel whose mix is already broken is
judged by whether it makes things worse, not refused for what was there before. Adding a non-commercial post or
removing a commercial one never worsens the mix. Whether a delivery offends depends only on the deliveries within
``window - 1`` of it, so comparing the :data:`span` ``2 * (window - 1)`` deliveries either side of a change gives
the same verdict as comparing the whole sequences: callers load only that neighbourhood.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COMMERCIAL = "commercial"
CATEGORIES = ("entertaining", "educational", COMMERCIAL, "ugc", "news")
"""The categories of a post; the rule counts the commercial ones."""


@dataclass(frozen=True)
class MixRule:
    """At most ``share`` of any ``window`` consecutive deliveries may be commercial; ``enabled=False`` switches off."""

    share: float = 0.5
    window: int = 4
    enabled: bool = True

    @property
    def limit(self) -> int:
        """How many commercial deliveries one window may hold."""
        return math.floor(self.share * self.window + 1e-9)

    @property
    def span(self) -> int:
        """How many deliveries either side of a change decide whether it worsens the mix."""
        return 2 * (self.window - 1)

    def describe(self) -> str:
        """``"at most 50% of any 4"``, or ``"off"``."""
        if not self.enabled:
            return "off"
        return f"at most {_percent(self.share)} of any {self.window}"


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%" if abs(share * 100 - round(share * 100)) < 1e-9 else f"{share * 100:.1f}%"


def window_counts(flags: Sequence[bool], window: int) -> list[int]:
    """For each position, how many commercial deliveries the window of ``window`` ending there holds."""
    counts: list[int] = []
    running = 0
    for i, flag in enumerate(flags):
        running += flag
        if i >= window:
            running -= flags[i - window]
        counts.append(running)
    return counts


def offending(flags: Sequence[bool], rule: MixRule) -> list[bool]:
    """For each delivery, whether it is commercial and sits in at least one window over the limit."""
    marks = [False] * len(flags)
    if not rule.enabled:
        return marks
    reach = -1  # the last position already marked
    for end, count in enumerate(window_counts(flags, rule.window)):
        if count > rule.limit:
            for i in range(max(reach + 1, end - rule.window + 1), end + 1):
                marks[i] = flags[i]
            reach = end
    return marks


def offenders(flags: Sequence[bool], rule: MixRule) -> int:
    """How many commercial deliveries sit in at least one window over the limit."""
    return sum(offending(flags, rule))


def first_break(flags: Sequence[bool], rule: MixRule) -> tuple[int, int, int] | None:
    """The first window over the limit as ``(start, end, commercial count)`` (indexes inclusive), or None."""
    if not rule.enabled:
        return None
    for end, count in enumerate(window_counts(flags, rule.window)):
        if count > rule.limit:
            return max(0, end - rule.window + 1), end, count
    return None


def worsens(before: Sequence[bool], after: Sequence[bool], rule: MixRule) -> bool:
    """Whether changing the sequence ``before`` into ``after`` breaks the rule more than it was broken."""
    return rule.enabled and offenders(after, rule) > offenders(before, rule)


def worst_window(flags: Sequence[bool], position: int, rule: MixRule) -> int:
    """The most commercial deliveries in one window that contains ``position``."""
    counts = window_counts(flags, rule.window)
    ends = range(position, min(len(flags), position + rule.window))
    return max((counts[end] for end in ends), default=0)


def insert(flags: Sequence[bool], index: int, flag: bool = True) -> list[bool]:
    """``flags`` with ``flag`` inserted before ``index``."""
    return [*flags[:index], flag, *flags[index:]]


def first_fit(flags: Sequence[bool], indexes: Sequence[int], rule: MixRule) -> int | None:
    """The first of ``indexes`` (insertion points, in order) where a commercial delivery does not worsen the mix."""
    for index in indexes:
        if not worsens(flags, insert(flags, index), rule):
            return index
    return None


def summary(counts: Mapping[str, int], rule: MixRule, categories: Sequence[str]) -> str:
    """``"3 educational, 1 commercial (25%), rule: at most 50% of any 4"`` for one channel's queue."""
    total = sum(counts.values())
    parts = [f"{counts[c]} {c}" for c in categories if counts.get(c) and c != COMMERCIAL]
    commercial = counts.get(COMMERCIAL, 0)
    share = f" ({_percent(commercial / total)})" if total else ""
    parts.append(f"{commercial} {COMMERCIAL}{share}")
    return f"{', '.join(parts)}, rule: {rule.describe()}"
