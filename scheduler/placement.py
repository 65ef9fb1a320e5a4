"""Placing deliveries on a channel's timeline under the content mix rule (:mod:`scheduler.mix`).

Each function works inside the caller's write transaction (the channel is locked) and reads only the deliveries
the rule can see around the change: :attr:`~scheduler.mix.MixRule.span` either side (the whole queue for
``--next``, which moves it).

- :func:`slot_for`: "add to queue". A non-commercial post takes the next free slot after the channel's queue; a
  commercial one takes the first free slot from there on where the rule holds (it can only help to go past an
  explicit ``--at`` post), else it is refused with the earliest slot that would work once more non-commercial
  posts are queued.
- :func:`check_explicit`: ``--at`` and ``--now``. A commercial post that breaks the rule is refused unless forced.
- :func:`next_slot`: ``--next`` pushes the queue back one slot, which can reorder it around explicit posts; any
  post whose placement breaks the rule is refused unless forced.
- :func:`check_move`: ``smm reschedule``, refused unless forced, like an explicit placement.
- :func:`cancel_notes`: a cancel is never refused, but it can leave commercial posts side by side: say so.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from scheduler import mix, timeline
from scheduler.config import ChannelConfig
from scheduler.errors import InputError
from scheduler.slots import push_back, queue_slot, slot_times
from scheduler.timeline import MixEntry

if TYPE_CHECKING:
    from scheduler.models import Delivery
    from scheduler.timeline import Executor

_LAST = 2**62
"""The id a delivery not inserted yet sorts with: after every existing delivery at the same time."""


def local(when: datetime, channel: ChannelConfig) -> str:
    return when.astimezone(channel.timezone).strftime("%a %Y-%m-%d %H:%M %Z")


def _flags(entries: Sequence[MixEntry]) -> list[bool]:
    return [e.commercial for e in entries]


def _free_slots(channel: ChannelConfig, after: datetime, occupied: set[datetime]) -> Iterator[datetime]:
    for when in slot_times(channel.slots, channel.timezone, after):
        if when not in occupied:
            yield when


def _search(
    channel: ChannelConfig, after: datetime, occupied: set[datetime], history: list[MixEntry], future: list[MixEntry]
) -> tuple[datetime, datetime | None]:
    """The first free slot after ``after``, and the first one from there where a commercial post fits (or None).

    ``history`` is the rule's span of deliveries up to ``after``; ``future`` every delivery after it.
    """
    flags = _flags(history) + _flags(future)
    times = [e.due_at for e in future]
    first: datetime | None = None
    tried: set[int] = set()
    for when in _free_slots(channel, after, occupied):
        first = first or when
        index = bisect_right(times, when)
        if index in tried:
            continue
        tried.add(index)
        if _fits(flags, len(history) + index, channel.mix):
            return first, when
        if index == len(future):
            break
    assert first is not None
    return first, None


def _fits(flags: list[bool], position: int, rule: mix.MixRule) -> bool:
    """Whether a commercial delivery inserted at ``position`` keeps the mix (judged on the rule's span around it)."""
    low = max(0, position - rule.span)
    local = flags[low : position + rule.span]
    return not mix.worsens(local, mix.insert(local, position - low), rule)


def slot_for(session: Executor, channel: ChannelConfig, now: datetime, category: str) -> datetime:
    """The slot "add to queue" gives a post of ``category`` on ``channel`` (raises InputError when none works)."""
    times = timeline.channel_times(session, channel.name, now)
    if category != mix.COMMERCIAL or not channel.mix.enabled:
        return queue_slot(channel.slots, channel.timezone, now, times.last_slotted, times.occupied)
    after = max(now, times.last_slotted) if times.last_slotted is not None else now
    rule = channel.mix
    history = timeline.mix_before(session, channel.name, after, rule.span, inclusive=True)
    future = timeline.mix_from(session, channel.name, after, inclusive=False)
    occupied = set(times.occupied)
    first, found = _search(channel, after, occupied, history, future)
    if found is not None:
        return found
    position = len(history) + bisect_right([e.due_at for e in future], first)
    count = mix.worst_window(mix.insert(_flags(history) + _flags(future), position), position, rule)
    reason = (
        f"channel {channel.name!r}: a commercial post in its next slot ({local(first, channel)}) would make {count} "
        f"of {rule.window} consecutive deliveries commercial (rule: {rule.describe()})"
    )
    raise InputError(f"{reason}; {_suggestion(channel, after, occupied, history, future)}")


def _suggestion(
    channel: ChannelConfig, after: datetime, occupied: set[datetime], history: list[MixEntry], future: list[MixEntry]
) -> str:
    """Where a refused commercial post could go: after how many more non-commercial posts, and when."""
    if channel.mix.limit == 0:
        return "the rule allows no commercial post on this channel"
    fillers: list[MixEntry] = []
    taken = set(occupied)
    last = after
    for count in range(1, 2 * channel.mix.window + 1):
        last = next(_free_slots(channel, last, taken))
        taken.add(last)
        fillers.append(MixEntry(last, _LAST, False))
        merged = sorted([*history, *future, *fillers], key=lambda e: (e.due_at, e.id))
        split = len([e for e in merged if e.due_at <= last])
        start = max(0, split - channel.mix.span)
        _, found = _search(channel, last, taken, merged[start:split], merged[split:])
        if found is not None:
            posts = "post is" if count == 1 else "posts are"
            return (
                f"the earliest slot that would work is {local(found, channel)}, once {count} more non-commercial "
                f"{posts} queued before it (or give --at with --force)"
            )
    return "no slot would work before more non-commercial posts are queued (or give --at with --force)"


def check_explicit(session: Executor, channel: ChannelConfig, when: datetime, category: str, now: datetime) -> None:
    """Refuse a commercial post at ``when`` (``--at``/``--now``) that breaks the rule."""
    rule = channel.mix
    if category != mix.COMMERCIAL or not rule.enabled:
        return
    history = timeline.mix_before(session, channel.name, when, rule.span, inclusive=True)
    future = timeline.mix_from(session, channel.name, when, rule.span, inclusive=False)
    flags = _flags(history) + _flags(future)
    after = mix.insert(flags, len(history))
    if not mix.worsens(flags, after, rule):
        return
    count = mix.worst_window(after, len(history), rule)
    try:
        hint = f"`smm add` without --at/--now puts it in {local(slot_for(session, channel, now, category), channel)}"
    except InputError:
        hint = "no slot in the queue works yet"
    raise InputError(
        f"channel {channel.name!r}: a commercial post at {local(when, channel)} would make {count} of {rule.window} "
        f"consecutive deliveries commercial (rule: {rule.describe()}); {hint}, or give --force"
    )


def next_slot(session: Executor, channel: ChannelConfig, now: datetime, category: str, *, force: bool) -> datetime:
    """``--next``: the first free slot for the post, the queue pushed back a slot (refused if that breaks the mix)."""
    queued = timeline.slotted_queue(session, channel.name, now)
    taken = timeline.explicit_times(session, channel.name, now)
    first, moved = push_back(channel.slots, channel.timezone, now, [d.due_at for d in queued], taken)
    rule = channel.mix
    if rule.enabled and not force:
        history = timeline.mix_before(session, channel.name, now, rule.span)
        future = timeline.mix_from(session, channel.name, now)
        new_times = {d.id: when for d, when in zip(queued, moved, strict=True)}
        shifted = [MixEntry(new_times.get(e.id, e.due_at), e.id, e.commercial) for e in future]
        shifted.append(MixEntry(first, _LAST, category == mix.COMMERCIAL))
        shifted.sort(key=lambda e: (e.due_at, e.id))
        before, after = _flags(history) + _flags(future), _flags(history) + _flags(shifted)
        if mix.worsens(before, after, rule):
            broken = mix.first_break(after, rule)
            count = broken[2] if broken else 0
            raise InputError(
                f"channel {channel.name!r}: --next would put {count} commercial posts in {rule.window} consecutive "
                f"deliveries (rule: {rule.describe()}); leave out --next, or give --force"
            )
    for delivery, when in zip(queued, moved, strict=True):
        if when != delivery.due_at:
            timeline.move_delivery(session, delivery.id, when, now, slotted=True)
    return first


def _around(session: Executor, channel: ChannelConfig, low: datetime, high: datetime) -> list[MixEntry]:
    """The deliveries from ``low`` to ``high`` and the rule's span either side."""
    span = channel.mix.span
    return (
        timeline.mix_before(session, channel.name, low, span)
        + timeline.mix_from(session, channel.name, low, until=high)
        + timeline.mix_from(session, channel.name, high, span, inclusive=False)
    )


def check_move(session: Executor, channel: ChannelConfig, delivery: Delivery, when: datetime, post_id: int) -> None:
    """Refuse moving ``delivery`` to ``when`` when that breaks the rule (``smm reschedule`` without --force)."""
    rule = channel.mix
    if not rule.enabled:
        return
    entries = _around(session, channel, min(when, delivery.due_at), max(when, delivery.due_at))
    moved = sorted(
        (MixEntry(when, e.id, e.commercial) if e.id == delivery.id else e for e in entries),
        key=lambda e: (e.due_at, e.id),
    )
    after = _flags(moved)
    if mix.worsens(_flags(entries), after, rule):
        broken = mix.first_break(after, rule)
        count = broken[2] if broken else 0
        raise InputError(
            f"channel {channel.name!r}: moving post {post_id} to {local(when, channel)} would put {count} commercial "
            f"posts in {rule.window} consecutive deliveries (rule: {rule.describe()}); give --force to move it anyway"
        )


def cancel_notes(session: Executor, channel: ChannelConfig, delivery: Delivery, post_id: int) -> list[str]:
    """What cancelling ``delivery`` does to the mix: a note when it leaves commercial posts too close together."""
    rule = channel.mix
    if not rule.enabled:
        return []
    entries = _around(session, channel, delivery.due_at, delivery.due_at)
    remaining = [e for e in entries if e.id != delivery.id]
    if len(remaining) == len(entries) or not mix.worsens(_flags(entries), _flags(remaining), rule):
        return []
    broken = mix.first_break(_flags(remaining), rule)
    assert broken is not None
    start, _, count = broken
    return [
        f"channel {channel.name!r}: without post {post_id}, {count} of {rule.window} consecutive deliveries from "
        f"{local(remaining[start].due_at, channel)} are commercial (rule: {rule.describe()}): reschedule or cancel "
        "one of them"
    ]
