"""What one outbox trigger watches: a table, the operations, and for updates the columns (ADR 0008).

An event rule is started only by the changes its trigger listens to: ``events`` (created, updated,
deleted) and, for updates, ``fields`` (one of them must have changed). So event rules are grouped by
:class:`Watch` — (connection, table, operations, field set) — not by table: each watch has its own
Airflow asset, asset watcher, trigger (whose reader keeps only the events the watch takes) and durable
cursor; rules with equal watches share all of them. A rule that listens to every change of its
table has the table's plain watch, whose names are those every event rule had before (asset
``rule-engine://app_db/orders``, cursor ``airflow:orders``); a narrower watch's names add its filter
as a query (``rule-engine://app_db/orders?events=updated&fields=status``, cursor
``airflow:orders?events=updated&fields=status``).

The watch of a compiled rule comes from its spec: the table from ``schedule``, the operations and
fields from the ``trigger`` its ``evaluate_conditions`` task holds — the very trigger that task
filters the run's events with, so the two filters cannot disagree (and specs stored before ADR 0008
get their watch at the next parse, without being registered again).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.events.outbox_rows import CURSOR_TABLE, advance_cursor, cursors
from rule_compiler.events.reader import consumer_name, saved_position
from rule_compiler.sql_dialects import table_exists

__all__ = [
    "OPERATIONS",
    "Watch",
    "is_trigger_consumer",
    "start_cursor",
    "watch_of_spec",
    "watch_of_spec_json",
]

#: Every operation an event can have, in the order filters name them.
OPERATIONS: tuple[str, ...] = ("created", "updated", "deleted")
#: A filter longer than this (many fields) is named by a hash of it instead, so that names fit the
#: cursor table's 250 characters.
MAX_FILTER_TEXT = 150
#: The task kinds whose params hold the trigger: a rule's evaluate task, a workflow's trigger node.
_TRIGGER_TASK_KINDS = frozenset({"evaluate_conditions", "workflow_start"})


@dataclass(frozen=True)
class Watch:
    """One (connection, table, operations, field set): build it with :meth:`of`, which normalizes
    (operations in :data:`OPERATIONS` order, fields sorted, fields dropped without ``updated``)."""

    connection: str
    table: str
    events: tuple[str, ...] = OPERATIONS
    fields: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        connection: str,
        table: str,
        events: Iterable[str] | None = None,
        fields: Iterable[str] | None = None,
    ) -> Watch:
        wanted = set(events) if events is not None else set(OPERATIONS)
        operations = tuple(op for op in OPERATIONS if op in wanted)
        columns = tuple(sorted(set(fields))) if fields and "updated" in operations else None
        return cls(connection, table, operations, columns)

    @property
    def everything(self) -> bool:
        """Every change of the table (the plain watch, named as before ADR 0008)."""
        return self.events == OPERATIONS and self.fields is None

    def takes(self, operation: str, changed: Collection[str] | None) -> bool:
        """Whether an event (its operation and, for an update, its changed columns) is for this watch:
        the rule-side test of ``rule_compiler.runtime.run_events.event_refusal`` on outbox rows."""
        if operation not in self.events:
            return False
        if self.fields is not None and operation == "updated":
            return not set(self.fields).isdisjoint(changed or ())
        return True

    @property
    def filter_text(self) -> str:
        """``events=updated&fields=priority,status`` (empty for the plain watch; a hash when long)."""
        if self.everything:
            return ""
        text = "events=" + ",".join(self.events)
        if self.fields is not None:
            text += "&fields=" + ",".join(self.fields)
        if len(text) > MAX_FILTER_TEXT:
            text = "filter=" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        return text

    def _suffix(self) -> str:
        return f"?{self.filter_text}" if not self.everything else ""

    @property
    def consumer(self) -> str:
        """The durable cursor of this watch's trigger: ``airflow:orders`` or ``airflow:orders?...``."""
        return consumer_name(self.table) + self._suffix()

    @property
    def asset_name(self) -> str:
        """The asset's name (the Assets view): ``rule_engine__app_db__orders`` plus the filter."""
        return f"rule_engine__{self.connection}__{self.table}{self._suffix()}"

    @property
    def asset_uri(self) -> str:
        """The asset's URI, in the form Airflow normalizes URIs to (query sorted and encoded)."""
        uri = f"rule-engine://{self.connection}/{self.table}"
        if self.everything:
            return uri
        pairs = sorted(
            (name, value) for name, _, value in (p.partition("=") for p in self.filter_text.split("&"))
        )
        return f"{uri}?{urllib.parse.urlencode(pairs)}"

    @property
    def watcher_name(self) -> str:
        """The asset watcher's name: ``outbox__app_db__orders`` plus the filter."""
        return f"outbox__{self.connection}__{self.table}{self._suffix()}"

    def trigger_kwargs(self) -> dict[str, Any]:
        """What the trigger is built from: the plain watch's as before (its trigger row is reused)."""
        kwargs: dict[str, Any] = {"connection": self.connection, "table": self.table}
        if not self.everything:
            kwargs["events"] = list(self.events)
            kwargs["fields"] = list(self.fields) if self.fields is not None else None
        return kwargs


