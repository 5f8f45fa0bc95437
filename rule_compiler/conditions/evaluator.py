"""Evaluate conditions in Python: compile a condition tree once into nested closures, then run it per record.

Usage::

    compiled = compile_condition(rule.conditions, column_types={"total": "numeric", ...})
    compiled.fields                      # every field path it reads: SELECT these
    compiled.matches(record, old=old, changed={"status"}, now=now)    # bool, fast
    compiled.explain(record, old=old, changed={"status"}, now=now)    # the trace below

Records are flat mappings keyed by field path (``total``, ``customer__tier``); a key missing from
the record is NULL. ``now`` is always given by the caller (naive means UTC); nothing reads the clock.
``column_types`` (field path → catalog column type) makes comparisons exact for the column (ISO
text in a timestamp column is parsed, a text column never is); without it the kind of each
comparison is inferred from the operand (see :mod:`.values`).

NULL semantics are SQL's (docs/definitions.md, "Conditions"): a condition whose value (or
``field_ref`` value) is NULL is false, except ``is_null``, ``is_not_null``, ``is_empty``,
``is_not_empty`` and ``changed``; groups combine plain booleans, so ``not`` of a comparison with
NULL is true. A value of the wrong type (text compared with a number, an unparsable date) makes the
condition false; nothing raises at run time. Events: ``changed`` is true when the field is in
``changed``, or, when ``changed`` is not given, when ``old`` and the record differ on it; without
both it is false (not an update).

Trace (``explain``), JSON-serializable::

    {"matched": bool, "node": NODE}          # "node" is null when there are no conditions
    NODE = {"kind": "all" | "any" | "not" | "condition",
            "path": "all[2].any[0]",         # relative to the conditions; "" for the root
            "result": true | false | null,   # null when skipped
            "skipped": bool,                 # not evaluated: an earlier member decided its group
            "children": [NODE, ...],         # [] for conditions
            # conditions only:
            "field": "total", "operator": "gte",
            "expected": 1000,                # as written; for a field_ref
                                             # {"field_ref": "x", "value": <its value>}
            "actual": 1200,                  # the record's value (null when missing or skipped)
            "reason": "'total' is 1200: gte 1000 is true"}

``explain(..., values=False)`` gives the same tree without the record's values (``actual`` null, no
``field_ref`` value, value-free reasons: :mod:`.trace`): what task logs show by default.

Dates, decimals and durations appear as strings; text longer than 500 characters is cut.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal

from rule_compiler.conditions import closures
from rule_compiler.conditions.closures import LeafFn, Record
from rule_compiler.conditions.compiled_nodes import Group, Leaf
from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.conditions.operator_registry import OPERATORS, OperatorSpec
from rule_compiler.conditions.regex import UnsafePatternError, compile_pattern
from rule_compiler.conditions.trace import Inputs, explain_node
from rule_compiler.conditions.values import (
    BAD,
    COERCE,
    FAST_CLASSES,
    KIND_OF_COLUMN_TYPE,
    Kind,
    infer_kind,
)
from rule_compiler.definitions.conditions import (
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    FieldRef,
    UnexpandedTemplateError,
    UseTemplate,
)
from rule_compiler.errors import CompileError


class ConditionCompileError(CompileError):
    """A condition that validation should have rejected (bad regex, duration, operand type)."""


def _always_true(record: Record, old: Record | None, changed: Collection[str] | None, now: datetime) -> bool:
    return True


class CompiledCondition:
    """A condition compiled once; ``matches`` and ``explain`` run it against records.

    ``matches(record, *, old=None, changed=None, now) -> bool`` is the fast path (no trace); it is a
    closure stored on the instance, so calling it costs one call less than a method would.
    """

    __slots__ = ("_root", "fields", "matches")

    def __init__(self, root: Leaf | Group | None, fields: frozenset[str]) -> None:
        self._root = root
        self.fields = fields
        self.matches: closures.Matcher
        if isinstance(root, Group) and root.kind != "not":
            self.matches = closures.entry_group(
                [child.fn for child in root.children], every=root.kind == "all"
            )
        else:
            self.matches = closures.entry(root.fn if root is not None else _always_true)

    def explain(
        self,
        record: Record,
        *,
        old: Record | None = None,
        changed: Collection[str] | None = None,
        now: datetime,
        values: bool = True,
    ) -> dict[str, Any]:
        """The same verdict as :meth:`matches`, with a JSON-serializable trace (module docstring);
        ``values=False`` keeps the record's values out of it (:mod:`.trace`)."""
        if self._root is None:
            return {"matched": True, "node": None}
        node = explain_node(self._root, Inputs(record, old, changed, now), values=values)
        return {"matched": bool(node["result"]), "node": node}

    def __repr__(self) -> str:
        return f"CompiledCondition(fields={sorted(self.fields)!r})"


