"""Regular expressions for the ``matches`` operator, run by RE2: linear time, whatever the pattern.

Python's ``re`` backtracks and has no timeout, so a hostile pattern (``(a+)+$``) or a hostile value
could stall a worker for minutes. Patterns are therefore compiled and evaluated by RE2 (the
``google-re2`` package), whose automaton runs in time linear in the value. A pattern is accepted when
it is text, at most :data:`MAX_PATTERN_LENGTH` characters, and compiles under RE2: the syntax of
Python's ``re`` without backreferences (``\\1``) and lookaround (``(?=``, ``(?<=``), which no
linear-time engine can run. Only the first :data:`MAX_SUBJECT_LENGTH` characters of a value are
searched, in Python and in SQL alike. Matching is a search (anywhere in the value; anchor with
``^``/``$``); ``\\w``, ``\\d`` and ``\\b`` are ASCII classes in RE2.

Postgres evaluates the same pattern with its own engine (``~``): keep to the common subset (classes,
``\\d \\w \\s``, anchors, quantifiers, groups, alternation; ``\\b`` is spelled ``\\y`` there).
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import re2

from rule_compiler.errors import InvalidValueError

MAX_PATTERN_LENGTH = 500
MAX_SUBJECT_LENGTH = 10_000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised to us; RE2 must not also print it to stderr


class Pattern(Protocol):
    """What :func:`search` needs of a compiled pattern (RE2's, or ``re``'s in tests)."""

    pattern: str

    def search(self, text: str) -> Any: ...


class UnsafePatternError(InvalidValueError):
    """A pattern the ``matches`` operator does not accept; the message says why and what to do."""


def check_pattern(pattern: Any) -> None:
    """Raise :class:`UnsafePatternError` unless ``pattern`` is a regular expression RE2 can run."""
    _compile(pattern)


def _compile(pattern: Any) -> Pattern:
    if not isinstance(pattern, str):
        raise UnsafePatternError(f"matches needs a regular expression as text, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePatternError(
            f"the regular expression is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
        )
    try:
        compiled: Pattern = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise UnsafePatternError(
            f"'{pattern}' is not a valid regular expression for matches ({reason}); backreferences and "
            "lookaround are not supported because they cannot run in linear time"
        ) from None
    return compiled


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Pattern:
    """The compiled pattern (cached); :class:`UnsafePatternError` when it is not acceptable."""
    return _compile(pattern)


def search(pattern: Pattern, subject: str) -> bool:
    """Whether ``pattern`` occurs in the first :data:`MAX_SUBJECT_LENGTH` characters of ``subject``."""
    return pattern.search(subject[:MAX_SUBJECT_LENGTH]) is not None
