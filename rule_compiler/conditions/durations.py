"""Durations of the ``older_than`` / ``newer_than`` operators: a whole number and a unit, ``90m``, ``3d``.

Units: ``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks. No spaces, no signs, no
fractions, no combinations (``1d12h`` is written ``36h``). Zero and negative durations are errors,
and so is anything longer than :data:`MAX_DURATION` (a typo such as ``3000000w`` would otherwise
overflow the date arithmetic).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from rule_compiler.errors import InvalidValueError

DURATION_RE = re.compile(r"^(\d+)(s|m|h|d|w)$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: The longest duration accepted (about 100 years).
MAX_DURATION = timedelta(days=36_500)
_EXAMPLES = "for example '90m', '12h', '3d' or '2w'"


class DurationError(InvalidValueError):
    """A duration that cannot be used; the message says what is wrong and how to write it."""


def parse_duration(value: Any) -> timedelta:
    """``'3d'`` → ``timedelta(days=3)``; raises :class:`DurationError` with an actionable message."""
    if isinstance(value, bool) or not isinstance(value, str):
        shown = f"{value!r}"[:60]
        raise DurationError(
            f"{shown} is not a duration: write a whole number followed by a unit s, m, h, d or w "
            f"as text ({_EXAMPLES})"
        )
    text = value.strip()
    if text.startswith("-") and DURATION_RE.match(text[1:]):
        raise DurationError(
            f"'{value}' is a negative duration: durations count back from now, so give a positive "
            f"amount ({_EXAMPLES}); use newer_than/older_than to pick the direction"
        )
    match = DURATION_RE.match(text)
    if match is None:
        raise DurationError(
            f"'{value[:60]}' is not a duration: write a whole number followed by one unit, s (seconds), "
            f"m (minutes), h (hours), d (days) or w (weeks), without spaces ({_EXAMPLES})"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise DurationError(f"'{value}' is a zero duration: give an amount greater than zero ({_EXAMPLES})")
    seconds = amount * UNIT_SECONDS[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise DurationError(
            f"'{value}' is too long a duration: the longest accepted is 36500d (about 100 years)"
        )
    return timedelta(seconds=seconds)


def is_duration(value: Any) -> bool:
    """Whether ``value`` parses as a duration."""
    try:
        parse_duration(value)
    except DurationError:
        return False
    return True