def compile_condition(
    node: ConditionNode | None, *, column_types: Mapping[str, str] | None = None
) -> CompiledCondition:
    """Compile ``node`` (``None`` = always true). Raises :class:`ConditionCompileError` on bad operands."""
    if node is None:
        return CompiledCondition(None, frozenset())
    fields: set[str] = set()
    root = _compile(node, "", column_types or {}, fields)
    return CompiledCondition(root, frozenset(fields))


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _compile(node: ConditionNode, path: str, types: Mapping[str, str], fields: set[str]) -> Leaf | Group:
    if isinstance(node, Condition):
        return _compile_leaf(node, path, types, fields)
    if isinstance(node, AllGroup | AnyGroup):
        kind: Literal["all", "any"] = "all" if isinstance(node, AllGroup) else "any"
        members = node.all if isinstance(node, AllGroup) else node.any
        children = [
            _compile(child, _join(path, f"{kind}[{i}]"), types, fields) for i, child in enumerate(members)
        ]
        fns = [child.fn for child in children]
        return Group(kind, path, children, closures.all_of(fns) if kind == "all" else closures.any_of(fns))
    if isinstance(node, UseTemplate):
        raise UnexpandedTemplateError(node)
    child = _compile(node.not_, _join(path, "not"), types, fields)
    return Group("not", path, [child], _negation(child))


def _negation(child: Leaf | Group) -> LeafFn:
    """``not child``; a plain comparison is negated inside its own closure (one call less)."""
    if isinstance(child, Leaf) and child.ref is None and _is_plain(child.spec):
        name = child.condition.field
        coerce, fast = COERCE[child.kind], FAST_CLASSES[child.kind]
        return closures.value_leaf(name, coerce, fast, child.spec.test, child.operand, negate=True)
    return closures.none_of(child.fn)


def _is_plain(spec: OperatorSpec) -> bool:
    return spec.event is None and not spec.null_aware and not spec.relative_to_now


def leaf_kind(spec: OperatorSpec, condition: Condition, types: Mapping[str, str]) -> Kind:
    """The kind a leaf compares in: the column's, else fixed by the operator, else the operand's."""
    column_type = types.get(condition.field)
    if column_type is not None:
        return KIND_OF_COLUMN_TYPE.get(column_type, "raw")
    if spec.kind in ("text", "temporal"):
        return "text" if spec.kind == "text" else "temporal"
    if spec.kind != "operand" or isinstance(condition.value, FieldRef):
        return "raw"
    return infer_kind(condition.value)


def prepare_operand(spec: OperatorSpec, kind: Kind, value: Any, path: str) -> Any:
    """The operand as the test wants it: coerced to ``kind``, a compiled regex, a timedelta..."""
    where = f"{path or 'condition'} ({spec.name})"
    try:
        if spec.operand == "none":
            return None
        if spec.operand == "duration":
            return parse_duration(value)
        if spec.operand == "regex":
            if not isinstance(value, str):
                raise ConditionCompileError(f"{where}: needs a regular expression as text, got {value!r}")
            return compile_pattern(value)
        if spec.operand == "lower":
            if not isinstance(value, str):
                raise ConditionCompileError(f"{where}: needs text, got {value!r}")
            return value.lower()
    except (DurationError, UnsafePatternError) as exc:
        raise ConditionCompileError(f"{where}: {exc}") from None
    coerce = COERCE[kind]
    if spec.arity in ("two", "list"):
        if not isinstance(value, list) or not value or (spec.arity == "two" and len(value) != 2):
            raise ConditionCompileError(f"{where}: needs {'two values' if spec.arity == 'two' else 'a list'}")
        items = tuple(coerce(item) for item in value)
        if any(item is BAD for item in items):
            raise ConditionCompileError(f"{where}: {value!r} does not fit a {kind} comparison")
        return frozenset(items) if spec.name in ("in", "not_in") else items
    prepared = coerce(value)
    if value is None or isinstance(value, list) or prepared is BAD:
        raise ConditionCompileError(f"{where}: {value!r} does not fit a {kind} comparison")
    return prepared


def _compile_leaf(condition: Condition, path: str, types: Mapping[str, str], fields: set[str]) -> Leaf:
    spec = OPERATORS.get(condition.operator)
    if spec is None:
        raise ConditionCompileError(f"{path or 'condition'}: unknown operator '{condition.operator}'")
    fields.add(condition.field)
    kind = leaf_kind(spec, condition, types)
    ref = condition.value.field_ref if isinstance(condition.value, FieldRef) else None
    if ref is not None:
        if not spec.field_ref:
            raise ConditionCompileError(f"{path or 'condition'}: '{spec.name}' cannot take a field_ref")
        fields.add(ref)
        operand = None
        fn = closures.ref_leaf(condition.field, ref, COERCE[kind], spec.test)
    else:
        operand = prepare_operand(spec, kind, condition.value, path)
        fn = _leaf_fn(spec, condition.field, kind, operand)
    return Leaf(path, condition, spec, kind, operand, ref, fn)


def _leaf_fn(spec: OperatorSpec, name: str, kind: Kind, operand: Any) -> LeafFn:
    if spec.event == "changed":
        return closures.changed_leaf(name)
    if spec.null_aware:
        return closures.null_aware_leaf(name, spec.test)
    if spec.relative_to_now:
        return closures.relative_leaf(name, spec.test, operand)
    base = closures.value_leaf(name, COERCE[kind], FAST_CLASSES[kind], spec.test, operand)
    if spec.event == "new":
        return closures.changed_to_leaf(name, base)
    if spec.event == "old":
        return closures.changed_from_leaf(name, base)
    return base
