"""The cadence as pure maths: parsing slots, slot instants across weeks and DST changes, and queue placement (the
planner on an empty timeline in memory).

Every test passes a fixed ``now``; nothing reads the clock. Calendar used below (2026): Monday 23 November,
Tuesday 24, Friday 27, Tuesday 1 December, Friday 4. DST changes: Europe/Berlin and Europe/Helsinki spring forward
on Sunday 29 March and fall back on Sunday 25 October (01:00 UTC both times); America/New_York springs forward on
Sunday 8 March and falls back on Sunday 1 November (at 02:00 local).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import ChannelConfig
from scheduler.placement import Planner
from scheduler.slots import (
    DEFAULT_SLOTS,
    Slot,
    local_to_utc,
    next_free_slots,
    parse_slot,
    parse_slots,
    push_back,
    slot_times,
)
from tests.conftest import utc

BERLIN = ZoneInfo("Europe/Berlin")
HELSINKI = ZoneInfo("Europe/Helsinki")
NEW_YORK = ZoneInfo("America/New_York")
MOSCOW = ZoneInfo("Europe/Moscow")

MONDAY_NOON = utc(2026, 11, 23, 12, 0)
TUE_FRI = parse_slots(["tue 10:00", "fri 10:00"])
# Tue/Fri 10:00 UTC from Monday 23 November 2026 on.
T1, F1, T2, F2, T3, F3 = (
    utc(2026, 11, 24, 10),
    utc(2026, 11, 27, 10),
    utc(2026, 12, 1, 10),
    utc(2026, 12, 4, 10),
    utc(2026, 12, 8, 10),
    utc(2026, 12, 11, 10),
)


def first(slots: tuple[Slot, ...], zone: ZoneInfo, after: datetime, n: int) -> list[datetime]:
    return list(islice(slot_times(slots, zone, after), n))


# -- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tue 10:00", [(1, time(10, 0))]),
        ("Tuesday 10:00", [(1, time(10, 0))]),
        ("SUN 00:00", [(6, time(0, 0))]),
        ("  fri    23:59  ", [(4, time(23, 59))]),
        ("mon 9:05", [(0, time(9, 5))]),
        ("saturday 07:30", [(5, time(7, 30))]),
        ("daily 09:30", [(d, time(9, 30)) for d in range(7)]),
        ("weekdays 18:00", [(d, time(18, 0)) for d in range(5)]),
        ("weekends 08:15", [(5, time(8, 15)), (6, time(8, 15))]),
    ],
)
def test_parse_slot_forms(text: str, expected: list[tuple[int, time]]) -> None:
    assert parse_slot(text) == tuple(Slot(d, t) for d, t in expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tue", '"tue" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("tue 10", '"tue 10" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("10:00", '"10:00" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("tue 10:00:00", '"tue 10:00:00" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("tue 10:0", '"tue 10:0" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("mon-fri 10:00", '"mon-fri 10:00" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("", '"" is not a slot such as "tue 10:00", "daily 09:30" or "weekdays 18:00"'),
        ("tue 24:00", '"tue 24:00": 24:00 is not a time of day (00:00 to 23:59)'),
        ("tue 10:60", '"tue 10:60": 10:60 is not a time of day (00:00 to 23:59)'),
        ("daily 99:99", '"daily 99:99": 99:99 is not a time of day (00:00 to 23:59)'),
        ("tues 10:00", "\"tues 10:00\": 'tues' is not a day (mon..sun, daily, weekdays, weekends)"),
        ("Weekly 10:00", "\"Weekly 10:00\": 'Weekly' is not a day (mon..sun, daily, weekdays, weekends)"),
    ],
)
def test_parse_slot_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_slot(text)
    assert str(info.value) == message


def test_parse_slots_sorts_and_merges_forms() -> None:
    slots = parse_slots(["fri 10:00", "weekends 09:00", "tue 10:00", "mon 18:30"])
    assert slots == (
        Slot(0, time(18, 30)),
        Slot(1, time(10, 0)),
        Slot(4, time(10, 0)),
        Slot(5, time(9, 0)),
        Slot(6, time(9, 0)),
    )
    assert [str(s) for s in slots] == ["mon 18:30", "tue 10:00", "fri 10:00", "sat 09:00", "sun 09:00"]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "at least one slot is needed"),
        (["tue 10:00", "tuesday 10:00"], '"tuesday 10:00": tue 10:00 is listed twice'),
        (["daily 10:00", "sat 10:00"], '"sat 10:00": sat 10:00 is listed twice'),
        (["weekdays 10:00", "daily 10:00"], '"daily 10:00": mon 10:00 is listed twice'),
        (["tue 10:00", "xyz 10:00"], "\"xyz 10:00\": 'xyz' is not a day (mon..sun, daily, weekdays, weekends)"),
    ],
)
def test_parse_slots_errors(texts: list[str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_slots(texts)
    assert str(info.value) == message


def test_default_is_tuesday_and_friday_at_ten() -> None:
    assert DEFAULT_SLOTS == TUE_FRI
    assert [str(s) for s in DEFAULT_SLOTS] == ["tue 10:00", "fri 10:00"]


# -- slot instants ------------------------------------------------------------------------------------------------


def test_slot_times_across_weeks_months_and_years() -> None:
    assert first(DEFAULT_SLOTS, ZoneInfo("UTC"), MONDAY_NOON, 6) == [T1, F1, T2, F2, T3, F3]
    assert first(DEFAULT_SLOTS, ZoneInfo("UTC"), utc(2026, 12, 26), 3) == [
        utc(2026, 12, 29, 10),
        utc(2027, 1, 1, 10),
        utc(2027, 1, 5, 10),
    ]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 11, 24, 10, 0), F1),  # exactly on a slot: strictly after it
        (utc(2026, 11, 24, 9, 59, 59), T1),
        (utc(2026, 11, 24, 10, 0, 0) + timedelta(microseconds=1), F1),
        (utc(2026, 11, 27, 23, 59), T2),
    ],
)
def test_slot_times_are_strictly_after(after: datetime, expected: datetime) -> None:
    assert first(DEFAULT_SLOTS, ZoneInfo("UTC"), after, 1) == [expected]


def test_slot_times_in_a_zone_east_of_utc_and_from_a_non_utc_after() -> None:
    # Moscow is UTC+3 all year: 10:00 there is 07:00 UTC. Late on Monday in UTC is already Tuesday in Moscow.
    assert first(DEFAULT_SLOTS, MOSCOW, MONDAY_NOON, 2) == [utc(2026, 11, 24, 7), utc(2026, 11, 27, 7)]
    assert first(DEFAULT_SLOTS, MOSCOW, utc(2026, 11, 23, 22, 0), 1) == [utc(2026, 11, 24, 7)]
    after_in_moscow = datetime(2026, 11, 24, 9, 0, tzinfo=MOSCOW)  # 06:00 UTC
    assert first(DEFAULT_SLOTS, MOSCOW, after_in_moscow, 1) == [utc(2026, 11, 24, 7)]


def test_slot_times_are_utc_and_increasing() -> None:
    times = first(parse_slots(["daily 09:00", "daily 21:00"]), NEW_YORK, utc(2026, 1, 1), 800)
    assert all(t.tzinfo is UTC for t in times)
    assert all(a < b for a, b in pairwise(times))


@pytest.mark.parametrize("zone", [BERLIN, HELSINKI, NEW_YORK, ZoneInfo("Australia/Sydney")])
def test_a_slot_keeps_its_wall_clock_time_all_year(zone: ZoneInfo) -> None:
    times = first(parse_slots(["daily 10:00"]), zone, datetime(2026, 1, 1, tzinfo=zone), 365)
    assert {t.astimezone(zone).time() for t in times} == {time(10, 0)}
    assert [t.astimezone(zone).date() for t in times] == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    # the UTC instant moves by an hour across the changes
    assert len({t.time() for t in times}) == 2


# -- DST: skipped and repeated hours ------------------------------------------------------------------------------


def test_spring_forward_slot_in_the_skipped_hour_fires_an_hour_later_on_the_new_clock() -> None:
    sunday_0230 = parse_slots(["sun 02:30"])
    berlin = first(sunday_0230, BERLIN, utc(2026, 3, 27), 3)
    # 02:30 does not exist on 29 March in Berlin: it fires at 01:30 UTC, which the new clock shows as 03:30.
    assert berlin == [utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30), utc(2026, 4, 12, 0, 30)]
    assert berlin[0].astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)
    assert berlin[1].astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 4, 5, 2, 30)

    # Helsinki skips 03:00-04:00 at the same instant: a 03:30 slot fires at 01:30 UTC = 04:30 on the new clock.
    helsinki = first(parse_slots(["sun 03:30"]), HELSINKI, utc(2026, 3, 27), 2)
    assert helsinki == [utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30)]
    assert helsinki[0].astimezone(HELSINKI).replace(tzinfo=None) == datetime(2026, 3, 29, 4, 30)


def test_fall_back_slot_in_the_repeated_hour_fires_once_at_its_first_occurrence() -> None:
    sunday_0230 = parse_slots(["sun 02:30"])
    times = first(sunday_0230, BERLIN, utc(2026, 10, 23), 3)
    # 02:30 happens twice on 25 October (00:30 UTC in summer time, 01:30 UTC in winter time): only the first counts.
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 11, 1, 1, 30), utc(2026, 11, 8, 1, 30)]
    assert times[0].astimezone(BERLIN).utcoffset() == timedelta(hours=2)
    # Between the two occurrences the second one is not offered either.
    assert first(sunday_0230, BERLIN, utc(2026, 10, 25, 0, 45), 1) == [utc(2026, 11, 1, 1, 30)]


def test_two_slots_collapsing_into_one_instant_count_once() -> None:
    pair = parse_slots(["sun 02:30", "sun 03:30"])
    # On 29 March both are 01:30 UTC in Berlin; the week after they are an hour apart again.
    assert first(pair, BERLIN, utc(2026, 3, 27), 3) == [
        utc(2026, 3, 29, 1, 30),
        utc(2026, 4, 5, 0, 30),
        utc(2026, 4, 5, 1, 30),
    ]
    assert next_free_slots(pair, BERLIN, utc(2026, 3, 27), (), 2) == [utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30)]
    # Queueing two posts: the second one goes to the next week, not to the same instant.
    planner = Planner(None, _channel(pair, BERLIN), utc(2026, 3, 27))
    assert [planner.slot_for("news"), planner.slot_for("news")] == [utc(2026, 3, 29, 1, 30), utc(2026, 4, 5, 0, 30)]


def test_new_york_spring_forward_and_fall_back() -> None:
    assert first(parse_slots(["sun 02:30"]), NEW_YORK, utc(2026, 3, 6), 2) == [
        utc(2026, 3, 8, 7, 30),  # 02:30 EST would be 07:30 UTC; the clock shows 03:30 EDT
        utc(2026, 3, 15, 6, 30),
    ]
    times = first(parse_slots(["sun 01:30"]), NEW_YORK, utc(2026, 10, 30), 2)
    assert times == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 8, 6, 30)]  # 01:30 EDT, the first of the two
    assert times[0].astimezone(NEW_YORK).utcoffset() == timedelta(hours=-4)


def test_weekly_slots_keep_local_time_across_the_change() -> None:
    # Friday 27 March is still winter time in Berlin, Tuesday 31 March is summer time: both at 10:00 local.
    assert first(DEFAULT_SLOTS, BERLIN, utc(2026, 3, 26), 2) == [utc(2026, 3, 27, 9), utc(2026, 3, 31, 8)]
    assert first(DEFAULT_SLOTS, BERLIN, utc(2026, 10, 22), 2) == [utc(2026, 10, 23, 8), utc(2026, 10, 27, 9)]


@pytest.mark.parametrize(
    ("local", "zone", "expected"),
    [
        (datetime(2026, 7, 1, 10, 0), BERLIN, utc(2026, 7, 1, 8, 0)),
        (datetime(2026, 1, 1, 10, 0), BERLIN, utc(2026, 1, 1, 9, 0)),
        (datetime(2026, 10, 25, 2, 30), BERLIN, utc(2026, 10, 25, 0, 30)),  # repeated: the first occurrence
        (datetime(2026, 11, 1, 1, 30), NEW_YORK, utc(2026, 11, 1, 5, 30)),
        (datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Etc/GMT-5")), BERLIN, utc(2026, 3, 28, 21, 30)),  # aware
    ],
)
def test_local_to_utc(local: datetime, zone: ZoneInfo, expected: datetime) -> None:
    for strict in (False, True):
        result = local_to_utc(local, zone, strict=strict)
        assert result == expected
        assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("local", "zone", "lenient", "message"),
    [
        (
            datetime(2026, 3, 29, 2, 30),
            BERLIN,
            utc(2026, 3, 29, 1, 30),
            "2026-03-29 02:30 does not exist in Europe/Berlin (the clocks skip it)",
        ),
        (
            datetime(2026, 3, 29, 3, 0),
            HELSINKI,
            utc(2026, 3, 29, 1, 0),
            "2026-03-29 03:00 does not exist in Europe/Helsinki (the clocks skip it)",
        ),
        (
            datetime(2026, 3, 8, 2, 59),
            NEW_YORK,
            utc(2026, 3, 8, 7, 59),
            "2026-03-08 02:59 does not exist in America/New_York (the clocks skip it)",
        ),
    ],
)
def test_local_to_utc_strict_refuses_a_skipped_time(
    local: datetime, zone: ZoneInfo, lenient: datetime, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        local_to_utc(local, zone, strict=True)
    assert str(info.value) == message
    assert local_to_utc(local, zone) == lenient


def test_the_edges_of_the_skipped_hour_exist() -> None:
    assert local_to_utc(datetime(2026, 3, 29, 1, 59), BERLIN, strict=True) == utc(2026, 3, 29, 0, 59)
    assert local_to_utc(datetime(2026, 3, 29, 3, 0), BERLIN, strict=True) == utc(2026, 3, 29, 1, 0)


# -- queue placement ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "last_queued", "occupied", "expected"),
    [
        (MONDAY_NOON, None, (), T1),  # empty queue: the first slot
        (MONDAY_NOON, T1, (), F1),  # after the last queued one
        (MONDAY_NOON, F2, (), T3),  # FIFO even when earlier slots are free
        (MONDAY_NOON, None, (T1,), F1),  # an occupied slot is skipped
        (MONDAY_NOON, T1, (F1, T2), F2),  # several
        (MONDAY_NOON, utc(2026, 11, 20, 10), (), T1),  # the last queued one is overdue: after now
        (MONDAY_NOON, utc(2026, 11, 25, 15), (), F1),  # off the grid (an explicit or old-slot time)
    ],
)
def test_queue_slot(
    now: datetime, last_queued: datetime | None, occupied: tuple[datetime, ...], expected: datetime
) -> None:
    planner = Planner(None, _channel(DEFAULT_SLOTS, ZoneInfo("UTC")), now)  # an empty timeline, in memory
    if last_queued is not None:
        planner.take(last_queued, "news")
    for when in occupied:
        planner.reserve(when, "news")
    assert planner.slot_for("news") == expected


def test_queue_slot_matches_occupied_times_given_in_any_zone() -> None:
    planner = Planner(None, _channel(DEFAULT_SLOTS, ZoneInfo("UTC")), MONDAY_NOON)
    planner.reserve(T1.astimezone(BERLIN), "news")
    assert planner.slot_for("news") == F1


def test_queue_slot_is_fifo_over_many_adds() -> None:
    planner = Planner(None, _channel(DEFAULT_SLOTS, ZoneInfo("UTC")), MONDAY_NOON)
    assert [planner.slot_for("news") for _ in range(3)] + planner.fill([("news", 0)] * 3) == [T1, F1, T2, F2, T3, F3]


def _channel(slots: tuple[Slot, ...], zone: ZoneInfo) -> ChannelConfig:
    return ChannelConfig("c", "outbox", zone, slots, None, {}, {})


def test_next_free_slots_counts_and_skips() -> None:
    assert next_free_slots(DEFAULT_SLOTS, ZoneInfo("UTC"), MONDAY_NOON, {F1}, 3) == [T1, T2, F2]


# -- push_back (--next) -------------------------------------------------------------------------------------------

UTC_ZONE = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("queued", "explicit", "expected_first", "expected_moved"),
    [
        ([], [], T1, []),
        ([T1], [], T1, [F1]),
        ([T1, F1, T2], [], T1, [F1, T2, F2]),  # each queued one back by exactly one slot
        ([T1, T2], [F1], T1, [T2, F2]),  # an explicit time keeps its slot; the queue flows around it
        ([F1, T2], [T1], F1, [T2, F2]),  # the first slot is explicit: the new post takes the next free one
        ([F1], [], T1, [T2]),  # a gap before the queue does not absorb the push: still one slot back
        ([utc(2026, 11, 23, 18), T1], [], T1, [utc(2026, 11, 23, 18), F1]),  # before the new slot: kept
    ],
)
def test_push_back(
    queued: list[datetime], explicit: list[datetime], expected_first: datetime, expected_moved: list[datetime]
) -> None:
    new, moved = push_back(DEFAULT_SLOTS, UTC_ZONE, MONDAY_NOON, queued, explicit)
    assert new == expected_first
    assert moved == expected_moved
    assert new not in moved
    assert not set(moved) & set(explicit)


def test_push_back_keeps_fifo_when_a_queued_post_shares_its_time_with_an_explicit_one() -> None:
    # `smm add --at` put a post on T2, where a queued post already was. Pushing back must not send the F1 post
    # behind the ones that followed it (it used to jump to 15 December).
    t4 = utc(2026, 12, 15, 10)
    new, moved = push_back(DEFAULT_SLOTS, UTC_ZONE, MONDAY_NOON, [T1, F1, T2, F2, T3], [T2])
    assert (new, moved) == (T1, [F1, F2, T3, F3, t4])


def test_push_back_keeps_fifo_when_two_queued_posts_share_a_slot() -> None:
    new, moved = push_back(DEFAULT_SLOTS, UTC_ZONE, MONDAY_NOON, [T1, F1, F1, T2], [])
    assert (new, moved) == (T1, [F1, T2, F2, T3])


def test_push_back_invariants_over_every_small_queue() -> None:
    """Each of the first 6 slots is free, queued or explicit: the result is always in order, one post a slot."""
    grid = [T1, F1, T2, F2, T3, F3]
    beyond = [utc(2026, 12, 15, 10), utc(2026, 12, 18, 10)]
    for code in range(3**6):
        kinds = [(code // 3**i) % 3 for i in range(6)]
        queued = [t for t, k in zip(grid, kinds, strict=True) if k == 1]
        explicit = [t for t, k in zip(grid, kinds, strict=True) if k == 2]
        new, moved = push_back(DEFAULT_SLOTS, UTC_ZONE, MONDAY_NOON, queued, explicit)
        placed = [new, *moved]
        assert placed == sorted(placed), kinds
        assert len(set(placed)) == len(placed), kinds
        assert not set(placed) & set(explicit), kinds
        assert new == min(t for t in [*grid, *beyond] if t not in explicit), kinds
        # each queued post moves back by exactly one free slot
        free = [t for t in [*grid, *beyond] if t not in explicit]
        assert moved == [free[free.index(t) + 1] for t in queued], kinds


def test_push_back_across_the_spring_forward_collapse() -> None:
    pair = parse_slots(["sun 02:30", "sun 03:30"])
    a = utc(2026, 3, 29, 1, 30)  # the collapsed pair
    b, c = utc(2026, 4, 5, 0, 30), utc(2026, 4, 5, 1, 30)
    new, moved = push_back(pair, BERLIN, utc(2026, 3, 27), [a, b], [])
    assert (new, moved) == (a, [b, c])
