"""Reading rows of a catalog-allowed table, with foreign-key paths joined in as flat keys.

A *plan* (made by the compiler, ``rule_compiler.compiler.field_plan``) names the table, its primary
key, the columns rules may read and, for each path like ``customer__tier``, the joins that reach it.
Rows come back as flat dicts: ``{"id": 1, "total": 1200, "customer__tier": "vip"}``. A missing related
row leaves the path's value NULL (a LEFT JOIN), so conditions on it are false, never an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from rule_compiler.conditions import condition_to_sql, register_sqlite_functions
from rule_compiler.definitions import ConditionNode
from rule_compiler.runtime.idempotency import key_values
from rule_compiler.sql_dialects import table_exists

BATCH_SIZE = 1_000


def reflect_table(conn: sa.Connection, name: str) -> sa.Table:
    """The live table's columns (types from the database), so values bind and cast with the right
    types; ``NoSuchTableError`` if the table is gone.

    On Postgres one ``SELECT * ... LIMIT 0`` gives the columns and their type OIDs (SQLAlchemy's
    reflection compiles and runs catalog queries that cost about 0.1 s in a fresh task process);
    elsewhere the inspector's column list (SQLite's is a cheap PRAGMA)."""
    if conn.dialect.name == "postgresql":
        return _described_table(conn, name)
    columns = sa.inspect(conn).get_columns(name)
    return sa.Table(name, sa.MetaData(), *(sa.Column(c["name"], c["type"]) for c in columns))


def _described_table(conn: sa.Connection, name: str) -> sa.Table:
    if not table_exists(conn, name):
        raise sa.exc.NoSuchTableError(name)
    result = conn.execute(sa.select(sa.text("*")).select_from(sa.table(name)).limit(0))
    description = result.cursor.description if result.cursor is not None else None
    result.close()
    return sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(column[0], _pg_type(column[1])) for column in description or ()),
    )


def _pg_type(oid: Any) -> Any:
    """SQLAlchemy type of a Postgres type OID; types not listed bind and read as the driver does."""
    factory = _PG_TYPES.get(oid)
    return factory() if factory is not None else sa.types.NULLTYPE


_PG_TYPES: dict[int, Any] = {
    16: sa.Boolean,
    20: sa.BigInteger,
    21: sa.SmallInteger,
    23: sa.Integer,
    700: sa.Float,
    701: sa.Float,
    1700: sa.Numeric,
    25: sa.Text,
    1042: sa.String,
    1043: sa.String,
    1082: sa.Date,
    1083: sa.Time,
    1114: sa.DateTime,
    1184: lambda: sa.DateTime(timezone=True),
    114: sa.JSON,
    3802: postgresql.JSONB,
    2950: sa.Uuid,
}


def build_select(conn: sa.Connection, plan: Mapping[str, Any]) -> tuple[sa.Select[Any], sa.Table]:
    """``SELECT base.<allowed columns>, joined.<col> AS "<path>" FROM base LEFT JOIN ...``."""
    from_clause, base, fields = _joined_fields(conn, plan)
    columns = [
        column if name in base.c and column.table is base else column.label(name)
        for name, column in fields.items()
    ]
    return sa.select(*columns).select_from(from_clause), base


def _joined_fields(conn: sa.Connection, plan: Mapping[str, Any]) -> tuple[Any, sa.Table, dict[str, Any]]:
    """The base table LEFT JOINed along every path, and each field's column (plain and path fields)."""
    base = reflect_table(conn, plan["table"])
    fields: dict[str, Any] = {name: base.c[name] for name in plan["columns"] if name in base.c}
    from_clause: Any = base
    aliases: dict[tuple[str, ...], Any] = {}
    for path, spec in plan["paths"].items():
        current: Any = base
        chain: tuple[str, ...] = ()
        for join in spec["joins"]:
            chain = (*chain, join["fk_column"], join["table"])
            if chain not in aliases:
                target = reflect_table(conn, join["table"]).alias(f"j{len(aliases) + 1}")
                from_clause = from_clause.outerjoin(
                    target, current.c[join["fk_column"]] == target.c[join["column"]]
                )
                aliases[chain] = target
            current = aliases[chain]
        fields[path] = current.c[spec["column"]]
    return from_clause, base, fields


def iter_rows(
    conn: sa.Connection, plan: Mapping[str, Any], keys: Sequence[Sequence[Any]] | None = None
) -> Iterator[dict[str, Any]]:
    """Every row of the plan's table (or only those whose primary key is in ``keys``), in key order."""
    query, base = build_select(conn, plan)
    pk = [base.c[name] for name in plan["primary_key"]]
    query = query.order_by(*pk)
    if keys is not None:
        if not keys:
            return
        query = query.where(
            sa.tuple_(*pk).in_([tuple(k) for k in keys]) if len(pk) > 1 else pk[0].in_([k[0] for k in keys])
        )
    result = conn.execution_options(stream_results=True, yield_per=BATCH_SIZE).execute(query)
    for row in result:
        yield dict(row._mapping)


def matching_keys(
    conn: sa.Connection, plan: Mapping[str, Any], node: ConditionNode | None, *, now: datetime, limit: int
) -> list[list[Any]]:
    """Primary keys of the rows matching ``node``, selected in SQL (same meaning as the Python
    evaluator, proven by the property tests), in key order, at most ``limit``."""
    from_clause, base, fields = _joined_fields(conn, plan)
    if conn.dialect.name == "sqlite":
        register_sqlite_functions(conn.connection.dbapi_connection)
    where = condition_to_sql(node, fields.__getitem__, now=now, column_types=plan.get("types"))
    pk = [base.c[name] for name in plan["primary_key"]]
    keys = sa.select(*pk).select_from(from_clause).where(where).order_by(*pk).limit(limit)
    return [key_values(row._mapping, plan["primary_key"]) for row in conn.execute(keys)]
