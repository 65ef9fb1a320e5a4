"""Placing deliveries on a channel's timeline under the content mix rule (:mod:`scheduler.mix`).

:class:`Planner` is every entry point's placement (``smm add``, ``smm import``, feeds, the late policy): one
channel's timeline in memory, read inside the caller's write transaction (the channel is locked) only as far as a
placement needs, with what it placed itself kept on it.

- :meth:`Planner.slot_for`: "add to queue". A non-commercial post takes the next free slot after the channel's
  queue; a commercial one takes the first free slot from there on where the rule holds (it can only help to go past
  an explicit ``--at`` post), else it is refused with the earliest slot that would work once more non-commercial
  posts are queued. With ``force`` (and for ``smm import``'s rows) the next free slot, whatever the rule says.
- :meth:`Planner.check_explicit`: ``--at`` and ``--now``. A commercial post that breaks the rule is refused unless
  forced; :meth:`Planner.reserve` takes the time.
- :meth:`Planner.push_back`: ``--next`` pushes the queue back one slot, which can reorder it around explicit posts;
  any post whose placement breaks the rule is refused unless forced; a post pushed to or past its expiry is
  cancelled as an expired one is, with a warning.
- :meth:`Planner.reslot`: the late policy's ``reslot``, the first slot after now that no delivery holds.
- :meth:`Planner.empty_slots`: the slots the evergreen pool fills (:mod:`scheduler.evergreen`).
- :meth:`Planner.breaks`: a bulk import's commercial rows that break the rule.
- :func:`check_move`: ``smm reschedule``, refused unless forced, like an explicit placement.
- :func:`cancel_notes`: a cancel is never refused, but it can leave commercial posts side by side: say so.
- :meth:`Planner.commercial_fits` and :func:`offending`: where the rule binds, for the report's calendar.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import takewhile
from typing import TYPE_CHECKING, NamedTuple

from scheduler import mix, timeline
from scheduler.config import ChannelConfig
from scheduler.errors import InputError
from scheduler.slots import free_slots, push_back
from scheduler.timefmt import format_local
from scheduler.timeline import MixEntry

if TYPE_CHECKING:
    from scheduler.models import Delivery
    from scheduler.timeline import Executor

log = logging.getLogger("smm.queue")

_LAST = 2**62
"""The id a delivery not inserted yet sorts with: after every existing delivery at the same time."""


def local(when: datetime, channel: ChannelConfig) -> str:
    return format_local(when, channel.timezone)


def _flags(entries: Sequence[MixEntry]) -> list[bool]:
    return [e.commercial for e in entries]


def _free_slots(channel: ChannelConfig, after: datetime, occupied: set[datetime]) -> Iterator[datetime]:
    return free_slots(channel.slots, channel.timezone, after, occupied)


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


class Break(NamedTuple):
    """A placed commercial delivery that breaks the mix: when, its placement's ``order``, and how many of the
    rule's window are commercial."""

    due_at: datetime
    order: int
    commercial: int


def _by_time(entry: MixEntry) -> datetime:
    return entry.due_at


def _in_order(entry: MixEntry) -> tuple[datetime, int]:
    return entry.due_at, entry.id


