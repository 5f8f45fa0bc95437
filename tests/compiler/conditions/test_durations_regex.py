"""Durations (``3d``) and the guarded regular expressions of ``matches``."""

from __future__ import annotations

import re
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
    # shapes that backtrack catastrophically in Python's re; RE2 runs them in linear time
    "(a+)+$",
    "(a|aa)+$",
    "a+a+b",
    r"\d+.*",
    r"^INV-\d+.*$",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    check_pattern(pattern)
    assert compile_pattern(pattern).pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("([a-z", ["not a valid regular expression", "missing ]"]),
        ("a{2,1}", ["not a valid regular expression"]),
        (r"(a)\1", ["not a valid regular expression", "backreferences"]),
        ("(?=x)y", ["not a valid regular expression", "lookaround"]),
        ("(?<=a)b", ["not a valid regular expression", "linear time"]),
        ("a" * (MAX_PATTERN_LENGTH + 1), ["characters long", str(MAX_PATTERN_LENGTH)]),
        (5, ["as text"]),
    ],
)
def test_invalid_patterns_are_rejected(pattern: Any, words: list[str]) -> None:
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


@pytest.mark.timeout(60)  # a backtracking engine would take minutes here (the guard, not a wall-time check)
def test_accepted_patterns_handle_hostile_values() -> None:
    subject = "a" * 9_999 + "!"  # within the searched first 10,000 characters
    for pattern in ["(a+)+$", "(a|aa)+$", "(a|b)*c", r"\w+@", ".*.*.*x", r"(\d{3}-)+x", r"^\w+@\w+\.com$"]:
        assert search(compile_pattern(pattern), subject) is False
    assert search(compile_pattern("(a+)+!$"), subject) is True
