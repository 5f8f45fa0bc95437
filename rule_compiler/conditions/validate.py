"""Check one condition's operator and value against its column type and the rule's trigger.

:func:`validate_operand` returns ``(path_suffix, message)`` pairs; the suffix is ``"operator"`` or
``"value"``, relative to the condition's JSON path. Whether the field (and a ``field_ref`` target)
exists is checked by the caller against the catalog; here a ``field_ref`` is simply accepted for the
operators that allow one.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from rule_compiler.conditions.durations import DurationError, is_duration, parse_duration
from rule_compiler.conditions.operator_registry import OPERATORS, OperatorSpec, operators_for
from rule_compiler.conditions.regex import UnsafePatternError, check_pattern
from rule_compiler.conditions.values import BAD, ISO_DATE_RE, ISO_TEMPORAL_RE, to_temporal
from rule_compiler.definitions.conditions import Condition, FieldRef

Problem = tuple[str, str]
#: The longest list ``in`` / ``not_in`` / ``contains_any`` / ``contains_all`` accept.
MAX_LIST_LENGTH = 1000
_EXAMPLE = {
    "integer": "42",
    "numeric": "1000.50",
    "text": "'paid'",
    "boolean": "true",
    "timestamp": "'2024-05-01T09:00:00Z'",
    "date": "'2024-05-01'",
}


def validate_operand(condition: Condition, *, column_type: str | None, trigger_type: str) -> list[Problem]:
    """Problems with ``condition``'s operator and value; ``column_type`` ``None`` skips the type checks."""
    op, value = condition.operator, condition.value
    spec = OPERATORS.get(op)
    if spec is None:
        return [("operator", f"unknown operator '{op}'; use one of: {', '.join(OPERATORS)}")]
    if spec.event_only and trigger_type != "event":
        return [
            (
                "operator",
                f"'{op}' compares a field before and after a change, so it needs an event trigger "
                f"(type: event); this rule's trigger is '{trigger_type}'. To test the current value, "
                "use 'equals' (or 'is_null') instead",
            )
        ]
    if column_type is not None and column_type not in spec.column_types:
        accepted = ", ".join(operators_for(column_type)) or "none"
        return [
            (
                "operator",
                f"'{op}' does not apply to {column_type} column '{condition.field}'; "
                f"{column_type} columns accept: {accepted}",
            )
        ]
    if isinstance(value, FieldRef):
        if spec.field_ref:
            return []
        allowed = ", ".join(name for name, other in OPERATORS.items() if other.field_ref)
        return [
            ("value", f"'{op}' cannot compare with another field ({{field_ref: ...}}); only {allowed} can")
        ]
    message = _check_value(spec, value, column_type, condition.field)
    return [("value", message)] if message else []


def _check_value(spec: OperatorSpec, value: Any, column_type: str | None, name: str) -> str | None:
    return _BY_ARITY[spec.arity](spec, value, column_type, name)


def _check_none(spec: OperatorSpec, value: Any, column_type: str | None, name: str) -> str | None:
    return None if value is None else f"'{spec.name}' takes no value; remove 'value: {_show(value)}'"


def _check_one(spec: OperatorSpec, value: Any, column_type: str | None, name: str) -> str | None:
    if value is None:
        return f"'{spec.name}' needs a value, for example {_example(spec, column_type)}"
    if isinstance(value, list):
        hint = " (use 'in' to test against a list)" if spec.name in ("equals", "not_equals") else ""
        return f"'{spec.name}' compares with one value, not a list{hint}; got {_show(value)}"
    return _check_scalar(spec, value, column_type, name)


def _check_two(spec: OperatorSpec, value: Any, column_type: str | None, name: str) -> str | None:
    if not isinstance(value, list) or len(value) != 2:
        return (
            f"'{spec.name}' needs exactly two values, low and high, as a list such as [10, 100]; "
            f"got {_show(value)}"
        )
    problem = next(filter(None, (_check_scalar(spec, item, column_type, name) for item in value)), None)
    return problem or _check_order(spec.name, value)


