"""Reading compiled specs: the DAG loader's query (run on every parse) and lookups by hash."""

from __future__ import annotations

import sqlalchemy as sa

from rule_compiler.store.models import SpecRow
from rule_compiler.store.schema import compiled_specs as s
from rule_compiler.store.schema import definitions as d

_LOADABLE = (
    sa.select(d.c.dag_id, s.c.spec_json, s.c.spec_hash, d.c.active)
    .select_from(d.join(s, (s.c.definition_id == d.c.id) & (s.c.version == d.c.current_version)))
    .where(d.c.deleted_at.is_(None))
)


def loadable_specs(conn: sa.Connection, dag_id: str | None) -> list[SpecRow]:
    """One SELECT: the current compiled spec of every not deleted definition, by dag_id."""
    query = _LOADABLE if dag_id is None else _LOADABLE.where(d.c.dag_id == dag_id)  # unique index
    return [SpecRow(*row) for row in conn.execute(query.order_by(d.c.dag_id))]


def spec_by_hash(conn: sa.Connection, spec_hash: str) -> str | None:
    """The spec JSON stored under ``spec_hash``, in any version of any definition."""
    return conn.execute(
        sa.select(s.c.spec_json).where(s.c.spec_hash == spec_hash).limit(1)
    ).scalar_one_or_none()
