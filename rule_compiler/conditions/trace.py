"""The "why did it (not) match" trace of :meth:`CompiledCondition.explain` (format: :mod:`.evaluate`),
and its text form (:func:`format_trace`, the tree ``rule-compiler test-rule`` prints and task logs show).

Verdicts come from the very closures ``matches`` runs; this module only adds the actual values and
a reason per condition, and marks the members a group never evaluated because an earlier one
decided it.

Without values (``explain(..., values=False)``) the trace holds no value of the record: ``actual``
is null, a ``field_ref``'s value is left out, and a reason says only what the value's absence,
NULL-ness, type or change alone decided (``'priority' is NULL, and a comparison with NULL is
false``), or the cutoff of a relative date; a plain comparison's reason is empty (the condition and
its verdict say it all). Task logs use it unless the deployment opts in to values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from rule_compiler.conditions.compiled_nodes import Group, Leaf
from rule_compiler.conditions.operator_registry import did_change
from rule_compiler.conditions.values import BAD, COERCE, KIND_NOUN, json_safe, to_temporal
from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR
from rule_compiler.definitions.conditions import FieldRef

Record = Mapping[str, Any]
_NOT_EVALUATED = "not evaluated: an earlier member already decided the group"


class Inputs(NamedTuple):
    """What a condition is evaluated against."""

    record: Record
    old: Record | None
    changed: Collection[str] | None
    now: datetime


def explain_node(node: Leaf | Group, inputs: Inputs, *, values: bool = True) -> dict[str, Any]:
    """The trace of ``node`` (evaluated, with short-circuit marks); ``values=False`` leaves the
    record's values out (module docstring)."""
    if isinstance(node, Leaf):
        result = bool(node.fn(*inputs))
        actual, reason = _describe(node, inputs, result, values)
        if not values:
            return _leaf_entry(node, result, None, reason)
        return _leaf_entry(node, result, actual, reason, inputs.record)
    entries: list[dict[str, Any]] = []
    if node.kind == "not":
        entries.append(explain_node(node.children[0], inputs, values=values))
        result = not entries[0]["result"]
    else:
        decisive = node.kind == "any"  # any stops at the first true member, all at the first false
        result = not decisive
        for child in node.children:
            if result == decisive:
                entries.append(_skipped(child))
                continue
            entry = explain_node(child, inputs, values=values)
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


def _describe(leaf: Leaf, inputs: Inputs, result: bool, values: bool) -> tuple[Any, str]:
    """The value the leaf looked at, and why it gave ``result`` (the reason without the record's
    values when ``values`` is false)."""
    spec, name = leaf.spec, leaf.condition.field
    record, old, changed, _ = inputs
    if spec.event is None:
        return _describe_value(leaf, record, inputs, result, values)
    if changed is None and old is None:
        return record.get(name), "no change information (not an update event), so nothing changed"
    if not did_change(name, record, old, changed):
        return record.get(name), f"'{name}' did not change"
    if spec.event == "changed":
        return record.get(name), f"'{name}' changed"
    if spec.event == "old" and old is None:
        return None, "no previous values were given, so the old value is unknown"
    source = old if spec.event == "old" and old is not None else record
    actual, reason = _describe_value(leaf, source, inputs, result, values)
    if not reason:  # without values: the change is all there is to say
        return actual, f"'{name}' changed"
    return actual, f"'{name}' changed; {'new' if spec.event == 'new' else 'old'} value: {reason}"


def _describe_value(
    leaf: Leaf, source: Record, inputs: Inputs, result: bool, values: bool
) -> tuple[Any, str]:
    spec, name = leaf.spec, leaf.condition.field
    if name not in source:
        return None, _missing(name)
    value = source[name]
    if spec.null_aware:
        shown = "NULL" if value is None else _short(value) if values else "not NULL"
        return value, f"'{name}' is {shown}: {spec.name} is {_verdict(result)}"
    if value is None:
        return None, f"'{name}' is NULL, and a comparison with NULL is false"
    if spec.relative_to_now:
        return value, _describe_relative(leaf, value, inputs.now, result, values)
    return value, _describe_comparison(leaf, value, inputs.record, result, values)


