"""A table with one column per catalog type, rows to fill it, and Python-vs-SQL comparison helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from rule_compiler.conditions import compile_condition, condition_to_sql, register_sqlite_functions
from rule_compiler.definitions.conditions import ConditionNode

METADATA = sa.MetaData()
ROWS = sa.Table(
    "rows",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("s", sa.Text),
    sa.Column("i", sa.Integer),
    sa.Column("n", sa.Numeric(12, 2)),
    sa.Column("b", sa.Boolean),
    sa.Column("ts", sa.DateTime(timezone=True)),
    sa.Column("d", sa.Date),
    sa.Column("j", sa.JSON),
    sa.Column("s2", sa.Text),
    sa.Column("i2", sa.Integer),
)
COLUMN_TYPES = {
    "s": "text",
    "i": "integer",
    "n": "numeric",
    "b": "boolean",
    "ts": "timestamp",
    "d": "date",
    "j": "json",
    "s2": "text",
    "i2": "integer",
}
FIELDS = list(COLUMN_TYPES)


def make_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", lambda conn, _record: register_sqlite_functions(conn))
    return engine


def resolve(field: str) -> sa.ColumnElement[Any]:
    return ROWS.c[field]


def load(conn: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Insert ``rows`` (ids assigned) and read them back as the records Python evaluates."""
    conn.execute(ROWS.delete())
    prepared = [{"id": index, **dict.fromkeys(FIELDS), **row} for index, row in enumerate(rows, 1)]
    if prepared:
        conn.execute(ROWS.insert(), prepared)
    return [dict(row._mapping) for row in conn.execute(sa.select(ROWS).order_by(ROWS.c.id))]


def python_ids(node: ConditionNode, records: list[dict[str, Any]], now: datetime) -> list[int]:
    compiled = compile_condition(node, column_types=COLUMN_TYPES)
    return [record["id"] for record in records if compiled.matches(record, now=now)]


def sql_ids(conn: sa.Connection, node: ConditionNode, now: datetime) -> list[int]:
    where = condition_to_sql(node, resolve, now=now)
    return list(conn.scalars(sa.select(ROWS.c.id).where(where).order_by(ROWS.c.id)))