def watch_of_spec(spec: Any) -> Watch | None:
    """The watch of a compiled event rule or workflow (a ``DagSpec`` or its JSON data); None for others."""
    if isinstance(spec, Mapping):
        schedule = spec.get("schedule") or {}
        tasks = [
            (t.get("kind"), t.get("params") or {}) for t in spec.get("tasks") or () if isinstance(t, Mapping)
        ]
    else:
        plan = spec.schedule
        schedule = {"kind": plan.kind, "connection": plan.connection, "table": plan.table}
        tasks = [(t.kind, t.params) for t in spec.tasks]
    connection, table = schedule.get("connection"), schedule.get("table")
    if schedule.get("kind") != "event" or not isinstance(connection, str) or not isinstance(table, str):
        return None
    trigger: Mapping[str, Any] = next(
        (params.get("trigger") or {} for kind, params in tasks if kind in _TRIGGER_TASK_KINDS), {}
    )
    events, fields = trigger.get("events"), trigger.get("fields")
    return Watch.of(
        connection,
        table,
        [str(e) for e in events] if isinstance(events, list) else None,
        [str(f) for f in fields] if isinstance(fields, list) else None,
    )


def watch_of_spec_json(spec_json: str) -> Watch | None:
    """:func:`watch_of_spec` of stored spec JSON; None when it is not an event rule or unreadable."""
    try:
        data = json.loads(spec_json)
    except ValueError:
        return None
    return watch_of_spec(data) if isinstance(data, Mapping) else None


def is_trigger_consumer(consumer: str, table: str) -> bool:
    """Whether ``consumer`` is the cursor of a trigger of ``table`` (plain or filtered), not a rule's."""
    plain = consumer_name(table)
    return consumer == plain or consumer.startswith(plain + "?")


def start_cursor(conn: sa.Connection, watch: Watch) -> int:
    """The watch's durable cursor, created on its trigger's first start: at the furthest position any
    trigger of the table has reached (0 when none has), so a new watch — a new rule's, or the
    narrower watch of a rule after an upgrade — starts where the table's delivery stands, not at the
    oldest event the outbox still keeps."""
    if not table_exists(conn, CURSOR_TABLE):
        return 0  # no outbox yet: the reader reports that
    saved = saved_position(conn, watch.consumer)
    if saved is not None:
        return saved
    positions = [
        int(last_id or 0)
        for consumer, last_id in conn.execute(sa.select(cursors.c.consumer, cursors.c.last_id))
        if is_trigger_consumer(str(consumer), watch.table)
    ]
    return advance_cursor(conn, watch.consumer, max(positions, default=0))
