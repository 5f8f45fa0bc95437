"""Translate a condition tree to a SQLAlchemy Core boolean expression with the Python semantics.

``condition_to_sql(node, resolve, now=now)`` builds the WHERE clause of a scheduled/manual rule's
target query. ``resolve(field_path)`` returns the column expression of a field (the caller joins the
foreign-key paths). Every leaf is ``COALESCE(leaf, FALSE)``, so NULL behaves as in Python (see
:mod:`.evaluate`); values, the cut-offs of ``older_than``/``newer_than`` (``now`` minus the
duration) and regex patterns are bound parameters, never SQL text.
``changed``/``changed_to``/``changed_from`` need an event and raise :class:`NotTranslatableError`.

Portability: substring tests use ``strpos``/``instr`` (case-sensitive on both databases);
``icontains`` uses ``LOWER``, which folds only ASCII letters on SQLite; ``matches`` uses
``regexp_match`` (``~`` on Postgres; on SQLite call :func:`register_sqlite_functions` on each
connection) on the first 10,000 characters; temporal values are bound in UTC (SQLite compares
SQLAlchemy's ``YYYY-MM-DD HH:MM:SS`` text, Postgres sessions should run in UTC for ``date`` and
``timestamp without time zone`` columns).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from rule_compiler.conditions.evaluator import ConditionCompileError, leaf_kind, prepare_operand
from rule_compiler.conditions.operator_registry import OPERATORS
from rule_compiler.conditions.regex import MAX_SUBJECT_LENGTH
from rule_compiler.conditions.sql_functions import (
    UtcDateTime,
    json_has,
    json_is_empty,
    json_is_null,
    json_item,
    register_sqlite_functions,
    strpos,
)
from rule_compiler.conditions.values import COERCE, Kind
from rule_compiler.definitions.conditions import (
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    FieldRef,
    UnexpandedTemplateError,
    UseTemplate,
)

__all__ = ["SQL_BUILDERS", "NotTranslatableError", "condition_to_sql", "register_sqlite_functions"]

Resolve = Callable[[str], ColumnElement[Any]]
Clause = ColumnElement[Any]


# Checked in order: bool before int, datetime (handled first) before date.
_BIND_TYPES: tuple[tuple[type, Callable[[], sa.types.TypeEngine[Any]]], ...] = (
    (bool, sa.Boolean),
    (int, sa.Integer),
    (Decimal, sa.Numeric),
    (str, sa.String),
    (date, sa.Date),
)
_COLUMN_TYPES: tuple[tuple[type, str], ...] = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Numeric, "numeric"),  # Float too
    (sa.DateTime, "timestamp"),
    (sa.Date, "date"),
    (sa.JSON, "json"),
    (sa.String, "text"),  # Text, Enum too
)


class NotTranslatableError(ConditionCompileError):
    """A condition that only an event can evaluate (``changed*``) was asked for as SQL."""


class _Leaf:
    """What a SQL builder gets: the column, its catalog type, the leaf's kind and prepared operand."""

    __slots__ = ("column", "column_type", "condition", "kind", "operand")

    def __init__(
        self, column: Clause, column_type: str, condition: Condition, kind: Kind, operand: Any
    ) -> None:
        self.column = column
        self.column_type = column_type
        self.condition = condition
        self.kind = kind
        self.operand = operand

    def bind(self, value: Any) -> Clause:
        """``value`` as a bound parameter of the right type (temporal values in UTC)."""
        if isinstance(value, ColumnElement):
            return value
        if isinstance(value, datetime):
            moment = value.astimezone(UTC)
            if self.column_type == "date" and moment.time() == datetime.min.time():
                return sa.literal(moment.date(), sa.Date())
            return sa.literal(value, UtcDateTime())
        for cls, sql_type in _BIND_TYPES:
            if isinstance(value, cls):
                return sa.literal(value, sql_type())
        return sa.literal(value)

    @property
    def is_json(self) -> bool:
        return self.column_type == "json"

    def has(self, item: Any) -> Clause:
        """The value contains ``item``: a substring of text, an element of a JSON array."""
        if self.is_json:
            text, kinds = json_item(item)
            substring = sa.literal(item, sa.String()) if isinstance(item, str) else sa.null()
            return json_has(
                self.column, sa.literal(text, sa.String()), sa.literal(kinds, sa.String()), substring
            )
        return strpos(self.column, self.bind(item)) > 0

    def null(self) -> Clause:
        """SQL NULL, or JSON ``null`` in a JSON column (both are ``None`` in Python)."""
        if self.is_json:
            return sa.or_(self.column.is_(None), json_is_null(self.column))
        return self.column.is_(None)

    def empty(self) -> Clause:
        return json_is_empty(self.column) if self.is_json else self.column == sa.literal("", sa.String())


def column_type_of(column: Clause) -> str:
    """The catalog column type of a SQLAlchemy column expression (``other`` when unknown)."""
    return next((name for cls, name in _COLUMN_TYPES if isinstance(column.type, cls)), "other")


def _older(leaf: _Leaf) -> Clause:
    return leaf.column < leaf.bind(leaf.operand)


def _newer(leaf: _Leaf) -> Clause:
    return leaf.column > leaf.bind(leaf.operand)


def _endswith(leaf: _Leaf) -> Clause:
    length = len(leaf.operand)
    if length == 0:
        return leaf.column.is_not(None)
    start = sa.func.length(leaf.column) - length + 1
    return sa.func.substr(leaf.column, start) == leaf.bind(leaf.operand)


