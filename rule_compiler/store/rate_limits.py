"""Fixed-window rate-limit counters in the store, so every api-server worker counts against one budget.

One row per key: its hits and when its window ends. A hit is one ``INSERT ... ON CONFLICT DO UPDATE
... RETURNING`` (Postgres; SQLite 3.35+), atomic on both: the row is locked (Postgres) or the write
transaction holds the database (SQLite ``BEGIN IMMEDIATE``). A window that has ended starts again at
the hit. Times are the callers' clocks (the api-server's hosts), in UTC. On Postgres a hit commits
without waiting for the WAL flush (``synchronous_commit`` off for its transaction): a server crash
may forget the last hits of a window, which a rate limit can afford, and a hit costs no disk wait.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from rule_compiler.store.runs import upsert
from rule_compiler.store.tables import api_rate_limits as t


def hit(
    conn: sa.Connection, key: str, *, expiry_s: float, amount: int, now: dt.datetime
) -> tuple[int, dt.datetime]:
    """Add ``amount`` to the key's window (a new one of ``expiry_s`` if none is open): (hits, window end)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    insert = upsert(conn, t).values(key=key, hits=amount, expires_at=now + dt.timedelta(seconds=expiry_s))
    ended = t.c.expires_at <= now
    row = conn.execute(
        insert.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={
                "hits": sa.case((ended, insert.excluded.hits), else_=t.c.hits + insert.excluded.hits),
                "expires_at": sa.case((ended, insert.excluded.expires_at), else_=t.c.expires_at),
            },
        ).returning(t.c.hits, t.c.expires_at)
    ).one()
    return int(row.hits), row.expires_at


def window(conn: sa.Connection, key: str, now: dt.datetime) -> tuple[int, dt.datetime] | None:
    """(hits, window end) of the key's open window, or None when it has none."""
    row = conn.execute(
        sa.select(t.c.hits, t.c.expires_at).where(t.c.key == key, t.c.expires_at > now)
    ).one_or_none()
    return None if row is None else (int(row.hits), row.expires_at)


def clear(conn: sa.Connection, key: str | None = None) -> int:
    """Forget the key's window (None: every window); how many rows went."""
    statement = t.delete() if key is None else t.delete().where(t.c.key == key)
    return int(conn.execute(statement).rowcount)
