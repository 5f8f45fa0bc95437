"""The outbox: one row per captured change of a watched table, in the application database.

Row triggers (``capture.py``) write it in the transaction that changed the row, so an event exists
exactly when its change committed. Ids only grow, so a consumer's position is one number: the id of
the last event it handed on. Rows hold the operation, the primary key, the old and new rows as JSON
and the names of the columns an update changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from rule_compiler.clock import utcnow
from rule_compiler.definitions import Event
from rule_compiler.errors import RefusedError

OUTBOX_TABLE = "rule_engine_outbox"
#: The pg_notify channel the Postgres trigger signals after each insert (payload ``table:id``).
NOTIFY_CHANNEL = "rule_engine_outbox"
CLIENT_ID_INDEX = "ux_rule_engine_outbox_client_event_id"
#: How long :func:`ensure_outbox` waits for a lock (its advisory lock, the outbox tables') on Postgres.
ENSURE_LOCK_TIMEOUT_SECONDS = 5.0
#: SQLSTATE of a ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"

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
    # set for events pushed over REST (the client's event id); NULL for trigger-captured rows
    sa.Column("client_event_id", sa.String(200), nullable=True),
    # who made the change (ADR 0013): the transaction's `automation.actor` setting, or a pushed event's caller
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Index("ix_rule_engine_outbox_table_name_id", "table_name", "id"),
    sa.Index(CLIENT_ID_INDEX, "table_name", "client_event_id", unique=True),
    # ids must never be reused (cursors are ids): without AUTOINCREMENT SQLite reuses the largest
    # rowid once a purge deletes it
    sqlite_autoincrement=True,
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
    """Create the outbox tables (and their indexes) if missing, and upgrade an older outbox.

    Outboxes created before events could be pushed over REST lack ``client_event_id`` and its
    unique index; both are added here (idempotent, DDL only when something is missing).
    """
    if conn.dialect.name != "postgresql":
        _metadata.create_all(conn, checkfirst=True)
        _upgrade_client_event_id(conn)
        return
    # Concurrent first calls would race on the DDL, so they take a transaction advisory lock; any
    # lock here (that one, the tables' own) is waited for ENSURE_LOCK_TIMEOUT_SECONDS at most, then
    # it fails (SQLSTATE 55P03) instead of queueing behind a session that holds it. The caller's
    # lock_timeout is restored afterwards.
    before = conn.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar_one()
    conn.execute(
        sa.text("SELECT set_config('lock_timeout', :timeout, true)"),
        {"timeout": f"{int(ENSURE_LOCK_TIMEOUT_SECONDS * 1000)}ms"},
    )
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('rule_engine_outbox'))")
    _metadata.create_all(conn, checkfirst=True)
    _upgrade_client_event_id(conn)
    conn.execute(sa.text("SELECT set_config('lock_timeout', :timeout, true)"), {"timeout": before})


#: Columns added to the outbox after it first shipped: an older outbox gets them from ensure_outbox.
_ADDED_COLUMNS = ("client_event_id", "actor")


def _upgrade_client_event_id(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    columns = {column["name"] for column in inspector.get_columns(OUTBOX_TABLE)}
    indexes = {index["name"] for index in inspector.get_indexes(OUTBOX_TABLE)}
    if set(_ADDED_COLUMNS) <= columns and CLIENT_ID_INDEX in indexes:
        return
    exists = " IF NOT EXISTS" if conn.dialect.name == "postgresql" else ""
    for name in _ADDED_COLUMNS:  # SQLite has no ADD COLUMN IF NOT EXISTS: checked above
        if name not in columns:
            conn.exec_driver_sql(f"ALTER TABLE {OUTBOX_TABLE} ADD COLUMN{exists} {name} VARCHAR(200)")
    conn.exec_driver_sql(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {CLIENT_ID_INDEX} ON {OUTBOX_TABLE} (table_name, client_event_id)"
    )


#: Outboxes (by database URL) known to have the ``actor`` column; one without it (made before ADR 0013
#: and not upgraded by ``events install`` yet) is read without it, and asked again next time.
_WITH_ACTOR: set[str] = set()


def event_columns(conn: sa.Connection) -> list[sa.Column[Any]]:
    """The outbox's columns to read events with: all of them, but ``actor`` only where it exists."""
    url = conn.engine.url.render_as_string(hide_password=True)
    if url not in _WITH_ACTOR:
        if "actor" not in {column["name"] for column in sa.inspect(conn).get_columns(OUTBOX_TABLE)}:
            return [column for column in outbox.c if column.name != "actor"]
        _WITH_ACTOR.add(url)
    return list(outbox.c)


