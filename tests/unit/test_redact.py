"""Redaction: every registered secret and every token-shaped string leaves a line, however many secrets there are."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from scheduler import log
from scheduler.log import redact, register_secret


@pytest.fixture(autouse=True)
def no_secrets() -> Iterator[None]:
    saved = set(log._secrets)
    log._secrets.clear()
    log._secret_pattern = None
    yield
    log._secrets.clear()
    log._secrets.update(saved)
    log._secret_pattern = None


def test_a_secret_is_redacted_in_any_case_and_the_longest_of_overlapping_ones_wins() -> None:
    register_secret("abcdef123")
    register_secret("abcdef123456")  # the first one is its prefix
    register_secret("short")  # too short to be told from ordinary words: not a secret
    line = "token ABCDEF123456 then abcdef123 then AbCdEf1234 and a short word"
    assert redact(line) == "token [REDACTED] then [REDACTED] then [REDACTED]4 and a short word"


def test_a_line_with_a_character_whose_lowercase_is_longer_is_still_redacted() -> None:
    register_secret("Tok3nValue")
    assert redact("İstanbul TOK3NVALUE İ") == "İstanbul [REDACTED] İ"


def test_thousands_of_secrets_redact_like_one_alternation_of_them() -> None:
    rng = random.Random(7)
    alphabet = "abcAB01_-:."
    secrets = ["".join(rng.choice(alphabet) for _ in range(rng.randint(6, 14))) for _ in range(3000)]
    secrets += [s + "xyz" for s in secrets[:50]]  # some secrets are prefixes of others
    for secret in secrets:
        register_secret(secret)
    naive = re.compile(
        "|".join(re.escape(s) for s in sorted({s.lower() for s in secrets}, key=len, reverse=True)), re.IGNORECASE
    )
    for _ in range(300):
        line = " ".join(
            rng.choice([rng.choice(secrets).upper(), rng.choice(secrets), "plain", "words"]) for _ in range(6)
        )
        assert redact(line) == naive.sub("[REDACTED]", line)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GET https://api.telegram.org/bot123456:AAbbCCddEEffGGhhIIjjKK/sendMessage",
            "https://api.telegram.org/bot[REDACTED]",
        ),
        ("POST /method/wall.post?access_token=vk1.a.secret&v=5.199", "access_token=[REDACTED]&v=5.199"),
        ("url?Token=x1y2z3 sig=0a0b", "Token=[REDACTED] sig=[REDACTED]"),
        ("Authorization: Bearer EAAGm0PX4ZCps", "Authorization: Bearer [REDACTED]"),
        ("published post 12 to news: https://vk.com/wall-1_2", "published post 12 to news: https://vk.com/wall-1_2"),
    ],
)
def test_token_shaped_strings_are_redacted_without_registering_them(line: str, expected: str) -> None:
    assert expected in redact(line)
