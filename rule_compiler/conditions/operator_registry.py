"""The operator registry: one :class:`OperatorSpec` per operator of the condition language.

A spec says which column types an operator accepts, how many operands it takes, whether it needs
an event, and how it tests a value. The evaluator (:mod:`.evaluate`), the validator
(:mod:`.validate`) and the SQL translator (:mod:`.sql`, which has its own table of builders) all
read it, so adding an operator is one :func:`register` call here, one SQL builder, and their tests.

``test(value, operand)`` receives the record value and the operand already brought to the leaf's
kind (see :mod:`.values`); unless ``null_aware``, it is never called with NULL: a NULL value makes
the condition false before the test runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from rule_compiler.conditions.regex import search
from rule_compiler.conditions.values import to_raw

Arity = Literal["none", "one", "two", "list"]
#: How the leaf's kind is chosen when the column type is unknown: from the operand, or fixed.
KindRule = Literal["operand", "text", "temporal", "collection", "none"]
#: How the operand is prepared at compile time.
OperandForm = Literal["typed", "lower", "regex", "duration", "none"]
EventRead = Literal["changed", "new", "old"]
Test = Callable[[Any, Any], bool]

ALL_TYPES = frozenset({"text", "integer", "numeric", "boolean", "timestamp", "date", "json", "other"})
ORDERED = frozenset({"integer", "numeric", "timestamp", "date"})
EQUATABLE = ALL_TYPES - {"json"}
MEMBERS = EQUATABLE - {"boolean"}
TEXT = frozenset({"text"})
COLLECTIONS = frozenset({"text", "json"})
TEMPORAL = frozenset({"timestamp", "date"})


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """What one operator accepts and how it tests a value."""

    name: str
    arity: Arity
    column_types: frozenset[str]
    test: Test
    summary: str
    kind: KindRule = "operand"
    operand: OperandForm = "typed"
    null_aware: bool = False  # the test decides what NULL means (is_null, is_empty, ...)
    event: EventRead | None = None  # changed*: reads the event's change set (and new/old value)
    relative_to_now: bool = False  # the operand is a duration; the test gets ``now - duration``
    field_ref: bool = False  # the value may be ``{field_ref: other_field}``

    @property
    def event_only(self) -> bool:
        return self.event is not None


_REGISTRY: dict[str, OperatorSpec] = {}
#: Every registered operator by name (read-only view).
OPERATORS: Mapping[str, OperatorSpec] = MappingProxyType(_REGISTRY)


def register(spec: OperatorSpec) -> OperatorSpec:
    """Add an operator; a name can be registered once."""
    if spec.name in _REGISTRY:
        raise ValueError(f"operator '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def operators_for(column_type: str) -> tuple[str, ...]:
    """The operators a column type accepts, in registration order."""
    return tuple(name for name, spec in _REGISTRY.items() if column_type in spec.column_types)


_MISSING = object()


def did_change(
    field: str, record: Mapping[str, Any], old: Mapping[str, Any] | None, changed: Collection[str] | None
) -> bool:
    """Whether an event changed ``field``: it is in ``changed`` when given, else its old and new differ.

    Without ``changed`` and ``old`` (not an update event) nothing changed.
    """
    if changed is not None:
        return field in changed
    if old is None:
        return False
    try:
        return bool(old.get(field, _MISSING) != record.get(field, _MISSING))
    except (TypeError, ValueError, ArithmeticError):
        return True


def _same(item: Any, operand: Any) -> bool:
    item = to_raw(item)
    return (item.__class__ is bool) == (operand.__class__ is bool) and bool(item == operand)


def _contains(value: Any, operand: Any) -> bool:
    """Substring for text; element for a list (a JSON array); anything else contains nothing."""
    if isinstance(value, str):
        return isinstance(operand, str) and operand in value
    if isinstance(value, list | tuple):
        return any(_same(item, operand) for item in value)
    return False


# Named tests (not lambdas) where the evaluator has an inline fast path keyed on the function.
def between(value: Any, operand: Any) -> bool:
    return bool(operand[0] <= value <= operand[1])


def is_in(value: Any, operand: Any) -> bool:
    return value in operand


def is_not_in(value: Any, operand: Any) -> bool:
    return value not in operand


def starts_with(value: Any, operand: Any) -> bool:
    return bool(value.startswith(operand))


def ends_with(value: Any, operand: Any) -> bool:
    return bool(value.endswith(operand))


def is_null(value: Any, _operand: Any = None) -> bool:
    return value is None


def is_not_null(value: Any, _operand: Any = None) -> bool:
    return value is not None


def _is_empty(value: Any, _operand: Any = None) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def _always(_value: Any, _operand: Any) -> bool:
    return True


def _spec(name: str, arity: Arity, types: frozenset[str], test: Test, summary: str, **options: Any) -> None:
    register(OperatorSpec(name, arity, types, test, summary, **options))


# fmt: off
_spec("equals", "one", EQUATABLE, operator.eq, "equal to the value", field_ref=True)
_spec("not_equals", "one", EQUATABLE, operator.ne, "not equal to the value (NULL is false)", field_ref=True)
_spec("gt", "one", ORDERED, operator.gt, "greater than", field_ref=True)
_spec("gte", "one", ORDERED, operator.ge, "greater than or equal to", field_ref=True)
_spec("lt", "one", ORDERED, operator.lt, "less than", field_ref=True)
_spec("lte", "one", ORDERED, operator.le, "less than or equal to", field_ref=True)
_spec("between", "two", ORDERED, between, "within [low, high], both inclusive")
_spec("in", "list", MEMBERS, is_in, "one of the listed values")
_spec("not_in", "list", MEMBERS, is_not_in, "none of the listed values (NULL is false)")
_spec("contains", "one", COLLECTIONS, _contains, "text: has the substring; JSON array: has the element",
      kind="collection")
_spec("not_contains", "one", COLLECTIONS, lambda v, o: not _contains(v, o), "the opposite of contains",
      kind="collection")
_spec("icontains", "one", TEXT, lambda v, o: o in v.lower(), "has the substring, ignoring case",
      kind="text", operand="lower")
_spec("startswith", "one", TEXT, starts_with, "starts with the text", kind="text")
_spec("endswith", "one", TEXT, ends_with, "ends with the text", kind="text")
_spec("matches", "one", TEXT, lambda v, o: search(o, v), "the regular expression occurs in the text",
      kind="text", operand="regex")
_spec("is_null", "none", ALL_TYPES, is_null, "has no value",
      kind="none", operand="none", null_aware=True)
_spec("is_not_null", "none", ALL_TYPES, is_not_null, "has a value",
      kind="none", operand="none", null_aware=True)
_spec("is_empty", "none", COLLECTIONS, _is_empty, "NULL, '' or an empty JSON array/object",
      kind="none", operand="none", null_aware=True)
_spec("is_not_empty", "none", COLLECTIONS, lambda v, o: not _is_empty(v), "not NULL, '' or empty",
      kind="none", operand="none", null_aware=True)
_spec("contains_any", "list", COLLECTIONS, lambda v, o: any(_contains(v, item) for item in o),
      "contains at least one of the values", kind="collection")
_spec("contains_all", "list", COLLECTIONS, lambda v, o: all(_contains(v, item) for item in o),
      "contains every one of the values", kind="collection")
_spec("older_than", "one", TEMPORAL, operator.lt, "before now minus the duration",
      kind="temporal", operand="duration", relative_to_now=True)
_spec("newer_than", "one", TEMPORAL, operator.gt, "after now minus the duration",
      kind="temporal", operand="duration", relative_to_now=True)
_spec("changed", "none", ALL_TYPES, _always, "the event changed the field",
      kind="none", operand="none", null_aware=True, event="changed")
_spec("changed_to", "one", EQUATABLE, operator.eq, "the event changed the field to the value", event="new")
_spec("changed_from", "one", EQUATABLE, operator.eq, "the event changed the field from the value",
      event="old")
# fmt: on
