"""The rule tester (StackStorm's ``st2-rule-tester``): would this rule fire for this event, and why.

``rule-compiler test-rule RULE.yaml --event EVENT.json`` is a thin shell around :func:`test_rule`::

    event = load_event({"table": "orders", "operation": "updated", "new": {...}, "old": {...}})
    result = test_rule(rule, event, catalog=catalog, related=None, now=now)
    result.matched, result.triggered, result.trace      # the trace of CompiledCondition.explain
    print(format_text(result))

Steps: the event must fit the trigger (an event rule: same table, an operation it listens to and,
for ``updated`` events when ``fields`` is set, one of those fields changed; a rule with a ``target``:
the target's table, the event's ``new`` being one of its rows), then the conditions run in Python
against ``new`` (``old`` and the changed fields feed ``changed``/``changed_to``/``changed_from``).

Foreign-key paths (``customer__tier``) that ``new`` does not carry are read by ``related``, when
given (:func:`database_related` follows each hop from the event's own foreign-key values with
SQLAlchemy Core, on an engine the caller provides: this module never imports Airflow); without it
they are NULL and the result's notes say so.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from rule_compiler.catalog import Catalog, Connection, FieldResolutionError, resolve_field
from rule_compiler.clock import utcnow
from rule_compiler.compiler import field_plan
from rule_compiler.conditions import compile_condition
from rule_compiler.conditions.trace import format_trace
from rule_compiler.conditions.values import json_safe
from rule_compiler.definitions import ConditionNode, DataTrigger, Event, EventTrigger, RuleDefinition, Trigger
from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR
from rule_compiler.errors import Issue, UsageError
from rule_compiler.runtime.rows import reflect_table
from rule_compiler.runtime.run_events import changed_fields_of, event_refusal
from rule_compiler.validation.structural import issues_from_pydantic

__all__ = [
    "CONNECTION_HINT",
    "EventError",
    "RelatedReader",
    "RelatedRequest",
    "RelatedRows",
    "RuleTestError",
    "TestResult",
    "TriggerRow",
    "connection_of",
    "database_related",
    "evaluate_on_row",
    "format_text",
    "load_event",
    "read_paths",
    "test_rule",
    "trigger_row",
    "unknown_keys",
]

#: Appended to the note about foreign-key paths read as NULL because no database was given.
CONNECTION_HINT = "pass --connection to read related rows"


class RuleTestError(UsageError):
    """The rule cannot be tested with this input (a data trigger, an event without a row, a DB error)."""


class EventError(RuleTestError):
    """The event is not a valid ``Event``; ``issues`` says where (JSON paths)."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("not a valid event:\n" + "\n".join(f"  {issue}" for issue in issues))


def load_event(data: Any) -> Event:
    """Validate raw event data (``{"table", "operation", "new", "old", ...}``) into an :class:`Event`."""
    if not isinstance(data, dict):
        raise EventError(
            [
                Issue(
                    "(document)",
                    f"an event is an object with table, operation, new, old; not {type(data).__name__}",
                )
            ]
        )
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise EventError(issues_from_pydantic(exc, data)) from None


# -- related rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelatedRequest:
    """Foreign-key paths to read for one row: ``paths`` from ``table`` of ``connection_id``."""

    connection_id: str
    connection: Connection
    table: str
    record: Mapping[str, Any]
    paths: tuple[str, ...]


