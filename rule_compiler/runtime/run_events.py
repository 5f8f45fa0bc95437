"""Event rules at run time: which outbox events a run carries, and the row each one is tested on.

A run of an event rule is started by asset events whose payloads carry outbox ids (never row data);
the run reads those events back from the outbox, keeps the ones the trigger listens to (operation,
``fields``), and tests the conditions on each event's row: ``new`` (``old`` for a delete), plus the
foreign-key paths the rule reads, followed from the event's own values in SQL
(:func:`evaluate_events`). Which events a run takes is :mod:`rule_compiler.runtime.event_cursor`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from rule_compiler.canonical import canonical_json
from rule_compiler.conditions import CompiledCondition
from rule_compiler.definitions import Event, EventTrigger
from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR
from rule_compiler.events.reader import events_by_ids
from rule_compiler.runtime.idempotency import key_values
from rule_compiler.runtime.rows import reflect_table
from rule_compiler.runtime.verdicts import VerdictLog, event_head

__all__ = [
    "MAX_TRACED_ROWS",
    "changed_fields_of",
    "evaluate_events",
    "event_ids_of",
    "event_key",
    "event_occurrence",
    "event_record",
    "event_refusal",
    "why_not_triggered",
]

#: How many per-row (or per-event) traces the automation log keeps for one run (counts are complete).
MAX_TRACED_ROWS = 100


def event_ids_of(payloads: Iterable[Any]) -> list[int]:
    """The outbox ids named by asset-event payloads (or a run's ``conf``), deduplicated, in order."""
    ids: set[int] = set()
    for payload in payloads:
        if isinstance(payload, Mapping):
            for value in payload.get("event_ids") or ():
                if str(value).isdigit():
                    ids.add(int(value))
    return sorted(ids)


def event_occurrence(event_id: str) -> str:
    """What stands for the run in an event's idempotency keys: a redelivered event has no second effect."""
    return f"event:{event_id}"


def why_not_triggered(trigger: EventTrigger, event: Event) -> str | None:
    """Why the rule's trigger ignores ``event`` (wrong operation, none of ``fields`` changed), or None."""
    return event_refusal(trigger, event, changed_fields_of(event, []))


def event_key(event: Event, primary_key: list[str]) -> list[Any]:
    """The event's row key as primary-key values (from ``key``, else its row)."""
    if isinstance(event.key, Mapping) and all(column in event.key for column in primary_key):
        return key_values(event.key, primary_key)
    row = event.new if event.new is not None else (event.old or {})
    return key_values({column: row.get(column) for column in primary_key}, primary_key)


def event_record(conn: sa.Connection, plan: Mapping[str, Any], event: Event) -> dict[str, Any]:
    """The values the conditions and templates read: the event's row plus its foreign-key paths,
    followed hop by hop from the event's own values (a missing related row gives NULL)."""
    record = dict(event.new if event.new is not None else (event.old or {}))
    tables: dict[str, sa.Table] = {}
    for path, route in (plan.get("paths") or {}).items():
        current: Mapping[str, Any] | None = record
        for hop in route["joins"]:
            value = current.get(hop["fk_column"]) if current is not None else None
            if value is None:
                current = None
                break
            table = tables.get(hop["table"])
            if table is None:
                table = tables[hop["table"]] = reflect_table(conn, hop["table"])
            row = conn.execute(sa.select(table).where(table.c[hop["column"]] == value).limit(1)).first()
            current = dict(row._mapping) if row is not None else None
        record[path] = current.get(route["column"]) if current is not None else None
    return record


def changed_fields_of(event: Event, notes: list[str]) -> list[str] | None:
    """The changed columns: recorded, else computed from ``old``/``new`` for updates; None if unknown."""
    if event.changed_fields is not None:
        return list(event.changed_fields)
    if event.operation != "updated":
        return None
    if event.old is None:
        notes.append(
            "the updated event has no `old` and no `changed_fields`: changed, changed_to and "
            "changed_from see no change"
        )
        return None
    # related values (``customer__tier``) given in `new` are context, not columns of the row
    return [name for name in event.changed() if FIELD_PATH_SEPARATOR not in name]


def event_refusal(trigger: EventTrigger, event: Event, changed: list[str] | None) -> str | None:
    """Why the trigger does not fire for ``event`` (None: it fires)."""
    if event.connection is not None and event.connection != trigger.connection:
        return f"the rule watches connection '{trigger.connection}'; the event is from '{event.connection}'"
    if event.table != trigger.table:
        return f"the rule watches table '{trigger.table}'; the event is for '{event.table}'"
    if event.operation not in trigger.events:
        return f"the rule fires on {', '.join(trigger.events)}; the event is '{event.operation}'"
    if trigger.fields and event.operation == "updated":
        hit = sorted(set(trigger.fields) & set(changed or ()))
        if not hit:
            seen = ", ".join(changed) if changed else "nothing (no `old` or `changed_fields`)"
            return f"the rule fires only when one of {', '.join(trigger.fields)} changed; changed: {seen}"
    return None


def evaluate_events(
    engine: sa.Engine,
    ids: list[int],
    trigger: EventTrigger,
    *,
    source: Mapping[str, Any],
    compiled: CompiledCondition,
    now: dt.datetime,
    verdicts: VerdictLog,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each event of ``ids``: does the trigger take it, do the conditions hold on its row. Returns the
    matches (outbox id and row key each, never row data) and the automation log's trace; every
    verdict also goes to ``verdicts`` (the task log). An id no longer in the outbox (purged) is named
    in the trace's ``missing_event_ids``."""
    pk = list(source["primary_key"])
    matched: list[dict[str, Any]] = []
    traced: list[dict[str, Any]] = []
    ignored = 0
    with engine.connect() as conn:
        events = events_by_ids(conn, ids)
        for event in events:
            changed = changed_fields_of(event, [])
            refusal = why_not_triggered(trigger, event)
            if refusal is not None:
                ignored += 1
                if len(traced) < MAX_TRACED_ROWS:
                    traced.append({"event_id": event.id, "matched": False, "ignored": refusal})
                if not verdicts.full:
                    verdicts.add_ignored(event_head(event.id, event.operation, changed, None), refusal)
                continue
            record = event_record(conn, source, event)
            explained = compiled.explain(record, old=event.old, changed=changed, now=now)
            key = event_key(event, pk)
            if len(traced) < MAX_TRACED_ROWS:
                traced.append(
                    {
                        "event_id": event.id,
                        "operation": event.operation,
                        "key": key,
                        "actor": event.actor,
                        **explained,
                    }
                )
            if not verdicts.full:
                verdicts.add(
                    event_head(event.id, event.operation, changed, canonical_json(key)),
                    explained
                    if verdicts.values
                    else compiled.explain(record, old=event.old, changed=changed, now=now, values=False),
                )
            if explained["matched"]:  # never capped: an event left out would be lost
                matched.append({"event_id": event.id, "key": key, "actor": event.actor})
                verdicts.matched(canonical_json(key))
    missing = sorted(set(ids) - {int(str(event.id)) for event in events})
    trace: dict[str, Any] = {
        "evaluated": len(events),
        "matched": len(matched),
        "ignored": ignored,
        "rows": traced,
        "selected_in": "events",
        "event_ids": [str(i) for i in ids[:MAX_TRACED_ROWS]],
    }
    if missing:
        trace["missing_event_ids"] = [str(i) for i in missing]  # purged before the run read them
    return matched, trace