def _check_list(spec: OperatorSpec, value: Any, column_type: str | None, name: str) -> str | None:
    if not isinstance(value, list):
        return f"'{spec.name}' needs a list of values, such as [paid, shipped]; got {_show(value)}"
    if not value:
        return f"'{spec.name}' needs at least one value; the list is empty"
    if len(value) > MAX_LIST_LENGTH:
        return f"'{spec.name}' takes at most {MAX_LIST_LENGTH} values; the list has {len(value)}"
    for index, item in enumerate(value):
        problem = _check_scalar(spec, item, column_type, name)
        if problem:
            return f"item {index + 1} of the list: {problem}"
    return None


_BY_ARITY = {"none": _check_none, "one": _check_one, "two": _check_two, "list": _check_list}


def _check_scalar(spec: OperatorSpec, value: Any, column_type: str | None, name: str) -> str | None:
    if spec.operand in ("duration", "regex"):
        return _check_special(spec, value)
    if spec.operand == "lower" or spec.kind == "text":
        return None if isinstance(value, str) else f"'{spec.name}' needs text, got {_show(value)}; quote it"
    if column_type is None or column_type not in _FITS:
        return None
    problem = _FITS[column_type](value)
    return f"{column_type} column '{name}' {problem}" if problem else None


def _check_special(spec: OperatorSpec, value: Any) -> str | None:
    try:
        if spec.operand == "duration":
            parse_duration(value)
        else:
            check_pattern(value)
    except DurationError as exc:
        return f"'{spec.name}' needs a duration: {exc}"
    except UnsafePatternError as exc:
        return str(exc)
    return None


def _fits_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"needs a number, such as 1000.50; got {_show(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"needs a finite number; got {value}"
    return None


def _fits_text(value: Any) -> str | None:
    return None if isinstance(value, str) else f"needs text; got {_show(value)}; quote it: '{value}'"


def _fits_boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"needs true or false; got {_show(value)}"


def _relative_hint(value: Any) -> str:
    return (
        "; to compare with a time relative to now, use older_than or newer_than" if is_duration(value) else ""
    )


def _fits_timestamp(value: Any) -> str | None:
    if isinstance(value, str) and ISO_TEMPORAL_RE.match(value) and to_temporal(value) is not BAD:
        return None
    return (
        "needs an ISO 8601 date-time such as '2024-05-01T09:00:00Z' (or a date such as '2024-05-01'); "
        f"got {_show(value)}{_relative_hint(value)}"
    )


def _fits_date(value: Any) -> str | None:
    if isinstance(value, str) and ISO_DATE_RE.match(value) and _is_date(value):
        return None
    return f"needs an ISO 8601 date such as '2024-05-01'; got {_show(value)}{_relative_hint(value)}"


_FITS = {
    "integer": _fits_number,
    "numeric": _fits_number,
    "text": _fits_text,
    "boolean": _fits_boolean,
    "timestamp": _fits_timestamp,
    "date": _fits_date,
}


def _check_order(op: str, value: list[Any]) -> str | None:
    low, high = value
    if isinstance(low, str) and isinstance(high, str):
        low_t, high_t = to_temporal(low), to_temporal(high)
        if low_t is not BAD and high_t is not BAD:
            low, high = low_t, high_t
    try:
        ordered = low <= high
    except TypeError:
        return f"'{op}' needs two values of the same type, low and high; got {_show(value)}"
    if not ordered:
        return f"'{op}' needs its two values in order, low first: [{_show(value[1])}, {_show(value[0])}]"
    return None


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _example(spec: OperatorSpec, column_type: str | None) -> str:
    if spec.operand == "duration":
        return "'3d'"
    if spec.operand == "regex":
        return "'^INV-[0-9]+$'"
    return _EXAMPLE.get(column_type or "text", "'paid'")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value[:80]}'"
    if value is None:
        return "nothing"
    return f"{value!r}"[:80]