@dataclass
class RelatedRows:
    """The values found (path -> value) and, for the others, why they are NULL."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


RelatedReader = Callable[[RelatedRequest], RelatedRows]


def database_related(engine_for: Callable[[str], sa.Engine]) -> RelatedReader:
    """A :data:`RelatedReader` that follows each hop in the database ``engine_for(connection_id)`` names."""

    def read(request: RelatedRequest) -> RelatedRows:
        engine = engine_for(request.connection_id)
        try:
            with engine.connect() as conn:
                return _follow_paths(conn, request)
        except sa.exc.SQLAlchemyError as exc:
            raise RuleTestError(
                f"cannot read related rows through connection '{request.connection_id}': {exc}"
            ) from exc

    return read


def _follow_paths(conn: sa.Connection, request: RelatedRequest) -> RelatedRows:
    found = RelatedRows()
    tables: dict[str, sa.Table] = {}
    rows: dict[tuple[str, str, Any], dict[str, Any] | None] = {}

    def fetch(table: str, column: str, value: Any) -> dict[str, Any] | None:
        if (table, column, value) not in rows:
            if table not in tables:
                tables[table] = reflect_table(conn, table)
            live = tables[table]
            row = conn.execute(sa.select(live).where(live.c[column] == value).limit(1)).first()
            rows[(table, column, value)] = dict(row._mapping) if row is not None else None
        return rows[(table, column, value)]

    for path in request.paths:
        resolved = resolve_field(request.connection, request.table, path)
        current: Mapping[str, Any] = request.record
        where = "the event's row"
        for source_table, fk in resolved.hops:
            if fk.column not in current:
                found.notes.append(f"{path}: {where} has no '{fk.column}', so it is NULL")
                break
            value = current[fk.column]
            if value is None:
                found.notes.append(
                    f"{path}: {source_table}.{fk.column} is NULL, so there is no related "
                    f"{fk.references_table} row; NULL"
                )
                break
            related = fetch(fk.references_table, fk.references_column, value)
            if related is None:
                found.notes.append(
                    f"{path}: no {fk.references_table} row with {fk.references_column} = {value!r}; NULL"
                )
                break
            current, where = related, f"the {fk.references_table} row"
        else:
            found.values[path] = current.get(resolved.column_name)
    return found


# -- the test ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    """What :func:`test_rule` found."""

    __test__ = False  # not a pytest test class

    rule_id: str
    triggered: bool
    matched: bool
    reason: str
    trace: dict[str, Any] | None = None
    record: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    event: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"matched", "triggered", "reason", "trace", "rule", "record", "notes"}``."""
        return {
            "matched": self.matched,
            "triggered": self.triggered,
            "reason": self.reason,
            "trace": self.trace,
            "rule": self.rule_id,
            "event": json_safe(self.event),
            "record": json_safe(self.record),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class TriggerRow:
    """The row a triggered definition is tested against, and the change information of its event."""

    connection_id: str
    table: str
    record: Mapping[str, Any]
    old: Mapping[str, Any] | None = None
    changed: Collection[str] | None = None


def test_rule(
    rule: RuleDefinition,
    event: Event,
    *,
    catalog: Catalog,
    related: RelatedReader | None = None,
    now: datetime,
) -> TestResult:
    """Whether ``rule`` (valid against ``catalog``) fires for ``event``, with the condition trace."""
    rule_id = f"{rule.organization}/{rule.name}"
    summary: dict[str, Any] = {"table": event.table, "operation": event.operation}
    notes: list[str] = []
    row = _row_for(rule, event, summary, notes)
    if isinstance(row, str):  # not triggered, or nothing to test
        triggered = not row.startswith("not triggered")
        return TestResult(rule_id, triggered, triggered, row, event=summary)
    values = dict(row.record)
    notes += unknown_keys(values, catalog, row)
    explained, found = evaluate_on_row(
        rule.conditions, row, values, catalog=catalog, related=related, now=now
    )
    notes += found
    matched = bool(explained["matched"])
    if explained["node"] is None:
        reason = "the rule has no conditions"
    else:
        reason = "the conditions hold" if matched else "the conditions do not hold"
    return TestResult(rule_id, True, matched, reason, explained["node"], values, tuple(notes), summary)


test_rule.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def evaluate_on_row(
    conditions: ConditionNode | None,
    row: TriggerRow,
    values: dict[str, Any],
    *,
    catalog: Catalog,
    related: RelatedReader | None,
    now: datetime,
) -> tuple[dict[str, Any], list[str]]:
    """``conditions`` explained on ``values`` (the row's, updated with the foreign-key paths read
    through ``related``), and notes on what was read or taken as NULL."""
    connection = connection_of(catalog, row)
    compiled = compile_condition(conditions)
    plan = field_plan(connection, row.table, compiled.fields)
    compiled = compile_condition(conditions, column_types=plan["types"])
    request = RelatedRequest(row.connection_id, connection, row.table, row.record, ())
    notes = read_paths(values, compiled.fields, related, request)
    missing = sorted(f for f in compiled.fields if FIELD_PATH_SEPARATOR not in f and f not in values)
    if missing:
        notes.append(f"not in the event's row, so NULL: {', '.join(missing)}")
    return compiled.explain(values, old=row.old, changed=row.changed, now=now), notes


def connection_of(catalog: Catalog, row: TriggerRow) -> Connection:
    """The catalog's connection holding the row's table (RuleTestError when it has none)."""
    connection = catalog.connections.get(row.connection_id)
    if connection is None or row.table not in connection.tables:
        raise RuleTestError(f"table '{row.table}' of connection '{row.connection_id}' is not in the catalog")
    return connection


def _row_for(
    rule: RuleDefinition, event: Event, summary: dict[str, Any], notes: list[str]
) -> TriggerRow | str:
    """The row to test, or why there is none (``not triggered: ...``, or a rule with nothing to test)."""
    trigger = rule.trigger
    if isinstance(trigger, DataTrigger):
        raise RuleTestError(
            "this rule has a data trigger: it fires on the result of its SQL check, not on a row "
            "event, so test-rule cannot test it"
        )
    _require_row(event)
    if not isinstance(trigger, EventTrigger) and trigger.target is None:
        return f"a {trigger.type} rule without a target runs once, with no conditions to test"
    return trigger_row(trigger, event, summary, notes)


def trigger_row(
    trigger: Trigger, event: Event, summary: dict[str, Any], notes: list[str], *, noun: str = "rule"
) -> TriggerRow | str:
    """The row an event trigger, or a trigger with a ``target``, gives ``event`` (``summary`` gets the
    changed fields), or why the trigger does not take it (``not triggered: ...``)."""
    _require_row(event)
    if isinstance(trigger, EventTrigger):
        changed = changed_fields_of(event, notes)
        if changed is not None:
            summary["changed"] = changed
        refusal = event_refusal(trigger, event, changed)
        if refusal is not None:
            return f"not triggered: {refusal.replace('the rule ', f'the {noun} ')}"
        if event.new is None and event.old is not None:
            notes.append("the event has no `new`: conditions read its `old` values")
        record = event.new if event.new is not None else (event.old or {})
        return TriggerRow(trigger.connection, trigger.table, record, event.old, changed)
    target = getattr(trigger, "target", None)
    if target is None:
        raise RuleTestError(f"a {trigger.type} trigger without a target gives no row to test")
    if event.table != target.table:
        return (
            f"not triggered: the {noun}'s target is table '{target.table}'; the event is for '{event.table}'"
        )
    if event.new is None:
        raise RuleTestError(f"the event has no `new`: give the {target.table} row to test as `new`")
    notes.append(
        f"a {trigger.type} {noun} has no events: `new` is tested as one row of its target '{target.table}' "
        f"(operation '{event.operation}' ignored)"
    )
    return TriggerRow(target.connection, target.table, event.new)


def _require_row(event: Event) -> None:
    if event.new is None and event.old is None:
        raise RuleTestError("the event has no row to test: give `new` (or `old` for a deleted event)")


def unknown_keys(values: Mapping[str, Any], catalog: Catalog, row: TriggerRow) -> list[str]:
    """A note naming the keys of the event's row that are not columns of its table in the catalog."""
    columns = connection_of(catalog, row).tables[row.table].columns
    unknown = sorted(k for k in values if k not in columns and FIELD_PATH_SEPARATOR not in k)
    if not unknown:
        return []
    return [f"not columns of '{row.table}' in the catalog (ignored by the conditions): {', '.join(unknown)}"]


def read_paths(
    values: dict[str, Any],
    fields: Collection[str],
    related: RelatedReader | None,
    request: RelatedRequest,
) -> list[str]:
    """Read the foreign-key paths of ``fields`` that ``values`` lacks into it; notes on each."""
    paths = tuple(sorted(f for f in fields if FIELD_PATH_SEPARATOR in f and f not in values))
    if not paths:
        return []
    if related is None:
        return [f"{path}: not in the event's row, so it is NULL ({CONNECTION_HINT})" for path in paths]
    try:
        rows = related(
            RelatedRequest(request.connection_id, request.connection, request.table, values, paths)
        )
    except FieldResolutionError as exc:  # validation resolved every path already
        raise RuleTestError(str(exc)) from None
    values.update(rows.values)
    return [
        *rows.notes,
        *(f"{p}: read from the database: {rows.values[p]!r}" for p in paths if p in rows.values),
    ]


# -- text output ------------------------------------------------------------------------------------


def format_text(result: TestResult) -> str:
    """The result as an indented tree: ``✓``/``✗``/``- skipped``, value seen, operator, expected."""
    event = result.event
    head = f"rule {result.rule_id}, event {event.get('operation')} on {event.get('table')}"
    if event.get("changed") is not None:
        head += f" (changed: {', '.join(event['changed']) or 'nothing'})"
    lines = [head]
    if result.trace is not None:
        lines += format_trace(result.trace, 1)
    lines += [f"note: {note}" for note in result.notes]
    if not result.triggered:
        lines.append(result.reason)
    else:
        lines.append(("MATCHED: " if result.matched else "NO MATCH: ") + result.reason)
    return "\n".join(lines)


def parse_now(text: str | None) -> datetime:
    """``--now``: an ISO date-time (naive means UTC); None means the current time."""
    if text is None:
        return utcnow()
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
