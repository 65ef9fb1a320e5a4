"""The content mix rule as pure functions: window counts, offenders, worsening, first fit, the summary line."""

from __future__ import annotations

import itertools

import pytest

from scheduler.config import CATEGORIES
from scheduler.mix import (
    MixRule,
    first_break,
    first_fit,
    insert,
    offenders,
    summary,
    window_counts,
    worsens,
    worst_window,
)

C, E = True, False
HALF_OF_4 = MixRule(0.5, 4)


def flags(text: str) -> list[bool]:
    """``"CEEC"`` as flags (C commercial, E anything else)."""
    return [c == "C" for c in text]


def test_limit_rounds_down_and_describes_itself() -> None:
    assert HALF_OF_4.limit == 2
    assert MixRule(0.3, 10).limit == 3
    assert MixRule(0.3, 4).limit == 1
    assert MixRule(0.29, 7).limit == 2  # 2.03
    assert MixRule(1 / 3, 3).limit == 1  # no float trouble at exact fractions
    assert MixRule(0.0, 4).limit == 0
    assert HALF_OF_4.describe() == "at most 50% of any 4"
    assert MixRule(0.125, 8).describe() == "at most 12.5% of any 8"
    assert MixRule(enabled=False).describe() == "off"


def test_window_counts_include_the_short_windows_at_the_start() -> None:
    assert window_counts(flags("CCEECCC"), 4) == [1, 2, 2, 2, 2, 2, 3]
    assert window_counts([], 4) == []
    assert window_counts(flags("CCC"), 1) == [1, 1, 1]


@pytest.mark.parametrize(
    ("sequence", "broken"),
    [
        ("", None),
        ("CC", None),
        ("CCEECC", None),
        ("CECEC", None),
        ("CCC", (0, 2, 3)),  # three offers on a new channel: already too many of any 4
        ("EECECC", (2, 5, 3)),
        ("CCEEEECCEC", (6, 9, 3)),
    ],
)
def test_first_break(sequence: str, broken: tuple[int, int, int] | None) -> None:
    assert first_break(flags(sequence), HALF_OF_4) == broken


def test_a_switched_off_rule_never_breaks() -> None:
    off = MixRule(enabled=False)
    assert offenders(flags("CCCCCC"), off) == 0
    assert first_break(flags("CCCCCC"), off) is None
    assert not worsens([], flags("CCCC"), off)


def test_offenders_are_the_commercial_deliveries_in_a_window_over_the_limit() -> None:
    assert offenders(flags("CCEC"), HALF_OF_4) == 3
    assert offenders(flags("CCCC"), HALF_OF_4) == 4
    assert offenders(flags("CCCEEEEC"), HALF_OF_4) == 3  # the last one is fine
    assert offenders(flags("CCCE"), HALF_OF_4) == 3  # a non-commercial post after a broken run adds none
    assert offenders(flags("EEEE"), HALF_OF_4) == 0


RULES = (HALF_OF_4, MixRule(0.25, 4), MixRule(0.4, 5), MixRule(0.5, 2), MixRule(2 / 3, 3))


def test_adding_a_non_commercial_post_or_removing_a_commercial_one_never_worsens_the_mix() -> None:
    # Exhaustively, for every sequence up to 7 long, every position, and a few rules.
    for rule in RULES:
        for n in range(8):
            for seq in map(list, itertools.product((C, E), repeat=n)):
                for i in range(n + 1):
                    assert not worsens(seq, insert(seq, i, E), rule), (seq, i, rule)
                for i in range(n):
                    if seq[i]:
                        assert not worsens(seq, seq[:i] + seq[i + 1 :], rule), (seq, i, rule)


@pytest.mark.parametrize("rule", [MixRule(0.5, 3), HALF_OF_4, MixRule(0.25, 4)], ids=str)
def test_the_span_either_side_gives_the_same_verdict_as_the_whole_sequence(rule: MixRule) -> None:
    # What the service does on a big queue: it loads rule.span deliveries either side of a change.
    for seq in map(list, itertools.product((C, E), repeat=9)):
        for i in range(len(seq) + 1):
            lo, hi = max(0, i - rule.span), min(len(seq), i + rule.span)
            local = seq[lo:hi]
            assert worsens(seq, insert(seq, i), rule) == worsens(local, insert(local, i - lo), rule), (seq, i)
            if i < len(seq):  # a removal (a cancel)
                lo, hi = max(0, i - rule.span), min(len(seq), i + 1 + rule.span)
                local = seq[lo:hi]
                gone = local[: i - lo] + local[i - lo + 1 :]
                assert worsens(seq, seq[:i] + seq[i + 1 :], rule) == worsens(local, gone, rule), (seq, i)


def test_worsens_judges_a_change_on_an_already_broken_channel_by_whether_it_gets_worse() -> None:
    broken = flags("CCCEEEE")
    assert first_break(broken, HALF_OF_4) is not None
    assert not worsens(broken, [*broken, C], HALF_OF_4)  # far from the broken part: allowed
    assert worsens(broken, insert(broken, 3), HALF_OF_4)  # next to it: worse
    assert worsens(flags("CECEC"), flags("ECEC"), HALF_OF_4) is False  # removing a C only helps
    assert worsens(flags("CCEEC"), flags("CCEC"), HALF_OF_4)  # removing an E can break it


def test_first_fit_finds_the_first_insertion_point_that_holds() -> None:
    # E C C | E E : a C after the two C fails; one after the two E works.
    seq = flags("ECCEE")
    assert first_fit(seq, [3, 4, 5], HALF_OF_4) == 5
    assert first_fit(flags("CC"), [2], HALF_OF_4) is None
    assert first_fit(flags("CC"), [2], MixRule(0.75, 4)) == 2
    assert first_fit([], [0], MixRule(0.0, 4)) is None  # share 0: no commercial post ever


def test_worst_window_around_a_position() -> None:
    seq = flags("ECCC")
    assert worst_window(seq, 3, HALF_OF_4) == 3
    assert worst_window(seq, 0, HALF_OF_4) == 3  # the windows holding position 0 end at 0..3
    assert worst_window(flags("CEEE"), 3, HALF_OF_4) == 1


def test_summary_line() -> None:
    counts = {"educational": 3, "commercial": 1}
    assert summary(counts, HALF_OF_4, CATEGORIES) == "3 educational, 1 commercial (25%), rule: at most 50% of any 4"
    counts = {"news": 1, "entertaining": 2, "ugc": 1}
    assert summary(counts, MixRule(enabled=False), CATEGORIES) == (
        "2 entertaining, 1 ugc, 1 news, 0 commercial (0%), rule: off"
    )
    assert summary({"commercial": 3}, MixRule(0.4, 5), CATEGORIES) == (
        "3 commercial (100%), rule: at most 40% of any 5"
    )
