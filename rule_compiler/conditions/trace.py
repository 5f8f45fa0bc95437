"""The "why did it (not) match" trace of :meth:`CompiledCondition.explain` (format: :mod:`.evaluate`).

Verdicts come from the very closures ``matches`` runs; this module only adds the actual values and
a reason per condition, and marks the members a group never evaluated because an earlier one
decided it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from rule_compiler.conditions.operators import did_change
from rule_compiler.conditions.values import BAD, COERCE, KIND_NOUN, json_safe, to_temporal
from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR
from rule_compiler.definitions.conditions import FieldRef

if TYPE_CHECKING:
    from rule_compiler.conditions.evaluate import Group, Leaf

Record = Mapping[str, Any]
_NOT_EVALUATED = "not evaluated: an earlier member already decided the group"


class Inputs(NamedTuple):
    """What a condition is evaluated against."""

    record: Record
    old: Record | None
    changed: Collection[str] | None
    now: datetime


def explain_node(node: Leaf | Group, inputs: Inputs) -> dict[str, Any]:
    """The trace of ``node`` (evaluated, with short-circuit marks)."""
    from rule_compiler.conditions.evaluate import Leaf

    if isinstance(node, Leaf):
        result = bool(node.fn(*inputs))
        actual, reason = _describe(node, inputs, result)
        return _leaf_entry(node, result, actual, reason, inputs.record)
    entries: list[dict[str, Any]] = []
    if node.kind == "not":
        entries.append(explain_node(node.children[0], inputs))
        result = not entries[0]["result"]
    else:
        decisive = node.kind == "any"  # any stops at the first true member, all at the first false
        result = not decisive
        for child in node.children:
            if result == decisive:
                entries.append(_skipped(child))
                continue
            entry = explain_node(child, inputs)
            entries.append(entry)
            if entry["result"] == decisive:
                result = decisive
    return {"kind": node.kind, "path": node.path, "result": result, "skipped": False, "children": entries}


def _leaf_entry(
    leaf: Leaf, result: bool | None, actual: Any, reason: str, record: Record | None = None
) -> dict[str, Any]:
    condition = leaf.condition
    expected: Any
    if isinstance(condition.value, FieldRef):
        expected = {"field_ref": condition.value.field_ref}
        if record is not None:
            expected["value"] = json_safe(record.get(condition.value.field_ref))
    else:
        expected = json_safe(condition.value)
    return {
        "kind": "condition",
        "path": leaf.path,
        "result": result,
        "skipped": result is None,
        "children": [],
        "field": condition.field,
        "operator": condition.operator,
        "expected": expected,
        "actual": json_safe(actual),
        "reason": reason,
    }


def _skipped(node: Leaf | Group) -> dict[str, Any]:
    from rule_compiler.conditions.evaluate import Leaf

    if isinstance(node, Leaf):
        return _leaf_entry(node, None, None, _NOT_EVALUATED)
    children = [_skipped(child) for child in node.children]
    return {"kind": node.kind, "path": node.path, "result": None, "skipped": True, "children": children}


def _short(value: Any) -> str:
    return repr(json_safe(value, limit=80))


def _missing(name: str) -> str:
    if FIELD_PATH_SEPARATOR in name:
        return f"no value: the record has no '{name}' (no related row, or the field was not selected); NULL"
    return f"no value: the record has no '{name}'; NULL"


def _verdict(result: bool) -> str:
    return "true" if result else "false"


def _describe(leaf: Leaf, inputs: Inputs, result: bool) -> tuple[Any, str]:
    """The value the leaf looked at, and why it gave ``result``."""
    spec, name = leaf.spec, leaf.condition.field
    record, old, changed, _ = inputs
    if spec.event is None:
        return _describe_value(leaf, record, inputs, result)
    if changed is None and old is None:
        return record.get(name), "no change information (not an update event), so nothing changed"
    if not did_change(name, record, old, changed):
        return record.get(name), f"'{name}' did not change"
    if spec.event == "changed":
        return record.get(name), f"'{name}' changed"
    if spec.event == "old" and old is None:
        return None, "no previous values were given, so the old value is unknown"
    source = old if spec.event == "old" and old is not None else record
    actual, reason = _describe_value(leaf, source, inputs, result)
    return actual, f"'{name}' changed; {'new' if spec.event == 'new' else 'old'} value: {reason}"


def _describe_value(leaf: Leaf, source: Record, inputs: Inputs, result: bool) -> tuple[Any, str]:
    spec, name = leaf.spec, leaf.condition.field
    if name not in source:
        return None, _missing(name)
    value = source[name]
    if spec.null_aware:
        shown = "NULL" if value is None else _short(value)
        return value, f"'{name}' is {shown}: {spec.name} is {_verdict(result)}"
    if value is None:
        return None, f"'{name}' is NULL, and a comparison with NULL is false"
    if spec.relative_to_now:
        return value, _describe_relative(leaf, value, inputs.now, result)
    return value, _describe_comparison(leaf, value, inputs.record, result)


def _describe_comparison(leaf: Leaf, value: Any, record: Record, result: bool) -> str:
    spec, name = leaf.spec, leaf.condition.field
    coerced = COERCE[leaf.kind](value)
    if coerced is BAD:
        return (
            f"'{name}' holds {_short(value)} ({type(value).__name__}), which cannot be compared as "
            f"{KIND_NOUN[leaf.kind]}, so the condition is false"
        )
    operand, expected, problem = _operand(leaf, record)
    if problem:
        return problem
    try:
        spec.test(coerced, operand)
    except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        return f"cannot compare {_short(value)} with {expected}: {exc}; the condition is false"
    return f"'{name}' is {_short(value)}: {spec.name} {expected} is {_verdict(result)}"


def _operand(leaf: Leaf, record: Record) -> tuple[Any, str, str | None]:
    """The operand, how to show it, and why it cannot be used (a ``field_ref`` without a value)."""
    if leaf.ref is None:
        return leaf.operand, _short(leaf.condition.value), None
    if record.get(leaf.ref) is None:
        why = _missing(leaf.ref) if leaf.ref not in record else f"'{leaf.ref}' is NULL"
        return None, "", f"the referenced field has no value ({why}), and a comparison with NULL is false"
    operand = COERCE[leaf.kind](record[leaf.ref])
    if operand is BAD:
        return None, "", f"the referenced field '{leaf.ref}' cannot be compared as {KIND_NOUN[leaf.kind]}"
    return operand, f"'{leaf.ref}' ({_short(record[leaf.ref])})", None


def _describe_relative(leaf: Leaf, value: Any, now: datetime, result: bool) -> str:
    name = leaf.condition.field
    moment = to_temporal(value)
    if moment is BAD:
        return f"'{name}' holds {_short(value)}, which is not a date or date-time, so the condition is false"
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    try:
        cutoff = now - leaf.operand
    except OverflowError:
        return f"'{name}' is {moment.isoformat()}, but now minus {leaf.condition.value} is out of range"
    side = "before" if leaf.spec.name == "older_than" else "after"
    return (
        f"'{name}' is {moment.isoformat()}: {leaf.spec.name} {leaf.condition.value} means {side} "
        f"{cutoff.isoformat()} (now {now.isoformat()}), which is {_verdict(result)}"
    )
