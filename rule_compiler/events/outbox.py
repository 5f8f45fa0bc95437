"""The outbox: one row per captured change of a watched table, in the application database.

Row triggers (``capture.py``) write it in the transaction that changed the row, so an event exists
exactly when its change committed. Ids only grow, so a consumer's position is one number: the id of
the last event it handed on. Rows hold the operation, the primary key, the old and new rows as JSON
and the names of the columns an update changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from rule_compiler.definitions import Event

OUTBOX_TABLE = "rule_engine_outbox"
#: The pg_notify channel the Postgres trigger signals after each insert (payload ``table:id``).
NOTIFY_CHANNEL = "rule_engine_outbox"

_Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_metadata = sa.MetaData()
outbox = sa.Table(
    OUTBOX_TABLE,
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("table_name", sa.String(128), nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),  # created | updated | deleted
    sa.Column("key_json", _Json, nullable=False),
    sa.Column("old_json", _Json, nullable=True),
    sa.Column("new_json", _Json, nullable=True),
    sa.Column("changed_json", _Json, nullable=True),
    # SQLite triggers write ISO text (UTC); Postgres writes timestamptz.
    sa.Column("created_at", sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite"), nullable=False),
    sa.Index("ix_rule_engine_outbox_table_name_id", "table_name", "id"),
)
CURSOR_TABLE = "rule_engine_outbox_cursors"
cursors = sa.Table(
    CURSOR_TABLE,
    _metadata,
    sa.Column("consumer", sa.String(250), primary_key=True),
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def ensure_outbox(conn: sa.Connection) -> None:
    """Create the outbox table (and its index) if missing."""
    _metadata.create_all(conn, checkfirst=True)


def read_events(
    conn: sa.Connection, *, after_id: int, tables: list[str] | None = None, limit: int = 500
) -> list[Event]:
    """Events with an id above ``after_id``, oldest first; their ``id`` is the outbox id as text."""
    query = sa.select(outbox).where(outbox.c.id > after_id).order_by(outbox.c.id).limit(limit)
    if tables is not None:
        query = query.where(outbox.c.table_name.in_(tables))
    return [event_from_row(dict(row._mapping)) for row in conn.execute(query)]


def cursor_position(conn: sa.Connection, consumer: str) -> int:
    """The id of the last event ``consumer`` handed on (0 before its first)."""
    value = conn.execute(sa.select(cursors.c.last_id).where(cursors.c.consumer == consumer)).scalar()
    return int(value or 0)


def advance_cursor(conn: sa.Connection, consumer: str, to_id: int) -> int:
    """Move ``consumer``'s cursor forward to ``to_id`` (never back); returns the position after."""
    now = dt.datetime.now(dt.UTC)
    moved = conn.execute(
        cursors.update()
        .where(cursors.c.consumer == consumer, cursors.c.last_id < to_id)
        .values(last_id=to_id, updated_at=now)
    ).rowcount
    if (
        not moved
        and conn.execute(sa.select(cursors.c.consumer).where(cursors.c.consumer == consumer)).first() is None
    ):
        try:
            with conn.begin_nested():
                conn.execute(cursors.insert().values(consumer=consumer, last_id=to_id, updated_at=now))
        except sa.exc.IntegrityError:  # a concurrent first advance won: apply ours as a forward move
            return advance_cursor(conn, consumer, to_id)
    return cursor_position(conn, consumer)


def purge_consumed(conn: sa.Connection, *, older_than: dt.datetime, consumers: list[str]) -> int:
    """Delete events older than ``older_than`` that every consumer has passed; returns how many.

    With no consumers nothing is purged: an event nobody has read yet is never dropped.
    """
    if not consumers:
        return 0
    positions = [cursor_position(conn, consumer) for consumer in consumers]
    through = min(positions)
    cutoff: Any = older_than
    if conn.dialect.name == "sqlite":
        cutoff = older_than.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return int(
        conn.execute(outbox.delete().where(outbox.c.id <= through, outbox.c.created_at < cutoff)).rowcount
    )


def event_from_row(row: Mapping[str, Any]) -> Event:
    """The :class:`Event` of one outbox row."""
    created = row["created_at"]
    if isinstance(created, str):  # SQLite triggers write ISO text
        created = dt.datetime.fromisoformat(created)
    if isinstance(created, dt.datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return Event(
        id=str(row["id"]),
        table=row["table_name"],
        operation=row["operation"],
        key=row["key_json"],
        old=row["old_json"],
        new=row["new_json"],
        changed_fields=row["changed_json"],
        occurred_at=created,
    )
