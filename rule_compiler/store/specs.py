"""Reading compiled specs: the DAG loader's query (run on every parse) and lookups by hash."""

from __future__ import annotations

import sqlite3
import urllib.parse
from typing import Any

import sqlalchemy as sa

from rule_compiler.store.models import SpecRow, pool_name
from rule_compiler.store.tables import compiled_specs as s
from rule_compiler.store.tables import definitions as d
from rule_compiler.store.tables import organization_limits as lim

#: The kinds whose definitions are Airflow DAGs (the others, templates, are not): the kinds table's
#: rows with a lowering (``rule_compiler.kinds``, too heavy for the loader's query path to import;
#: tests/test_kinds_contract.py checks the two agree).
DAG_KINDS = ("rule", "report", "workflow")

_LOADABLE = (
    sa.select(
        d.c.dag_id, s.c.spec_json, s.c.spec_hash, d.c.active, d.c.organization, lim.c.pool_slots.is_not(None)
    )
    .select_from(
        d.join(s, (s.c.definition_id == d.c.id) & (s.c.version == d.c.current_version)).outerjoin(
            lim, lim.c.organization == d.c.organization
        )
    )
    .where(d.c.deleted_at.is_(None), d.c.kind.in_(DAG_KINDS))
)


def _spec_row(row: tuple[Any, ...]) -> SpecRow:
    """A loader row: (dag_id, spec_json, spec_hash, active, organization, pooled)."""
    dag_id, spec_json, spec_hash, active, organization, pooled = row
    return SpecRow(dag_id, spec_json, spec_hash, bool(active), pool_name(organization) if pooled else None)


def loadable_specs(conn: sa.Connection, dag_id: str | None) -> list[SpecRow]:
    """One SELECT: the current compiled spec of every not deleted rule, report and workflow, by dag_id.

    Only rule, report and workflow rows have a DAG; templates (stored under
    ``condition_template__...`` dag ids, their JSON as the "spec") are never loadable.
    """
    query = _LOADABLE if dag_id is None else _LOADABLE.where(d.c.dag_id == dag_id)  # unique index
    return [_spec_row(tuple(row)) for row in conn.execute(query.order_by(d.c.dag_id))]


#: The same query as plain SQL, for the SQLite fast path (no engine, no query compilation).
_LOADABLE_SQL = (
    "SELECT d.dag_id, s.spec_json, s.spec_hash, d.active, d.organization, l.pool_slots IS NOT NULL "
    "FROM definitions AS d "
    "JOIN compiled_specs AS s ON s.definition_id = d.id AND s.version = d.current_version "
    "LEFT JOIN organization_limits AS l ON l.organization = d.organization "
    "WHERE d.deleted_at IS NULL AND d.kind IN ('rule', 'report', 'workflow')"  # DAG_KINDS (a test checks)
)


def loadable_specs_sqlite(path: str, dag_id: str | None) -> list[SpecRow]:
    """:func:`loadable_specs` through a raw read-only ``sqlite3`` connection.

    DAG parsing runs this once per parse in a fresh process; creating an engine, compiling the query
    and running the store's connection PRAGMAs would cost several times the read itself.
    """
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        if dag_id is None:
            rows = connection.execute(_LOADABLE_SQL + " ORDER BY d.dag_id").fetchall()
        else:
            rows = connection.execute(_LOADABLE_SQL + " AND d.dag_id = ?", (dag_id,)).fetchall()
    finally:
        connection.close()
    return [_spec_row(row) for row in rows]


def spec_by_hash(conn: sa.Connection, spec_hash: str) -> str | None:
    """The spec JSON stored under ``spec_hash``, in any version of any definition."""
    return conn.execute(
        sa.select(s.c.spec_json).where(s.c.spec_hash == spec_hash).limit(1)
    ).scalar_one_or_none()
