"""How far each event consumer is behind its outbox, for the health route.

A watch (connection, table, operations, fields: ``rule_compiler.events.watch``, ADR 0008) is one
Airflow trigger reading the table's events from the outbox of that database after its durable cursor
(:attr:`~rule_compiler.events.watch.Watch.consumer`); rules with equal watches share it. Per
database: one connection and a look at which outbox tables exist; per table: one query whose parts
all use the outbox's (table_name, id) index or the cursor's primary key. ``pending`` stops counting at
:data:`MAX_COUNTED`. A database that does not answer (or whose connection is missing) is reported per
consumer, never raised.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from rule_compiler.events.outbox_rows import CURSOR_TABLE, OUTBOX_TABLE, cursors, outbox
from rule_compiler.events.reader import consumer_name
from rule_compiler.events.watch import watch_of_spec_json
from rule_engine.api.schemas_ops import ConsumerLag
from rule_engine.hooks import app_database

log = logging.getLogger("rule_engine.api")

MAX_COUNTED = 100_000
#: A consumer whose oldest pending event waits longer than this is reported as stalled.
STALLED_AFTER = dt.timedelta(minutes=10)


@dataclass
class Watched:
    """A watch of active event rules: its table, its trigger's cursor, and which rules
    (``organization/name``) it starts."""

    connection: str
    table: str
    rules: list[str] = field(default_factory=list)
    consumer: str = ""

    def __post_init__(self) -> None:
        self.consumer = self.consumer or consumer_name(self.table)


def watched_by(specs: Iterable[tuple[str, bool, str]]) -> list[Watched]:
    """The watches of the active event rules among ``(rule label, active, spec JSON)``: one per
    distinct watch (so per trigger and cursor), ordered by connection, table and cursor."""
    found: dict[tuple[str, str, str], Watched] = {}
    for label, active, spec_json in specs:
        watch = watch_of_spec_json(spec_json) if active else None
        if watch is None:
            continue
        key = (watch.connection, watch.table, watch.consumer)
        found.setdefault(key, Watched(watch.connection, watch.table, consumer=watch.consumer)).rules.append(
            label
        )
    return [found[key] for key in sorted(found)]


def consumer_lags(
    watched: list[Watched],
    now: dt.datetime,
    *,
    open_engine: Callable[[str], sa.Engine] = app_database.engine_for,
) -> list[ConsumerLag]:
    """The lag of every watched table's consumer, one database at a time. Engines come from the
    plugin's one connection seam (its process-wide cache: the health route opens no pool of its own)."""
    by_connection: dict[str, list[Watched]] = {}
    for item in watched:
        by_connection.setdefault(item.connection, []).append(item)
    lags: list[ConsumerLag] = []
    for conn_id, items in sorted(by_connection.items()):
        lags += _lags_of(conn_id, items, open_engine, now)
    return lags


def _lags_of(
    conn_id: str, items: list[Watched], open_engine: Callable[[str], sa.Engine], now: dt.datetime
) -> list[ConsumerLag]:
    try:  # a connection missing from Airflow is reported like a database that does not answer
        with open_engine(conn_id).connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(OUTBOX_TABLE):
                return [_lag(item, status="no_outbox") for item in items]
            has_cursors = inspector.has_table(CURSOR_TABLE)
            return [_measure(conn, item, has_cursors=has_cursors, now=now) for item in items]
    except Exception as exc:  # the application database is not ours to fail on
        log.warning("health: cannot read the outbox of connection %s", conn_id, exc_info=True)
        return [_lag(item, status="unreachable", error=type(exc).__name__) for item in items]


def _lag(item: Watched, **values: Any) -> ConsumerLag:
    return ConsumerLag(
        connection=item.connection,
        table=item.table,
        consumer=item.consumer,
        rules=sorted(item.rules),
        **values,
    )


def _measure(conn: sa.Connection, item: Watched, *, has_cursors: bool, now: dt.datetime) -> ConsumerLag:
    consumer = item.consumer
    position: Any = sa.literal(0)
    if has_cursors:
        cursor = sa.select(cursors.c.last_id).where(cursors.c.consumer == consumer).scalar_subquery()
        position = sa.func.coalesce(cursor, 0)
    of_table = outbox.c.table_name == item.table
    after = sa.and_(of_table, outbox.c.id > position)
    pending_ids = sa.select(outbox.c.id).where(after).order_by(outbox.c.id).limit(MAX_COUNTED + 1)
    row = conn.execute(
        sa.select(
            position.label("position"),
            sa.select(sa.func.max(outbox.c.id)).where(of_table).scalar_subquery().label("newest"),
            sa.select(sa.func.count()).select_from(pending_ids.subquery()).scalar_subquery().label("pending"),
            sa.select(outbox.c.created_at)
            .where(after)
            .order_by(outbox.c.id)
            .limit(1)
            .scalar_subquery()
            .label("oldest"),
        )
    ).one()
    pending = int(row.pending)
    oldest = _utc(row.oldest)
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    status = "ok" if pending == 0 else "behind"
    if age is not None and age > STALLED_AFTER.total_seconds():
        status = "stalled"
    return _lag(
        item,
        status=status,
        position=int(row.position),
        newest_id=None if row.newest is None else int(row.newest),
        pending=min(pending, MAX_COUNTED),
        pending_capped=pending > MAX_COUNTED,
        oldest_pending_at=oldest,
        oldest_pending_age_seconds=age,
    )


def _utc(value: Any) -> dt.datetime | None:
    """An outbox ``created_at`` (ISO text on SQLite, timestamptz on Postgres) as aware UTC."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, dt.datetime):
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
