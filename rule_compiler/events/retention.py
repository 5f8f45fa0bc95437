"""Outbox retention: which tables active event rules watch, and purging what their consumers passed.

The ``rule_engine_outbox_purge`` maintenance DAG runs this once a day for every application
database an active event rule watches: in each, the events of a watched table that every consumer
that still needs them has passed — the trigger of each watch of an active rule on the table
(:attr:`~rule_compiler.events.watch.Watch.consumer`, ADR 0008) and each active rule's own cursor —
and that are older than ``AUTOMATION_OUTBOX_RETENTION`` (default ``7d``) are deleted. Events of
tables no active rule watches are kept (a rule may be switched on again) and counted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.events.outbox_rows import CURSOR_TABLE, OUTBOX_TABLE, outbox, purge_table
from rule_compiler.events.reader import consumer_name, has_cursor, rule_consumer_name
from rule_compiler.events.watch import watch_of_spec_json
from rule_compiler.store.models import SpecRow

RETENTION_ENV = "AUTOMATION_OUTBOX_RETENTION"
DEFAULT_RETENTION = "7d"

__all__ = [
    "DEFAULT_RETENTION",
    "RETENTION_ENV",
    "PurgeResult",
    "outbox_retention",
    "purge_connection",
    "watched_tables",
    "watching_consumers",
    "watching_rules",
]


def outbox_retention(environ: Mapping[str, str] | None = None) -> dt.timedelta:
    """``$AUTOMATION_OUTBOX_RETENTION`` (``90m``, ``12h``, ``7d``, ``2w``; default 7 days).

    Raises ValueError naming the variable when it is not a duration.
    """
    value = (os.environ if environ is None else environ).get(RETENTION_ENV) or DEFAULT_RETENTION
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(f"{RETENTION_ENV}: {exc}") from None


def watched_tables(specs: Iterable[SpecRow]) -> dict[str, set[str]]:
    """Connection id → the tables that active event rules watch (unreadable specs are skipped)."""
    watched: dict[str, set[str]] = {}
    for row in specs:
        if not row.active:
            continue
        try:
            schedule = json.loads(row.spec_json).get("schedule") or {}
        except (ValueError, AttributeError):
            continue
        connection, table = schedule.get("connection"), schedule.get("table")
        if schedule.get("kind") == "event" and isinstance(connection, str) and isinstance(table, str):
            watched.setdefault(connection, set()).add(table)
    return watched


@dataclass
class PurgeResult:
    """What one database's purge did: events deleted per watched table, events kept per other table."""

    purged: dict[str, int] = field(default_factory=dict)
    kept_unwatched: dict[str, int] = field(default_factory=dict)
    has_outbox: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "purged": self.purged,
            "kept_unwatched": self.kept_unwatched,
            "has_outbox": self.has_outbox,
        }


def watching_rules(specs: Iterable[SpecRow]) -> dict[str, dict[str, list[str]]]:
    """Connection id → table → the dag ids of the active event rules watching it."""
    rules: dict[str, dict[str, list[str]]] = {}
    for row in specs:
        if not row.active:
            continue
        try:
            schedule = json.loads(row.spec_json).get("schedule") or {}
        except (ValueError, AttributeError):
            continue
        connection, table = schedule.get("connection"), schedule.get("table")
        if schedule.get("kind") == "event" and isinstance(connection, str) and isinstance(table, str):
            rules.setdefault(connection, {}).setdefault(table, []).append(row.dag_id)
    return rules


def watching_consumers(specs: Iterable[SpecRow]) -> dict[str, dict[str, list[str]]]:
    """Connection id → table → the cursors of the triggers of the watches active event rules have
    (one per distinct watch; ``airflow:orders`` for rules listening to every change)."""
    found: dict[str, dict[str, set[str]]] = {}
    for row in specs:
        watch = watch_of_spec_json(row.spec_json) if row.active else None
        if watch is not None:
            found.setdefault(watch.connection, {}).setdefault(watch.table, set()).add(watch.consumer)
    return {conn: {table: sorted(names) for table, names in tables.items()} for conn, tables in found.items()}


def purge_connection(
    engine: sa.Engine,
    tables: Iterable[str],
    *,
    older_than: dt.datetime,
    rules: Mapping[str, Iterable[str]] | None = None,
    consumers: Mapping[str, Iterable[str]] | None = None,
) -> PurgeResult:
    """Purge each of ``tables`` (one transaction per table) and count the other tables' events.

    An event goes only once the triggers of the table **and** every rule in ``rules`` (table → dag
    ids of the active rules watching it; their runs read the outbox after their own cursors) passed
    it. The triggers are ``consumers`` (table → the cursors of the active rules' watches, from
    :func:`watching_consumers`; default: the table's plain ``airflow:<table>``). A watch whose
    trigger has not started yet holds nothing back (its first start begins at the furthest cursor of
    the table's triggers); with no started trigger at all, nothing of the table is purged.
    """
    result = PurgeResult()
    names = sorted(set(tables))
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table(OUTBOX_TABLE):
            result.has_outbox = False
            return result
        has_cursors = inspector.has_table(CURSOR_TABLE)  # no cursor yet: nothing was passed
    for table in names:
        if not has_cursors:
            result.purged[table] = 0
            continue
        with engine.begin() as conn:
            # a rule without a cursor has never run: its first run starts at the event that starts
            # it, so it holds nothing back
            rule_cursors = [rule_consumer_name(table, dag_id) for dag_id in (rules or {}).get(table, ())]
            triggers = [
                c for c in (consumers or {}).get(table, [consumer_name(table)]) if has_cursor(conn, c)
            ]
            if not triggers:  # no trigger has handed anything on yet
                result.purged[table] = 0
                continue
            passed_by = triggers + [c for c in rule_cursors if has_cursor(conn, c)]
            result.purged[table] = purge_table(conn, table=table, consumer=passed_by, older_than=older_than)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.table_name, sa.func.count())
            .where(outbox.c.table_name.not_in(names))
            .group_by(outbox.c.table_name)
            .order_by(outbox.c.table_name)
        )
        result.kept_unwatched = {str(name): int(count) for name, count in rows}
    return result
