"""Reading rows of a catalog-allowed table, with foreign-key paths joined in as flat keys.

A *plan* (made by the compiler, ``rule_compiler.compiler.field_plan``) names the table, its primary
key, the columns rules may read and, for each path like ``customer__tier``, the joins that reach it.
Rows come back as flat dicts: ``{"id": 1, "total": 1200, "customer__tier": "vip"}``. A missing related
row leaves the path's value NULL (a LEFT JOIN), so conditions on it are false, never an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

BATCH_SIZE = 1_000


def reflect_table(conn: sa.Connection, name: str) -> sa.Table:
    """The live table (types from the database), so values bind and cast with the right types."""
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


def build_select(conn: sa.Connection, plan: Mapping[str, Any]) -> tuple[sa.Select[Any], sa.Table]:
    """``SELECT base.<allowed columns>, joined.<col> AS "<path>" FROM base LEFT JOIN ...``."""
    base = reflect_table(conn, plan["table"])
    columns: list[Any] = [base.c[name] for name in plan["columns"] if name in base.c]
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
        columns.append(current.c[spec["column"]].label(path))
    return sa.select(*columns).select_from(from_clause), base


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
