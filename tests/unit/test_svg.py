"""The report's charts: round ticks and their labels, day axes, SVG that parses, says what it shows and escapes every
text it is given, and category colours that labels read on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from scheduler.report_palette import CATEGORY_COLORS, category_style, contrast
from scheduler.scales import Days, Linear, compact, day_ticks, format_count, nice_ticks, tick_label
from scheduler.svg import BarRow, LineSeries, bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</svg></script><img src=x onerror="alert(1)">&amp;'


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 97, [0, 20, 40, 60, 80, 100]),
        (12034, 12980, [12000, 12200, 12400, 12600, 12800, 13000]),
        (0.1, 0.73, [0, 0.2, 0.4, 0.6, 0.8]),
        (3, 3, [2.6, 2.8, 3, 3.2, 3.4]),  # one value: a little either side
        (0, 0, [-1, -0.5, 0, 0.5, 1]),
        (5, 1, [1, 2, 3, 4, 5]),  # given the wrong way round
    ],
)
def test_ticks_are_round_and_cover_the_values(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == ticks


def test_tick_labels_are_compact_and_tell_ticks_apart() -> None:
    assert [tick_label(v, 200) for v in (12000, 12200, 13000)] == ["12k", "12.2k", "13k"]
    assert [tick_label(v, 0.5) for v in (-1, -0.5, 0, 999.5)] == ["-1", "-0.5", "0", "999.5"]
    assert tick_label(1_500_000, 500_000) == "1.5M"
    assert tick_label(0, 20_000) == "0"
    assert [compact(v) for v in (99_999, 123_456, 144_051_432, 2_250_005_838, None)] == [
        "99,999",
        "123k",
        "144M",
        "2.25B",
        "–",
    ]
    assert [format_count(v) for v in (12345, 12.0, 3.5, 0.25, 123.45, None)] == [
        "12,345",
        "12",
        "3.5",
        "0.25",
        "123.5",
        "–",
    ]


def test_day_axes_step_by_days_weeks_or_months() -> None:
    assert [label for _, label in day_ticks(date(2026, 11, 1), date(2026, 11, 4))] == [
        "1 Nov",
        "2 Nov",
        "3 Nov",
        "4 Nov",
    ]
    weekly = day_ticks(date(2026, 11, 1), date(2026, 11, 30))
    assert [d.weekday() for d, _ in weekly] == [0] * 5  # Mondays
    assert [label for _, label in day_ticks(date(2025, 10, 10), date(2026, 3, 5))] == [
        "Nov 2025",
        "Dec",
        "Jan 2026",
        "Feb",
        "Mar",
    ]
    assert [d for d, _ in day_ticks(date(2026, 1, 10), date(2026, 12, 5))] == [date(2026, m, 1) for m in (4, 7, 10)]
    assert day_ticks(date(2026, 1, 1), date(2026, 1, 1)) == [(date(2026, 1, 1), "1 Jan")]


def test_scales_map_values_and_days_onto_positions() -> None:
    assert Linear((0, 10), (100, 0))(2.5) == 75
    assert Linear((5, 5), (0, 50))(5) == 25  # one value: the middle
    days = Days(date(2026, 1, 1), date(2026, 1, 11), (0, 100))
    assert days(date(2026, 1, 6)) == 50


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    ids = root.get("aria-labelledby", "").split()
    assert [root.find(f"{SVG}title").get("id"), root.find(f"{SVG}desc").get("id")] == ids  # type: ignore[union-attr]
    return root


def test_a_line_chart_draws_each_series_with_its_points_and_escapes_names() -> None:
    start = date(2026, 11, 1)
    points = [(start + timedelta(days=i), 1000.0 + 10 * i) for i in range(30)]
    svg = line_chart(
        [LineSeries(HOSTILE, "#0072B2", points), LineSeries("tg", "#E69F00", points[:3])],
        ident="audience",
        title=f"Audience {HOSTILE}",
        description="followers by day",
    )
    root = _parse(svg)
    assert root.find(f"{SVG}title").text == f"Audience {HOSTILE}"  # type: ignore[union-attr]
    assert "<img" not in svg and "</script>" not in svg
    paths = root.findall(f".//{SVG}path")
    assert len(paths) == 2
    assert paths[0].get("d", "").count("L") == 29
    tips = [t.text for t in root.iter(f"{SVG}title")]
    assert f"{HOSTILE}, 2026-11-30: 1,290" in tips
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "1.3k" in labels and "2 Nov" in labels


def test_a_line_chart_of_one_point_and_one_without_any() -> None:
    root = _parse(
        line_chart([LineSeries("vk", "#000", [(date(2026, 1, 1), 5.0)])], ident="a", title="t", description="d")
    )
    assert len(root.findall(f".//{SVG}circle")) == 2  # the point, and the end mark
    with pytest.raises(ValueError, match="at least one point"):
        line_chart([LineSeries("vk", "#000", [])], ident="a", title="t", description="d")


def test_a_bar_chart_draws_a_bar_per_row_and_a_dot_per_value() -> None:
    rows = [
        BarRow("educational", 12.5, "#0072B2", (3, 8, 12, 20, 31), "5 posts"),
        BarRow(HOSTILE, 0, "#D55E00"),
    ]
    svg = bar_chart(rows, ident="by-category", title="Engagement", description="median by category")
    root = _parse(svg)
    assert len(root.findall(f".//{SVG}rect")) == 2
    assert len(root.findall(f".//{SVG}circle")) == 5
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert HOSTILE in texts and "5 posts" in texts
    assert "40" in texts
    with pytest.raises(ValueError, match="at least one row"):
        bar_chart([], ident="x", title="t", description="d")


def test_every_category_s_label_reads_on_its_colour() -> None:
    for category, color in CATEGORY_COLORS.items():
        ink = category_style(category).split("--cat-ink:")[1]
        assert contrast(color, ink) >= 4.5, category  # WCAG AA for normal text
    assert contrast("#ffffff", "#000000") == pytest.approx(21)
