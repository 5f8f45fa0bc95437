"""Which outbox events one run of an event rule takes, and the rule's own cursor past them.

A rule keeps one durable cursor per table it listens to (``airflow:<table>:<dag_id>``,
:func:`~rule_compiler.events.reader.rule_consumer_name`); each run takes every event of the table
after it, up to the first id that may still commit (:class:`~rule_compiler.events.reader.OutboxReader`),
not only the events of the asset events that started the run (docs/architecture.md §3.6). The
evaluate task records the range in the automation log before the cursor moves, so a retried task
takes the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.events.outbox_rows import advance_cursor
from rule_compiler.events.reader import (
    OutboxReader,
    newest_id,
    rule_consumer_name,
    saved_position,
    table_event_ids,
)
from rule_compiler.runtime.run_events import event_ids_of

__all__ = ["EventRange"]

#: Outbox ids read per batch while a run takes its range.
BATCH_SIZE = 1_000


@dataclass(frozen=True)
class EventRange:
    """The outbox events one run of an event rule takes: ``(after, through]`` of its table, read
    after the rule's cursor (``airflow:<table>:<dag_id>``) up to the first id that may still commit.

    A rule's first run starts just before the first event that started it. The range is recorded in
    the automation log before the cursor moves, so a retried task takes the same events.
    """

    engine: sa.Engine
    consumer: str
    after: int
    through: int
    ids: list[int]

    @classmethod
    def take(
        cls, engine: sa.Engine, table: str, dag_id: str, payloads: list[Any], earlier: list[int] | None
    ) -> EventRange:
        """The range of a run: ``earlier`` (the ``[after, through]`` a first try recorded) again, else
        every event after the rule's cursor; without a cursor, from the first id the asset-event
        ``payloads`` that started the run name (else from the newest event)."""
        consumer = rule_consumer_name(table, dag_id)
        with engine.connect() as conn:
            if earlier is not None:  # this task's retry: the same events
                after, through = int(earlier[0]), int(earlier[1])
                return cls(engine, consumer, after, through, table_event_ids(conn, table, after, through))
            saved = saved_position(conn, consumer)
            if saved is not None:
                after = saved
            else:
                started_by = event_ids_of(payloads)
                after = started_by[0] - 1 if started_by else newest_id(conn)
        reader = OutboxReader(table, consumer=consumer, batch_size=BATCH_SIZE)
        reader.start_at(after)
        ids: list[int] = []
        while True:
            before = reader.position
            batch = reader.next_batch(engine)
            if batch is not None:
                ids += batch.event_ids
            elif reader.position == before:
                break
        return cls(engine, consumer, after, max(after, reader.position or after), ids)

    def commit(self) -> None:
        """Move the rule's cursor past the events this run took."""
        with self.engine.begin() as conn:
            advance_cursor(conn, self.consumer, self.through)