def read_events(
    conn: sa.Connection, *, after_id: int, tables: list[str] | None = None, limit: int = 500
) -> list[Event]:
    """Events with an id above ``after_id``, oldest first; their ``id`` is the outbox id as text."""
    query = sa.select(*event_columns(conn)).where(outbox.c.id > after_id).order_by(outbox.c.id).limit(limit)
    if tables is not None:
        query = query.where(outbox.c.table_name.in_(tables))
    return [event_from_row(dict(row._mapping)) for row in conn.execute(query)]


def cursor_position(conn: sa.Connection, consumer: str) -> int:
    """The id of the last event ``consumer`` handed on (0 before its first)."""
    value = conn.execute(sa.select(cursors.c.last_id).where(cursors.c.consumer == consumer)).scalar()
    return int(value or 0)


def advance_cursor(conn: sa.Connection, consumer: str, to_id: int) -> int:
    """Move ``consumer``'s cursor forward to ``to_id`` (never back); returns the position after."""
    now = utcnow()
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
        actor=row.get("actor"),
    )


class EventConflictError(RefusedError):
    """A client event id was already used for a different event."""


def append_event(conn: sa.Connection, event: Event, *, client_id: str) -> tuple[Event, bool]:
    """Store a pushed event once per (table, ``client_id``); the event as stored, and whether it is new.

    The row has the shape trigger-captured rows have (an update's changed columns are computed from
    ``old`` and ``new``); on Postgres ``pg_notify`` signals it in the caller's transaction, so
    listeners wake at commit. Sending the same event again writes nothing and returns the stored
    one; the same ``client_id`` with a different event raises :class:`EventConflictError`.
    """
    if event.key is None:
        raise ValueError("an event needs its key (event_key derives it from the row)")
    stored = _row_of_client_id(conn, event.table, client_id)
    if stored is None:
        try:
            with conn.begin_nested():
                event_id = _insert(conn, event, client_id)
        except sa.exc.IntegrityError:  # a concurrent push of the same id won
            stored = _row_of_client_id(conn, event.table, client_id)
            if stored is None:
                raise
        else:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, f"{event.table}:{event_id}")))
            found = get_event(conn, event_id)
            assert found is not None  # noqa: S101 - inserted in this transaction
            return found[0].model_copy(update={"connection": event.connection}), True
    if not _same_change(stored, event):
        raise EventConflictError(
            f"event id '{client_id}' was already used for another change of table '{event.table}' "
            f"(outbox id {stored['id']}); give each new event its own id"
        )
    return event_from_row(stored).model_copy(update={"connection": event.connection}), False


def get_event(conn: sa.Connection, event_id: int) -> tuple[Event, str | None] | None:
    """The outbox event ``event_id`` and its client event id (None when captured by a trigger)."""
    row = conn.execute(sa.select(*event_columns(conn)).where(outbox.c.id == event_id)).first()
    if row is None:
        return None
    mapping = dict(row._mapping)
    return event_from_row(mapping), mapping["client_event_id"]