def _describe_comparison(leaf: Leaf, value: Any, record: Record, result: bool, values: bool) -> str:
    spec, name = leaf.spec, leaf.condition.field
    coerced = COERCE[leaf.kind](value)
    if coerced is BAD:
        held = f"{_short(value)} ({type(value).__name__})" if values else f"a {type(value).__name__} value"
        return (
            f"'{name}' holds {held}, which cannot be compared as {KIND_NOUN[leaf.kind]}, so the "
            "condition is false"
        )
    operand, expected, problem = _operand(leaf, record, values)
    if problem:
        return problem
    try:
        spec.test(coerced, operand)
    except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        if not values:  # the exception's text may quote the value
            return f"cannot compare '{name}' with {expected} ({type(exc).__name__}); the condition is false"
        return f"cannot compare {_short(value)} with {expected}: {exc}; the condition is false"
    if not values:  # the field, operator and operand are the condition's own: nothing to add
        return ""
    return f"'{name}' is {_short(value)}: {spec.name} {expected} is {_verdict(result)}"


def _operand(leaf: Leaf, record: Record, values: bool = True) -> tuple[Any, str, str | None]:
    """The operand, how to show it, and why it cannot be used (a ``field_ref`` without a value)."""
    if leaf.ref is None:
        return leaf.operand, _short(leaf.condition.value), None
    if record.get(leaf.ref) is None:
        why = _missing(leaf.ref) if leaf.ref not in record else f"'{leaf.ref}' is NULL"
        return None, "", f"the referenced field has no value ({why}), and a comparison with NULL is false"
    operand = COERCE[leaf.kind](record[leaf.ref])
    if operand is BAD:
        return None, "", f"the referenced field '{leaf.ref}' cannot be compared as {KIND_NOUN[leaf.kind]}"
    if not values:
        return operand, f"'{leaf.ref}'", None
    return operand, f"'{leaf.ref}' ({_short(record[leaf.ref])})", None


def _describe_relative(leaf: Leaf, value: Any, now: datetime, result: bool, values: bool) -> str:
    name = leaf.condition.field
    moment = to_temporal(value)
    if moment is BAD:
        held = _short(value) if values else f"a {type(value).__name__} value"
        return f"'{name}' holds {held}, which is not a date or date-time, so the condition is false"
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    seen = f"'{name}' is {moment.isoformat()}" if values else f"'{name}'"
    try:
        cutoff = now - leaf.operand
    except OverflowError:
        return f"{seen}, but now minus {leaf.condition.value} is out of range"
    side = "before" if leaf.spec.name == "older_than" else "after"
    return (
        f"{seen}{':' if values else ''} {leaf.spec.name} {leaf.condition.value} means {side} "
        f"{cutoff.isoformat()} (now {now.isoformat()}), which is {_verdict(result)}"
    )


# -- text -------------------------------------------------------------------------------------------

_MARKS = {True: "✓", False: "✗", None: "-"}


def format_trace(node: Mapping[str, Any], depth: int = 1, *, values: bool = True) -> list[str]:
    """``node`` (a trace's ``node``) as indented lines: ``✓``/``✗``/``-`` per condition, with its
    operator, the rule's operand, the value seen and the reason. ``values=False`` leaves out what
    the record holds (the ``[seen: ...]`` part and a ``field_ref``'s value); give it a trace from
    ``explain(..., values=False)``, whose reasons hold no values either."""
    pad = "  " * depth
    mark = _MARKS[node["result"]]
    if node["kind"] != "condition":
        label = f"{node['kind']}" + (" (skipped)" if node["skipped"] else "")
        lines = [f"{pad}{mark} {label}"]
        for child in node["children"]:
            lines += format_trace(child, depth + 1, values=values)
        return lines
    expected = node["expected"]
    shown = "" if expected is None else f" {_show(expected, values)}"
    head = f"{pad}{mark} {node['field']} {node['operator']}{shown}"
    if node["skipped"]:
        return [f"{head}  (skipped: an earlier member already decided the group)"]
    if not values:
        return [f"{head}  {node['reason']}" if node["reason"] else head]
    return [f"{head}  [seen: {_show(node['actual'], values)}]  {node['reason']}"]


def _show(value: Any, values: bool = True) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dict) and "field_ref" in value:
        inner = f" = {_show(value['value'])}" if values and "value" in value else ""
        return f"field {value['field_ref']}{inner}"
    return repr(value)
