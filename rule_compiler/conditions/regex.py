"""Guarded regular expressions for the ``matches`` operator.

Python's ``re`` backtracks and has no timeout, so a pattern is only accepted when it is

- at most :data:`MAX_PATTERN_LENGTH` characters long and a valid Python regular expression;
- free of the shapes that backtrack exponentially: a repeated group with a variable-length part
  and no mandatory character that part cannot match (``(a+)+``, ``(\\w+\\s?)*``, ``(a|aa)+``;
  ``([a-z]+\\.)+`` is fine: the dot ends each round), and a repeated alternation whose branches can
  start with the same character (``(.|a)+``);
- free of adjacent unbounded quantifiers over overlapping characters (``a+a+b``, ``.*.*x``,
  ``\\d+.*``), which cost a cubic number of steps under ``re.search``.

At run time only the first :data:`MAX_SUBJECT_LENGTH` characters of a value are searched, in Python
and in SQL alike, which bounds what remains (a single quantifier that fails late, like ``\\w+@`` on
10,000 letters, is quadratic: about a second). Matching is ``re.search`` (anywhere in the value;
anchor with ``^``/``$``). Postgres evaluates the same pattern with its own engine (``~``): keep to the
common subset (classes, ``\\d \\w \\s``, anchors, quantifiers, groups, alternation); ``\\b`` is a
word boundary only in Python (Postgres spells it ``\\y``).
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

MAX_PATTERN_LENGTH = 500
MAX_SUBJECT_LENGTH = 10_000

# The stdlib parser is private and has no type stubs; it is stable across 3.11-3.14.
_parser: Any = importlib.import_module("re._parser")
_compiler: Any = importlib.import_module("re._compiler")
_c: Any = importlib.import_module("re._constants")
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT}
_ONE_CHAR = {_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN, _c.CATEGORY}
#: The characters overlaps are tested on: ASCII and a sample of other scripts, spaces and digits.
_PROBE = [chr(code) for code in range(128)] + list("éßЖж٣中\u00a0\u2003\u0130\U0001f600")
_ALL = frozenset(_PROBE)


class UnsafePatternError(ValueError):
    """A pattern that is invalid, too long or prone to catastrophic backtracking."""


class _Checker:
    """Walks a parsed pattern and raises :class:`UnsafePatternError` at the first unsafe shape."""

    def __init__(self, pattern: str, state: Any) -> None:
        self.pattern = pattern
        self.state = state

    def fail(self, shape: str, advice: str) -> None:
        raise UnsafePatternError(
            f"the regular expression '{self.pattern}' {shape}, which can take exponential time on long "
            f"values; {advice}"
        )

    def members(self, item: Any) -> frozenset[str]:
        """The probe characters one single-character item matches."""
        compiled = _compiler.compile(_parser.SubPattern(self.state, [item]), self.state.flags)
        return frozenset(ch for ch in _PROBE if compiled.fullmatch(ch))

    def variable(self, item: Any) -> bool:
        low, high = _parser.SubPattern(self.state, [item]).getwidth()
        return bool(low != high)

    def chars(self, items: Any) -> frozenset[str]:
        """Every probe character a sub-pattern can consume (all of them when unsure)."""
        found: frozenset[str] = frozenset()
        for op, av in items:
            if op in _ONE_CHAR:
                found |= self.members((op, av))
            elif op in _REPEATS:
                found |= self.chars(av[2])
            elif op in (_c.SUBPATTERN, _c.BRANCH, _c.ATOMIC_GROUP, _c.GROUPREF_EXISTS):
                for sub in _children(op, av):
                    found |= self.chars(sub)
            elif op not in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
                return _ALL  # back-references and anything unusual
        return found

    def first(self, items: Any) -> frozenset[str]:
        """The probe characters a sub-pattern can start with (all of them when it may be empty)."""
        for op, av in items:
            if op in _ONE_CHAR:
                return self.members((op, av))
            if op == _c.SUBPATTERN:
                return self.first(av[3])
            if op == _c.BRANCH:
                return frozenset().union(*(self.first(branch) for branch in av[1]))
            if op in _REPEATS and av[0] > 0:
                return self.first(av[2])
            return _ALL
        return _ALL

    def check(self, items: Any, repeated: bool) -> None:
        self.check_adjacent(items)
        for op, av in items:
            if op in _REPEATS:
                _low, high, body = av
                if high > 1:
                    self.check_repeated_body(body)
                self.check(body, repeated or high > 1)
                continue
            if op == _c.BRANCH and repeated:
                self.check_branches(av[1])
            for sub in _children(op, av):
                self.check(sub, repeated)

    def check_repeated_body(self, body: Any) -> None:
        """A repeated body of variable width needs a mandatory character its variable parts cannot match."""
        items = _flatten(body)
        for op, av in items:
            if op == _c.BRANCH:
                self.check_branches(av[1])
        low, high = body.getwidth()
        if low == high:
            return
        variable = frozenset().union(*(self.chars([it]) for it in items if self.variable(it)))
        separators = [self.members(it) for it in items if it[0] in _ONE_CHAR]
        if not any(not (members & variable) for members in separators):
            self.fail(
                "nests a quantifier inside a repeated group (like '(a+)+')",
                "rewrite it without the nesting ('(a+)+' is 'a+'), or end each repetition with a character "
                "the inner part cannot match (like '([a-z]+,)+')",
            )

    def check_branches(self, branches: Any) -> None:
        seen: frozenset[str] = frozenset()
        for branch in branches:
            starts = self.first(branch)
            if starts & seen:
                self.fail(
                    "repeats an alternation whose branches can start alike (like '(a|ab)+')",
                    "make the branches start with different characters, or use a character class",
                )
            seen |= starts

    def check_adjacent(self, items: Any) -> None:
        """Unbounded single-character repeats in a row must not overlap (``a+a+``, ``.*.*``)."""
        open_: frozenset[str] = frozenset()
        for op, av in items:
            if op in _REPEATS and len(av[2]) == 1 and av[2][0][0] in _ONE_CHAR:
                members = self.members(av[2][0])
                if av[1] == _c.MAXREPEAT and members & open_:
                    raise UnsafePatternError(
                        f"the regular expression '{self.pattern}' has quantifiers in a row that can match "
                        "the same characters (like 'a+a+' or '.*.*'), which is very slow on long values; "
                        "merge them into one (for example '\\d+.*' into '\\d.*')"
                    )
                open_ = open_ | members if av[1] == _c.MAXREPEAT or members & open_ else frozenset()
            elif op in _ONE_CHAR:
                members = self.members((op, av))
                open_ = open_ if members & open_ else frozenset()
            else:
                open_ = frozenset()


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns nested in one parsed item."""
    if op == _c.SUBPATTERN:
        return [av[3]]
    if op == _c.BRANCH:
        return list(av[1])
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if op == _c.ATOMIC_GROUP:
        return [av]
    if op == _c.GROUPREF_EXISTS:
        return [sub for sub in av[1:] if sub is not None]
    return []


def _flatten(items: Any) -> list[Any]:
    """The items of a sequence, with plain groups opened (``(ab)c`` → ``a b c``)."""
    flat: list[Any] = []
    for op, av in items:
        if op == _c.SUBPATTERN:
            flat += _flatten(av[3])
        else:
            flat.append((op, av))
    return flat


def check_pattern(pattern: Any) -> None:
    """Raise :class:`UnsafePatternError` (message says why) unless ``pattern`` is safe to run."""
    if not isinstance(pattern, str):
        raise UnsafePatternError(f"matches needs a regular expression as text, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePatternError(
            f"the regular expression is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
        )
    try:
        re.compile(pattern)
        parsed = _parser.parse(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise UnsafePatternError(f"'{pattern}' is not a valid regular expression: {exc}") from None
    _Checker(pattern, parsed.state).check(parsed, False)


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, after :func:`check_pattern` (cached)."""
    check_pattern(pattern)
    return re.compile(pattern)


def search(pattern: re.Pattern[str], subject: str) -> bool:
    """Whether ``pattern`` occurs in the first :data:`MAX_SUBJECT_LENGTH` characters of ``subject``."""
    return pattern.search(subject[:MAX_SUBJECT_LENGTH]) is not None