def event_key(event: Event, primary_key: list[str]) -> dict[str, Any]:
    """The event's key as a mapping of the primary key columns, as triggers record it.

    A scalar ``key`` names a one-column primary key; without ``key`` the columns are read from
    ``new`` (or ``old``). ValueError says what is missing or inconsistent.
    """
    columns = ", ".join(primary_key) or "none in the catalog"
    if event.key is None:
        row = event.new if event.new is not None else event.old
        if not primary_key or row is None or any(row.get(c) is None for c in primary_key):
            raise ValueError(
                f"give 'key', or the primary key column(s) of '{event.table}' ({columns}) in the row"
            )
        return {column: row[column] for column in primary_key}
    if not isinstance(event.key, dict):
        if len(primary_key) != 1:
            raise ValueError(
                f"a single key value needs a one-column primary key; '{event.table}' has: {columns}; "
                "give the key as a mapping of column to value"
            )
        key = {primary_key[0]: event.key}
    else:
        key = dict(event.key)
    if not key or (primary_key and set(key) != set(primary_key)):
        raise ValueError(f"the key must name the primary key column(s) of '{event.table}': {columns}")
    if any(value is None or isinstance(value, dict | list) for value in key.values()):
        raise ValueError("key values must be plain values (text, numbers, booleans), not null")
    for name, row in (("new", event.new), ("old", event.old)):
        differs = [c for c in key if row is not None and c in row and row[c] != key[c]]
        if differs:
            raise ValueError(f"the key does not match '{name}' in column(s): {', '.join(differs)}")
    return key


def _row_of_client_id(conn: sa.Connection, table: str, client_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(*event_columns(conn)).where(
            outbox.c.table_name == table, outbox.c.client_event_id == client_id
        )
    ).first()
    return None if row is None else dict(row._mapping)


def _insert(conn: sa.Connection, event: Event, client_id: str) -> int:
    changed = event.changed_fields
    if event.operation == "updated" and event.old is not None and event.new is not None:
        changed = event.changed()
    occurred = event.occurred_at or utcnow()
    created_at: Any = occurred
    if conn.dialect.name == "sqlite":  # the text the SQLite triggers write
        created_at = occurred.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    result = conn.execute(
        outbox.insert()
        .values(
            table_name=event.table,
            operation=event.operation,
            key_json=event.key,
            old_json=event.old,
            new_json=event.new,
            changed_json=changed,
            created_at=created_at,
            client_event_id=client_id,
            **({"actor": event.actor} if event.actor is not None else {}),
        )
        .returning(outbox.c.id)
    )
    return int(result.scalar_one())


def _same_change(row: Mapping[str, Any], event: Event) -> bool:
    return (row["operation"], row["key_json"], row["new_json"], row["old_json"]) == (
        event.operation,
        event.key,
        event.new,
        event.old,
    )


def purge_table(
    conn: sa.Connection, *, table: str, consumer: str | Sequence[str], older_than: dt.datetime
) -> int:
    """Delete ``table``'s events that ``consumer`` (every one, when several) has passed and that are
    older than ``older_than``.

    Returns how many. A consumer that has read nothing yet (cursor 0) keeps every event. On SQLite an
    outbox created without AUTOINCREMENT would hand a purged top id out again, below the cursors, so
    there the newest event of the whole outbox is kept.
    """
    names = [consumer] if isinstance(consumer, str) else list(consumer)
    through = min(cursor_position(conn, name) for name in names) if names else 0
    if conn.dialect.name == "sqlite" and not _sqlite_ids_never_reused(conn):
        newest = conn.execute(sa.select(sa.func.max(outbox.c.id))).scalar()
        through = min(through, int(newest or 0) - 1)
    if through <= 0:
        return 0
    cutoff: Any = older_than
    if conn.dialect.name == "sqlite":  # the ISO text the SQLite triggers write
        cutoff = older_than.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return int(
        conn.execute(
            outbox.delete().where(
                outbox.c.table_name == table, outbox.c.id <= through, outbox.c.created_at < cutoff
            )
        ).rowcount
    )


def _sqlite_ids_never_reused(conn: sa.Connection) -> bool:
    sql = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": OUTBOX_TABLE}
    ).scalar()
    return "AUTOINCREMENT" in str(sql or "").upper()
