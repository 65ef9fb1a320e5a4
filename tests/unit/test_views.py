"""The small text helpers every command's output goes through."""

from __future__ import annotations

from scheduler.views import configured, plural, some_of


def test_plural_says_one_post_and_two_posts() -> None:
    assert [plural(n, "post", "posts") for n in (0, 1, 2, 10_000)] == ["0 posts", "1 post", "2 posts", "10,000 posts"]


def test_some_of_lists_up_to_the_limit_then_counts_the_rest() -> None:
    assert some_of([]) == ""
    assert some_of(["a", "b"], limit=2) == "a, b"
    assert some_of(["a", "b", "c"], limit=2) == "a, b and 1 more"
    assert some_of([f"tg{i}" for i in range(2050)]).endswith("tg19 and 2,030 more")


def test_an_unknown_channels_error_names_at_most_twenty_configured_ones() -> None:
    assert configured(["berlin", "ny"]) == "configured: berlin, ny"
    assert configured([]) == "configured: none"
    assert configured(f"c{i}" for i in range(25)) == f"configured: {', '.join(f'c{i}' for i in range(20))} and 5 more"
