"""Durations (``3d``) and the guarded regular expressions of ``matches``."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest

from rule_compiler.conditions import MAX_PATTERN_LENGTH, DurationError, UnsafePatternError, check_pattern
from rule_compiler.conditions.durations import is_duration, parse_duration
from rule_compiler.conditions.regex import compile_pattern, search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("1s", timedelta(seconds=1)),
        ("36500d", timedelta(days=36500)),
        (" 3d ", timedelta(days=3)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert is_duration(text) is True


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("3 parsecs", ["not a duration", "s (seconds)", "w (weeks)", "'3d'"]),
        ("3 d", ["not a duration", "without spaces"]),
        ("3D", ["not a duration"]),
        ("1d12h", ["not a duration"]),
        ("1.5h", ["not a duration"]),
        ("d", ["not a duration"]),
        ("", ["not a duration"]),
        ("-3d", ["negative", "positive"]),
        ("0d", ["zero", "greater than zero"]),
        ("0s", ["zero"]),
        ("36501d", ["too long", "36500d"]),
        ("99999999999999999999w", ["too long"]),
        (3, ["not a duration", "as text"]),
        (True, ["not a duration"]),
        (None, ["not a duration"]),
    ],
)
def test_bad_durations_say_what_is_wrong(value: Any, words: list[str]) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    for word in words:
        assert word in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert is_duration(value) is False


SAFE = [
    r"^INV-\d+$",
    "(foo|bar)+",
    r"(\d{3}-)+\d{4}",
    "a+b*c?",
    r"[a-z]+@[a-z]+\.com",
    r"^\w+@\w+\.com$",
    r"([a-z]+\.)+[a-z]+",
    "((ab)+c)+",
    "(ab|cd)+",
    r"\d+-\d+",
    "(?i)paid",
    "(a|b)*c",
    "",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    check_pattern(pattern)
    assert compile_pattern(pattern).pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("([a-z", ["not a valid regular expression"]),
        ("a{2,1}", ["not a valid regular expression"]),
        ("(a+)+", ["nests a quantifier", "exponential"]),
        ("(a*)*b", ["nests a quantifier"]),
        ("(?:a+)+$", ["nests a quantifier"]),
        (r"(\w*,?)*", ["nests a quantifier"]),
        (r"(\w+\s?)*", ["nests a quantifier"]),
        ("(a{1,3}){2,}", ["nests a quantifier"]),
        ("(?=(a+)+)", ["nests a quantifier"]),
        ("(a|aa)+", ["alternation"]),
        ("(.|a)+", ["alternation", "start alike"]),
        ("(a|a)+", ["alternation"]),
        (r"x(?:\w|ab)+", ["alternation"]),
        ("a+a+b", ["in a row", "same characters"]),
        (".*.*x", ["in a row"]),
        (r"\d+.*", ["in a row"]),
        (r"\d+\d*x", ["in a row"]),
        ("(?i)a+A+", ["in a row"]),
        ("a" * (MAX_PATTERN_LENGTH + 1), ["characters long", str(MAX_PATTERN_LENGTH)]),
        (5, ["as text"]),
    ],
)
def test_unsafe_or_invalid_patterns_are_rejected(pattern: Any, words: list[str]) -> None:
    with pytest.raises(UnsafePatternError) as caught:
        check_pattern(pattern)
    message = str(caught.value)
    assert "regular expression" in message
    for word in words:
        assert word in message


def test_search_caps_the_subject() -> None:
    pattern = re.compile("needle")
    assert search(pattern, "x" * 9_994 + "needle") is True
    assert search(pattern, "x" * 9_995 + "needle") is False


def test_accepted_patterns_stay_fast_on_hostile_values() -> None:
    subject = "a" * 10_000 + "!"
    started = time.perf_counter()
    for pattern in [r"^INV-\d+$", r"(\d{3}-)+x", "^(ab|cd)+$", r"^\w+@\w+\.com$", "(foo|bar)+x", r"\d+-\d+"]:
        assert search(compile_pattern(pattern), subject) is False
    assert time.perf_counter() - started < 5
