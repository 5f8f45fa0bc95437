"""Definition listings as the REST view reads them: one organization's definitions of a kind,
filtered, sorted and paged in the database.

Only the page's rows are loaded (their current version and spec), plus a ``COUNT(*)`` for the total
unless the page is the last one. The (organization, kind, trigger_type|created_at|updated_at) indexes
of migration 0005 and the unique (organization, kind, name) serve the filters and sorts. Names
compare by code point on every backend (``COLLATE "C"`` on Postgres), as Python's ``sorted`` and
``str.startswith`` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.store.definition_rows import _at_version, _stored, _stored_columns
from rule_compiler.store.models import StoredDefinition
from rule_compiler.store.tables import definitions as d

#: Sort keys a listing accepts; a leading ``-`` means descending. Ties go by name, in the same direction.
DEFINITION_SORT_KEYS = ("name", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class DefinitionQuery:
    """Filters of a definition listing (deleted definitions never show); ``None`` means "any"."""

    organization: str
    kind: str
    active: bool | None = None
    trigger_type: str | None = None
    name_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class DefinitionPage:
    """One page of definitions (current versions) and how many match in all."""

    items: list[StoredDefinition]
    total: int


def _name(conn: sa.Connection) -> Any:
    return d.c.name.collate("C") if conn.dialect.name == "postgresql" else d.c.name


def _where(conn: sa.Connection, query: DefinitionQuery) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [
        d.c.organization == query.organization,
        d.c.kind == query.kind,
        d.c.deleted_at.is_(None),
    ]
    if query.active is not None:
        clauses.append(d.c.active.is_(query.active))
    if query.trigger_type is not None:
        clauses.append(d.c.trigger_type == query.trigger_type)
    if query.name_prefix:
        prefix = query.name_prefix
        clauses.append(_name(conn) >= prefix)  # lets an index on the name start at the prefix
        clauses.append(sa.func.substr(d.c.name, 1, len(prefix)) == prefix)
    return clauses


def _order(conn: sa.Connection, sort: str) -> list[Any]:
    key = sort.removeprefix("-")
    if key not in DEFINITION_SORT_KEYS:
        keys = ", ".join(DEFINITION_SORT_KEYS)
        raise ValueError(f"unknown sort key {sort!r}; use one of {keys} (- for descending)")
    name = _name(conn)
    columns = [name] if key == "name" else [d.c[key], name]
    return [column.desc() if sort.startswith("-") else column.asc() for column in columns]


def query_definitions(
    conn: sa.Connection, query: DefinitionQuery, *, sort: str = "name", limit: int = 50, offset: int = 0
) -> DefinitionPage:
    """A page of the current versions of the definitions matching ``query``, and the total."""
    if limit < 1 or offset < 0:
        raise ValueError(f"limit must be at least 1 and offset at least 0, not {limit} and {offset}")
    where = _where(conn, query)
    rows = conn.execute(
        sa.select(*_stored_columns())
        .select_from(_at_version(d.c.current_version))
        .where(*where)
        .order_by(*_order(conn, sort))
        .limit(limit)
        .offset(offset)
    ).all()
    if rows and len(rows) < limit:  # the last page: the total needs no count
        total = offset + len(rows)
    else:
        total = conn.execute(sa.select(sa.func.count()).select_from(d).where(*where)).scalar_one()
    return DefinitionPage([_stored(row) for row in rows], int(total))
