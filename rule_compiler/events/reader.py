"""Reading the outbox for one consumer: batches in id order, never past an event that may still commit.

A consumer (the Airflow trigger of one watch: a table, and optionally the operations and changed
columns it takes, ``rule_compiler.events.watch``) keeps two positions: the durable cursor in
``rule_engine_outbox_cursors`` (moved by :meth:`OutboxReader.commit` once the events it covers were
handed on for good) and the in-memory ``position`` of the last id it has read. After a crash it
starts again from the durable cursor, so every event is handed on at least once.

Outbox ids come from one sequence, but on Postgres transactions commit in any order: id 10 may still
be uncommitted when id 11 is visible. A reader that moved past 10 would lose it for good. So a batch
ends at the first gap in the ids, and a gap is skipped only once every transaction that could still
fill it has ended — any such transaction had its id before our read, so it is older than the read's
snapshot ``xmax``; when the oldest running transaction (``xmin``) is past that horizon, the gap was a
rollback and is skipped. SQLite has one writer at a time, so its gaps (purges) are skipped at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.definitions import Event
from rule_compiler.events.outbox_rows import (
    advance_cursor,
    cursor_position,
    cursors,
    event_columns,
    event_from_row,
    outbox,
)
from rule_compiler.sql_dialects import table_exists

__all__ = [
    "Batch",
    "OutboxReader",
    "consumer_name",
    "events_by_ids",
    "has_cursor",
    "newest_id",
    "rule_consumer_name",
    "saved_position",
    "table_event_ids",
]


def consumer_name(table: str) -> str:
    """The durable cursor's name of the Airflow trigger that watches ``table``."""
    return f"airflow:{table}"


def rule_consumer_name(table: str, dag_id: str) -> str:
    """The durable cursor of one event rule on ``table``: the last event its runs have taken."""
    return f"{consumer_name(table)}:{dag_id}"


#: Whether the reader takes an event of its table, from its operation and changed columns.
EventFilter = Callable[[str, Collection[str] | None], bool]


@dataclass(frozen=True)
class Batch:
    """Events of the watched table in one read, and how far the read may move the cursor.

    A filtering reader also returns a batch with no ``event_ids`` when a read passed only events of
    its table that the filter refused: nothing to hand on, but the cursor may move past them (else it
    would hold the outbox purge back and look stalled until the next event it takes)."""

    table: str
    event_ids: tuple[int, ...]
    through: int  # every id up to here was read (other tables' events included)

    def payload(self, connection: str) -> dict[str, Any]:
        """The asset event's payload: ids only, never row data."""
        return {
            "connection": connection,
            "table": self.table,
            "event_ids": [str(event_id) for event_id in self.event_ids],
            "first_id": self.event_ids[0],
            "last_id": self.event_ids[-1],
        }


