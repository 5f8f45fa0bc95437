"""The closures a compiled condition runs: one per leaf and group, built once, called per record.

Every closure has the positional signature ``(record, old, changed, now) -> bool``; the root is
wrapped once more (:func:`entry`) into the keyword signature of ``CompiledCondition.matches``.
The six plain comparisons are written out inline (``v >= operand`` rather than ``operator.ge(v,
operand)``): that halves their cost, and the evaluator must stay within a small factor of
hand-written lambdas. Everything a comparison of ill-matched values can raise is caught: the
condition is then false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from rule_compiler.conditions.operator_registry import (
    between,
    did_change,
    ends_with,
    is_in,
    is_not_in,
    is_not_null,
    is_null,
    starts_with,
)
from rule_compiler.conditions.values import BAD, FAST_CLASSES, to_temporal

Record = Mapping[str, Any]
LeafFn = Callable[[Record, Record | None, Collection[str] | None, datetime], bool]
Test = Callable[[Any, Any], bool]
#: What a comparison of ill-matched values may raise; it is caught and the condition is false.
RUNTIME_ERRORS = (TypeError, ValueError, ArithmeticError, AttributeError)
TEXT_CLASSES = FAST_CLASSES["text"]


class Matcher(Protocol):
    """The signature of ``CompiledCondition.matches``."""

    def __call__(
        self,
        record: Record,
        *,
        old: Record | None = None,
        changed: Collection[str] | None = None,
        now: datetime,
    ) -> bool: ...


def entry(fn: LeafFn) -> Matcher:
    """``fn`` with the keyword signature of ``matches``."""

    def matches(
        record: Record, *, old: Record | None = None, changed: Collection[str] | None = None, now: datetime
    ) -> bool:
        return fn(record, old, changed, now)

    return matches


def entry_group(fns: list[LeafFn], *, every: bool) -> Matcher:
    """A root ``all`` (``every``) or ``any`` group with the keyword signature, one call less."""
    members = tuple(fns)
    if every:

        def matches_all(
            record: Record,
            *,
            old: Record | None = None,
            changed: Collection[str] | None = None,
            now: datetime,
        ) -> bool:
            for fn in members:  # noqa: SIM110 - a loop is faster than all() over a generator
                if not fn(record, old, changed, now):
                    return False
            return True

        return matches_all

    def matches_any(
        record: Record, *, old: Record | None = None, changed: Collection[str] | None = None, now: datetime
    ) -> bool:
        for fn in members:  # noqa: SIM110
            if fn(record, old, changed, now):
                return True
        return False

    return matches_any


def all_of(fns: list[LeafFn]) -> LeafFn:
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return lambda r, o, c, n: a(r, o, c, n) and b(r, o, c, n)
    if len(fns) == 3:
        a, b, d = fns
        return lambda r, o, c, n: a(r, o, c, n) and b(r, o, c, n) and d(r, o, c, n)
    members = tuple(fns)

    def every(r: Record, o: Record | None, c: Collection[str] | None, n: datetime) -> bool:
        for fn in members:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not fn(r, o, c, n):
                return False
        return True

    return every


def any_of(fns: list[LeafFn]) -> LeafFn:
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return lambda r, o, c, n: a(r, o, c, n) or b(r, o, c, n)
    if len(fns) == 3:
        a, b, d = fns
        return lambda r, o, c, n: a(r, o, c, n) or b(r, o, c, n) or d(r, o, c, n)
    members = tuple(fns)

    def some(r: Record, o: Record | None, c: Collection[str] | None, n: datetime) -> bool:
        for fn in members:  # noqa: SIM110
            if fn(r, o, c, n):
                return True
        return False

    return some


def none_of(fn: LeafFn) -> LeafFn:
    return lambda r, o, c, n: not fn(r, o, c, n)


def value_leaf(
    name: str,
    coerce: Callable[[Any], Any],
    fast: frozenset[type],
    test: Test,
    operand: Any,
    *,
    negate: bool = False,
) -> LeafFn:
    """Reads ``name``; NULL is false; coerces unless its class is in ``fast``; applies ``test``.

    ``negate`` builds ``not leaf`` in one closure (a ``not`` over a comparison is common).
    """
    inline = _INLINE.get(test)
    if inline is not None:
        return inline(name, coerce, fast, operand, negate)

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return False
        try:
            return test(value, operand)
        except RUNTIME_ERRORS:
            return False

    return none_of(leaf) if negate else leaf


# The inline comparisons: value_leaf's body with the operator spelled out. ``hit`` is the result
# when the comparison holds and ``miss`` when the value is NULL, of the wrong type or incomparable;
# they are True/False, swapped for a negated leaf.
_Inline = Callable[[str, Callable[[Any], Any], frozenset[type], Any, bool], LeafFn]


def _eq(name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool) -> LeafFn:
    if fast == TEXT_CLASSES and operand.__class__ is str:
        # Text: NULL, other types and other strings are all simply unequal; str == x never raises.
        if negate:
            return lambda r, o, c, n: r.get(name) != operand
        return lambda r, o, c, n: r.get(name) == operand
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return (value == operand) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _ne(name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool) -> LeafFn:
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return (value != operand) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _gt(name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool) -> LeafFn:
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return (value > operand) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _ge(name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool) -> LeafFn:
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return (value >= operand) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _lt(name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool) -> LeafFn:
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return (value < operand) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _le(name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool) -> LeafFn:
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return (value <= operand) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _between(
    name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool
) -> LeafFn:
    low, high = operand
    hit, miss = not negate, negate

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value = record.get(name)
        if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
            return miss
        try:
            return bool(low <= value <= high) is hit
        except RUNTIME_ERRORS:
            return miss

    return leaf


def _membership(member: bool) -> _Inline:
    """``in`` (``member``) and ``not_in``: membership in the operand list."""

    def build(
        name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool
    ) -> LeafFn:
        hit, miss = (member is not negate), negate

        def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
            value = record.get(name)
            if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
                return miss
            try:
                return (value in operand) is hit
            except RUNTIME_ERRORS:
                return miss

        return leaf

    return build


def _affix(prefix: bool) -> _Inline:
    """``startswith`` (``prefix``) and ``endswith`` on text."""

    def build(
        name: str, coerce: Callable[[Any], Any], fast: frozenset[type], operand: Any, negate: bool
    ) -> LeafFn:
        hit, miss = not negate, negate

        def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
            value: Any = record.get(name)
            if value.__class__ not in fast and (value is None or (value := coerce(value)) is BAD):
                return miss
            try:
                subject: Any = value
                found = subject.startswith(operand) if prefix else subject.endswith(operand)
            except RUNTIME_ERRORS:
                return miss
            return found is hit

        return leaf

    return build


_INLINE: dict[Test, _Inline] = {
    operator.eq: _eq,
    operator.ne: _ne,
    operator.gt: _gt,
    operator.ge: _ge,
    operator.lt: _lt,
    operator.le: _le,
    between: _between,
    is_in: _membership(member=True),
    is_not_in: _membership(member=False),
    starts_with: _affix(prefix=True),
    ends_with: _affix(prefix=False),
}


def relative_leaf(name: str, test: Test, delta: timedelta) -> LeafFn:
    """``test(value, now - delta)`` on the value as a date-time (older_than, newer_than).

    The cut-off is computed once per ``now`` (one run evaluates many rows at the same moment); the
    cached pair is replaced whole, so concurrent callers with other ``now`` values never mix them.
    """
    cache: list[tuple[datetime | None, datetime | None]] = [(None, None)]

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        state = cache[0]
        if state[0] is not now:
            state = (now, (now if now.tzinfo is not None else now.replace(tzinfo=UTC)) - delta)
            cache[0] = state
        value = record.get(name)
        if value.__class__ is not datetime or value.tzinfo is None:
            value = to_temporal(value)
            if value is BAD:
                return False
        try:
            return test(value, state[1])
        except RUNTIME_ERRORS:
            return False

    return leaf


def ref_leaf(name: str, ref: str, coerce: Callable[[Any], Any], test: Test) -> LeafFn:
    """``test(value, value of ref)``: both coerced to the leaf's kind; either NULL is false."""

    def leaf(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
        value, other = record.get(name), record.get(ref)
        if value is None or other is None:
            return False
        value, other = coerce(value), coerce(other)
        if value is BAD or other is BAD:
            return False
        try:
            return test(value, other)
        except RUNTIME_ERRORS:
            return False

    return leaf


def null_aware_leaf(name: str, test: Test) -> LeafFn:
    if test is is_null:
        return lambda r, o, c, n: r.get(name) is None
    if test is is_not_null:
        return lambda r, o, c, n: r.get(name) is not None
    return lambda r, o, c, n: test(r.get(name), None)


def changed_leaf(name: str) -> LeafFn:
    return lambda r, o, c, n: did_change(name, r, o, c)


def changed_to_leaf(name: str, base: LeafFn) -> LeafFn:
    return lambda r, o, c, n: did_change(name, r, o, c) and base(r, o, c, n)


def changed_from_leaf(name: str, base: LeafFn) -> LeafFn:
    return lambda r, o, c, n: o is not None and did_change(name, r, o, c) and base(o, o, c, n)