class Planner:
    """One channel's timeline in memory, on which new deliveries are placed.

    It reads the database (in the caller's write transaction, with the channel locked) once, and only as far back
    as a placement needs: the times taken from the end of the queue on, the mix around them, further back for an
    explicit time or the late policy. What it places is kept in memory, so a bulk import places every row without
    a query per row; the caller writes the deliveries. ``conn`` None plans on an empty timeline (a dry run before
    the database exists). ``order`` numbers a placement (a CSV line) for :meth:`breaks`.
    """

    def __init__(self, conn: Executor | None, channel: ChannelConfig, now: datetime) -> None:
        self.conn = conn
        self.channel = channel
        self.now = now
        self._mixed = channel.mix.enabled
        self._reset()

    def _reset(self) -> None:
        self._loaded = False
        self._cursor = self.now
        """Queue placement goes after this: now, or the last queue-placed delivery."""
        self._start = self.now
        """``_taken`` holds every time taken from here on (and ``_stored`` the mix from here, once read)."""
        self._taken: set[datetime] = set()
        self._stored: list[MixEntry] | None = None
        """The rule's span of deliveries before ``_start`` and every one from it on, as the database holds them."""
        self._placed: list[MixEntry] = []
        self._merged: list[MixEntry] | None = None
        self._free: Iterator[datetime] | None = None
        self._free_from = self.now

    # -- the timeline -----------------------------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.conn is None:
            return
        times = timeline.channel_times(self.conn, self.channel.name, self.now)
        if times.last_slotted is not None and times.last_slotted > self.now:
            self._start = self._cursor = max(self._cursor, times.last_slotted)
        self._taken |= times.occupied

    def _cover(self, since: datetime) -> None:
        """Read the timeline back to ``since``."""
        self._load()
        if since >= self._start:
            return
        if self.conn is not None:
            name = self.channel.name
            self._taken |= timeline.taken_times(self.conn, name, since, until=self._start)
            if self._stored is not None:
                older = timeline.mix_before(self.conn, name, since, self.channel.mix.span)
                older += [
                    e for e in timeline.mix_from(self.conn, name, since, until=self._start) if e.due_at < self._start
                ]
                self._stored = older + [e for e in self._stored if e.due_at >= self._start]
                self._merged = None
        self._start = since

    def _mix(self, since: datetime) -> list[MixEntry]:
        """The deliveries in the rule's sequence, those placed here included: the rule's span before ``since`` (or
        before the earliest placed) and every one from there on."""
        self._cover(min([since, *(e.due_at for e in self._placed)]))
        if self._stored is None:
            self._stored = []
            if self.conn is not None:
                name = self.channel.name
                self._stored = timeline.mix_before(self.conn, name, self._start, self.channel.mix.span)
                self._stored += timeline.mix_from(self.conn, name, self._start)
            self._merged = None
        if self._merged is None:
            self._merged = sorted([*self._stored, *self._placed], key=_in_order)
        return self._merged

    def _record(self, when: datetime, category: str, *, slotted: bool, order: int) -> None:
        self._taken.add(when)
        if slotted and when > self._cursor:
            self._cursor = when
        if self._mixed:
            self._placed.append(MixEntry(when, _LAST + order, category == mix.COMMERCIAL))
            self._merged = None

    # -- placements -------------------------------------------------------------------------------------------

    def reserve(self, when: datetime, category: str, *, order: int = 0) -> None:
        """A delivery at an explicit time (``--at``, ``--now``, a CSV row's ``at``): the time is taken."""
        self._record(when, category, slotted=False, order=order)

    def slot_for(self, category: str, *, force: bool = False, order: int = 0) -> datetime:
        """ "Add to queue": the next free slot after the queue, for a commercial post (unless ``force``) the first
        from there where the rule holds (InputError when none does); the slot is taken."""
        when = self._queue_slot("" if force else category)
        self._record(when, category, slotted=True, order=order)
        return when

    def fill(self, placements: Sequence[tuple[str, int]]) -> list[datetime]:
        """The next free slots after the queue, one for each ``(category, order)`` in turn, whatever the rule says
        (a bulk import's rows: :meth:`breaks` names those that break it); the slots are taken."""
        if not self._loaded:
            self._load()
        free = _free_slots(self.channel, self._cursor, self._taken)
        found = [next(free) for _ in placements]
        self._taken.update(found)
        if found:
            self._cursor = max(self._cursor, found[-1])
        if self._mixed:
            self._placed += [
                MixEntry(when, _LAST + order, category == mix.COMMERCIAL)
                for when, (category, order) in zip(found, placements, strict=True)
            ]
            self._merged = None
        return found

    def find_slot(self, category: str, *, force: bool = False) -> datetime:
        """The slot :meth:`slot_for` would give, without taking it (for a post that goes to several channels)."""
        return self._queue_slot("" if force else category)

    def take(self, when: datetime, category: str, *, order: int = 0) -> None:
        """A queue-placed delivery at ``when`` (from :meth:`find_slot`): the queue now ends there."""
        self._record(when, category, slotted=True, order=order)

    def _queue_slot(self, category: str) -> datetime:
        if not self._loaded:
            self._load()
        if category != mix.COMMERCIAL or not self._mixed:
            return self._next_free()
        channel, rule = self.channel, self.channel.mix
        entries = self._mix(self._cursor)
        split = bisect_right(entries, self._cursor, key=_by_time)
        history, future = entries[max(0, split - rule.span) : split], entries[split:]
        first, found = _search(channel, self._cursor, self._taken, history, future)
        if found is not None:
            return found
        position = len(history) + bisect_right(future, first, key=_by_time)
        count = mix.worst_window(mix.insert(_flags(history) + _flags(future), position), position, rule)
        reason = (
            f"channel {channel.name!r}: a commercial post in its next slot ({local(first, channel)}) would make "
            f"{count} of {rule.window} consecutive deliveries commercial (rule: {rule.describe()})"
        )
        raise InputError(f"{reason}; {_suggestion(channel, self._cursor, set(self._taken), history, future)}")

    def _next_free(self) -> datetime:
        """The first free slot after the cursor (the slots walked on from the last one, while the cursor is there)."""
        if self._free is None or self._free_from != self._cursor:
            self._free = _free_slots(self.channel, self._cursor, self._taken)
        self._free_from = next(self._free)
        return self._free_from

    def _commercial_at(self, when: datetime) -> tuple[list[bool], list[bool], int]:
        """The rule's span around ``when`` without and with a commercial delivery there, and its position."""
        rule = self.channel.mix
        entries = self._mix(when)
        split = bisect_right(entries, when, key=_by_time)
        history, future = entries[max(0, split - rule.span) : split], entries[split : split + rule.span]
        flags = _flags(history) + _flags(future)
        return flags, mix.insert(flags, len(history)), len(history)

    def commercial_fits(self, when: datetime) -> bool:
        """Whether a commercial post at ``when`` keeps the mix (what :meth:`check_explicit` asks), taking nothing."""
        if not self.channel.mix.enabled:
            return True
        before, after, _ = self._commercial_at(when)
        return not mix.worsens(before, after, self.channel.mix)

    def check_explicit(self, when: datetime, category: str) -> None:
        """Refuse a commercial post at ``when`` (``--at``/``--now``) that breaks the rule."""
        channel, rule = self.channel, self.channel.mix
        if category != mix.COMMERCIAL or not rule.enabled:
            return
        flags, after, position = self._commercial_at(when)
        if not mix.worsens(flags, after, rule):
            return
        count = mix.worst_window(after, position, rule)
        try:
            hint = f"`smm add` without --at/--now puts it in {local(self._queue_slot(category), channel)}"
        except InputError:
            hint = "no slot in the queue works yet"
        raise InputError(
            f"channel {channel.name!r}: a commercial post at {local(when, channel)} would make {count} of "
            f"{rule.window} consecutive deliveries commercial (rule: {rule.describe()}); {hint}, or give --force"
        )

    def push_back(self, category: str, *, force: bool) -> datetime:
        """``--next``: the first free slot for the post, the queue pushed back a slot (refused if that breaks the
        mix, unless ``force``). Moves the queued deliveries."""
        assert self.conn is not None
        channel, rule, now = self.channel, self.channel.mix, self.now
        queued = timeline.slotted_queue(self.conn, channel.name, now)
        taken = timeline.explicit_times(self.conn, channel.name, now)
        first, moved = push_back(channel.slots, channel.timezone, now, [d.due_at for d in queued], taken)
        if rule.enabled and not force:
            entries = self._mix(now)
            split = bisect_left(entries, now, key=_by_time)
            history, future = entries[max(0, split - rule.span) : split], entries[split:]
            new_times = {d.id: when for d, when in zip(queued, moved, strict=True)}
            shifted = [MixEntry(new_times.get(e.id, e.due_at), e.id, e.commercial) for e in future]
            shifted.append(MixEntry(first, _LAST, category == mix.COMMERCIAL))
            shifted.sort(key=_in_order)
            before, after = _flags(history) + _flags(future), _flags(history) + _flags(shifted)
            if mix.worsens(before, after, rule):
                broken = mix.first_break(after, rule)
                count = broken[2] if broken else 0
                raise InputError(
                    f"channel {channel.name!r}: --next would put {count} commercial posts in {rule.window} "
                    f"consecutive deliveries (rule: {rule.describe()}); leave out --next, or give --force"
                )
        for delivery, when in zip(queued, moved, strict=True):
            if when == delivery.due_at:
                continue
            if delivery.expiry is not None and delivery.expiry <= when:
                timeline.expire_queued(self.conn, [delivery.id], now, by=when)
                log.warning(
                    "post %d on %s expires (%s) before its new slot (%s): cancelled",
                    delivery.post_id,
                    channel.name,
                    local(delivery.expiry, channel),
                    local(when, channel),
                    extra={"post_id": delivery.post_id, "channel": channel.name, "action": "expired_unpublished"},
                )
            else:
                timeline.move_delivery(self.conn, delivery.id, when, now, slotted=True)
        self._reset()  # the queue moved under the timeline in memory: read it again when it is next needed
        self._record(first, category, slotted=True, order=0)
        return first

    def reslot(self, expiry: datetime | None = None) -> datetime:
        """The late policy's ``reslot``: the first slot after now that no delivery holds, taken unless the post
        expires at or before it (``expiry``: the caller cancels it, and the slot stays free)."""
        self._cover(self.now)
        when = next(_free_slots(self.channel, self.now, self._taken))
        if expiry is None or expiry > when:
            self._taken.add(when)
        return when

    def empty_slots(self, until: datetime) -> list[datetime]:
        """The slots after now, up to ``until``, that no delivery holds (the evergreen pool fills them)."""
        self._cover(self.now)
        return list(takewhile(lambda when: when <= until, _free_slots(self.channel, self.now, self._taken)))

    def breaks(self) -> list[Break]:
        """The placed commercial deliveries that complete a window over the rule's limit: in each such window the
        last one placed here, once."""
        rule = self.channel.mix
        if not any(e.commercial for e in self._placed):
            return []
        start = min(e.due_at for e in self._placed)
        entries = self._mix(start)
        entries = entries[max(0, bisect_left(entries, start, key=_by_time) - rule.span) :]
        after = _flags(entries)
        if not mix.worsens(_flags([e for e in entries if e.id < _LAST]), after, rule):
            return []
        found: list[Break] = []
        blamed: set[int] = set()
        for end, count in enumerate(mix.window_counts(after, rule.window)):
            if count <= rule.limit:
                continue
            culprits = [e for e in entries[max(0, end - rule.window + 1) : end + 1] if e.commercial and e.id >= _LAST]
            if culprits and culprits[-1].id not in blamed:
                blamed.add(culprits[-1].id)
                found.append(Break(culprits[-1].due_at, culprits[-1].id - _LAST, count))
        return found


def _around(session: Executor, channel: ChannelConfig, low: datetime, high: datetime) -> list[MixEntry]:
    """The deliveries from ``low`` to ``high`` and the rule's span either side."""
    span = channel.mix.span
    return (
        timeline.mix_before(session, channel.name, low, span)
        + timeline.mix_from(session, channel.name, low, until=high)
        + timeline.mix_from(session, channel.name, high, span, inclusive=False)
    )


def offending(session: Executor, channel: ChannelConfig, low: datetime, high: datetime) -> set[int]:
    """The deliveries from ``low`` to ``high`` that are commercial and sit in a window over the rule's limit (a
    forced placement, a cancel or a changed rule leaves them so)."""
    if not channel.mix.enabled:
        return set()
    entries = _around(session, channel, low, high)
    marks = mix.offending(_flags(entries), channel.mix)
    return {e.id for e, mark in zip(entries, marks, strict=True) if mark and low <= e.due_at <= high}


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
