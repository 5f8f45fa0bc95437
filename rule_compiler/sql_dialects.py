"""``INSERT ... ON CONFLICT`` for the two databases we run on (the rule store and application DBs)."""

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
