"""SQL that differs between the two databases we run on (Postgres and SQLite; the rule store and
application databases): ``INSERT ... ON CONFLICT``, and whether a table exists."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def conflict_insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert | None:
    """An insert into ``table`` that takes ``on_conflict_do_*``; None on a database without one here."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    return None


def table_exists(conn: sa.Connection, name: str) -> bool:
    """Whether the table exists: one ``to_regclass`` on Postgres (no catalog reflection query to
    compile in a fresh task process), the inspector elsewhere."""
    if conn.dialect.name == "postgresql":
        quoted = conn.dialect.identifier_preparer.quote(name)
        return conn.execute(sa.text("SELECT to_regclass(:name)"), {"name": quoted}).scalar() is not None
    return bool(sa.inspect(conn).has_table(name))