#: Operator name → builder of its SQL (before the COALESCE wrap).
SQL_BUILDERS: dict[str, Callable[[_Leaf], Clause]] = {
    "equals": lambda leaf: leaf.column == leaf.bind(leaf.operand),
    "not_equals": lambda leaf: leaf.column != leaf.bind(leaf.operand),
    "gt": lambda leaf: leaf.column > leaf.bind(leaf.operand),
    "gte": lambda leaf: leaf.column >= leaf.bind(leaf.operand),
    "lt": lambda leaf: leaf.column < leaf.bind(leaf.operand),
    "lte": lambda leaf: leaf.column <= leaf.bind(leaf.operand),
    "between": lambda leaf: leaf.column.between(leaf.bind(leaf.operand[0]), leaf.bind(leaf.operand[1])),
    "in": lambda leaf: leaf.column.in_([leaf.bind(item) for item in leaf.operand]),
    "not_in": lambda leaf: leaf.column.not_in([leaf.bind(item) for item in leaf.operand]),
    "contains": lambda leaf: leaf.has(leaf.operand),
    "not_contains": lambda leaf: sa.and_(sa.not_(leaf.null()), sa.not_(leaf.has(leaf.operand))),
    "icontains": lambda leaf: strpos(sa.func.lower(leaf.column), leaf.bind(leaf.operand)) > 0,
    "startswith": lambda leaf: sa.func.substr(leaf.column, 1, len(leaf.operand)) == leaf.bind(leaf.operand),
    "endswith": _endswith,
    "matches": lambda leaf: sa.func.substr(leaf.column, 1, MAX_SUBJECT_LENGTH).regexp_match(
        leaf.operand.pattern
    ),
    "is_null": lambda leaf: leaf.null(),
    "is_not_null": lambda leaf: sa.not_(leaf.null()),
    "is_empty": lambda leaf: sa.or_(leaf.column.is_(None), leaf.empty()),
    "is_not_empty": lambda leaf: sa.and_(leaf.column.is_not(None), sa.not_(leaf.empty())),
    "contains_any": lambda leaf: sa.or_(*(leaf.has(item) for item in leaf.operand)),
    "contains_all": lambda leaf: sa.and_(*(leaf.has(item) for item in leaf.operand)),
    "older_than": _older,
    "newer_than": _newer,
}


def condition_to_sql(
    node: ConditionNode | None,
    resolve: Resolve,
    *,
    now: datetime,
    column_types: Mapping[str, str] | None = None,
) -> ColumnElement[bool]:
    """The boolean SQL expression of ``node`` (``TRUE`` for ``None``).

    ``column_types`` (field path → catalog type) overrides the types read from the resolved columns.
    Raises :class:`NotTranslatableError` for event-only operators, :class:`ConditionCompileError`
    for operands validation should have rejected.
    """
    if node is None:
        return sa.true()
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return _translate(node, "", resolve, now, column_types or {})


def _translate(
    node: ConditionNode, path: str, resolve: Resolve, now: datetime, types: Mapping[str, str]
) -> ColumnElement[bool]:
    join = (lambda child: f"{path}.{child}") if path else (lambda child: child)
    if isinstance(node, AllGroup):
        return sa.and_(
            *(_translate(c, join(f"all[{i}]"), resolve, now, types) for i, c in enumerate(node.all))
        )
    if isinstance(node, AnyGroup):
        return sa.or_(
            *(_translate(c, join(f"any[{i}]"), resolve, now, types) for i, c in enumerate(node.any))
        )
    if isinstance(node, Condition):
        leaf = _translate_leaf(node, path, resolve, now, types)
        return sa.func.coalesce(leaf, sa.false(), type_=sa.Boolean())
    if isinstance(node, UseTemplate):
        raise UnexpandedTemplateError(node)
    return sa.not_(_translate(node.not_, join("not"), resolve, now, types))


def _translate_leaf(
    condition: Condition, path: str, resolve: Resolve, now: datetime, types: Mapping[str, str]
) -> Clause:
    spec = OPERATORS[condition.operator]
    builder = SQL_BUILDERS.get(condition.operator)
    if spec.event_only or builder is None:
        raise NotTranslatableError(
            f"{path or 'condition'}: '{condition.operator}' needs an event (the old and new values of a "
            "change), so it cannot be evaluated in SQL; evaluate it in Python with the event"
        )
    column = resolve(condition.field)
    column_type = types.get(condition.field) or column_type_of(column)
    kind = leaf_kind(spec, condition, {condition.field: column_type})
    operand: Any
    if isinstance(condition.value, FieldRef):
        operand = resolve(condition.value.field_ref)
    elif spec.relative_to_now:
        operand = now - prepare_operand(spec, kind, condition.value, path)
    elif spec.operand == "typed" and spec.arity in ("two", "list"):
        prepare_operand(spec, kind, condition.value, path)  # raises unless it is a list whose items fit
        items = condition.value if isinstance(condition.value, list) else []
        operand = [_sql_value(COERCE[kind](item), item, column_type) for item in items]
    else:
        prepared = prepare_operand(spec, kind, condition.value, path)
        operand = _sql_value(prepared, condition.value, column_type) if spec.operand == "typed" else prepared
    return builder(_Leaf(column, column_type, condition, kind, operand))


def _sql_value(prepared: Any, written: Any, column_type: str) -> Any:
    """The bound value: JSON items as written (they are serialized), everything else as prepared."""
    return written if column_type == "json" else prepared