class OutboxReader:
    """Reads one table's events after a consumer's cursor, batch by batch; see the module doc."""

    def __init__(
        self,
        table: str,
        *,
        consumer: str | None = None,
        batch_size: int = 500,
        takes: EventFilter | None = None,
    ) -> None:
        self.table = table
        self.consumer = consumer or consumer_name(table)
        self.batch_size = batch_size
        self.takes = takes
        self.position: int | None = None
        self._gap_horizons: dict[int, int] = {}  # first missing id -> snapshot xmax when it was seen

    def start(self, engine: sa.Engine) -> int:
        """Resume from the durable cursor (after a start or a crash); returns the position."""
        with engine.connect() as conn:
            self.position = cursor_position(conn, self.consumer)
        self._gap_horizons.clear()
        return self.position

    def next_batch(self, engine: sa.Engine) -> Batch | None:
        """The next events of the table, oldest first, up to the first gap that may still fill."""
        position = self.start(engine) if self.position is None else self.position
        columns = [outbox.c.id, outbox.c.table_name]
        if self.takes is not None:
            columns += [outbox.c.operation, outbox.c.changed_json]
        with _snapshot_connection(engine) as conn:
            snapshot = _snapshot(conn)
            rows = conn.execute(
                sa.select(*columns).where(outbox.c.id > position).order_by(outbox.c.id).limit(self.batch_size)
            ).all()
        if not rows:
            return None
        through, ours, refused = position, [], 0
        for row in rows:
            event_id, table_name = row[0], row[1]
            if event_id != through + 1 and not self._gap_closed(through + 1, snapshot):
                break
            through = event_id
            if table_name != self.table:
                continue
            if self.takes is None or self.takes(str(row[2]), row[3]):
                ours.append(event_id)
            else:
                refused += 1
        self._gap_horizons = {start: h for start, h in self._gap_horizons.items() if start > through}
        self.position = through
        if not ours:
            return Batch(self.table, (), through) if refused else None
        return Batch(self.table, tuple(ours), through)

    def commit(self, engine: sa.Engine, through: int) -> int:
        """Move the durable cursor to ``through`` (never back); call once the events were handed on."""
        with engine.begin() as conn:
            return advance_cursor(conn, self.consumer, through)

    def start_at(self, position: int) -> None:
        """Read after ``position`` instead of the durable cursor (a consumer's first read)."""
        self.position = position
        self._gap_horizons.clear()

    def rewind(self) -> None:
        """Forget the in-memory position: the next read starts again from the durable cursor."""
        self.position = None

    def _gap_closed(self, missing_id: int, snapshot: tuple[int, int] | None) -> bool:
        """Whether ``missing_id`` can never appear: every transaction that could write it has ended."""
        if snapshot is None:  # SQLite: one writer, nothing can still commit below a visible id
            return True
        xmin, xmax = snapshot
        return xmin >= self._gap_horizons.setdefault(missing_id, xmax)


def _snapshot_connection(engine: sa.Engine) -> sa.Connection:
    """A connection whose statements share one snapshot (Postgres REPEATABLE READ), so the ids read
    and the ``xmin``/``xmax`` they are judged by belong together."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def _snapshot(conn: sa.Connection) -> tuple[int, int] | None:
    """Postgres: (xmin, xmax) of the transaction's snapshot; None elsewhere."""
    if conn.dialect.name != "postgresql":
        return None
    row = conn.exec_driver_sql(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
    ).one()
    return int(row[0]), int(row[1])


def has_cursor(conn: sa.Connection, consumer: str) -> bool:
    """Whether ``consumer`` has a durable cursor yet."""
    return saved_position(conn, consumer) is not None


def saved_position(conn: sa.Connection, consumer: str) -> int | None:
    """``consumer``'s durable cursor, or None when it has none yet (or no cursor table exists)."""
    if not table_exists(conn, cursors.name):
        return None
    value = conn.execute(sa.select(cursors.c.last_id).where(cursors.c.consumer == consumer)).first()
    return None if value is None else int(value[0] or 0)


def newest_id(conn: sa.Connection) -> int:
    """The newest outbox id (0 when empty)."""
    return int(conn.execute(sa.select(sa.func.max(outbox.c.id))).scalar() or 0)


def table_event_ids(conn: sa.Connection, table: str, after: int, through: int) -> list[int]:
    """The ids of ``table``'s events in ``(after, through]``, oldest first."""
    rows = conn.execute(
        sa.select(outbox.c.id)
        .where(outbox.c.table_name == table, outbox.c.id > after, outbox.c.id <= through)
        .order_by(outbox.c.id)
    )
    return [int(row[0]) for row in rows]


def events_by_ids(conn: sa.Connection, ids: list[int]) -> list[Event]:
    """The outbox events with these ids, oldest first (ids purged meanwhile are simply absent)."""
    if not ids:
        return []
    query = sa.select(*event_columns(conn)).where(outbox.c.id.in_(sorted(set(ids)))).order_by(outbox.c.id)
    rows = conn.execute(query)
    return [event_from_row(dict(row._mapping)) for row in rows]
