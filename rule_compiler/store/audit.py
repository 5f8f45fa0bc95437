"""The append-only audit log: written in the transaction of the change it records.

The database refuses UPDATE and DELETE on ``audit_log`` (triggers created by the migration), so
this module only inserts and reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._bookkeeping import check_page
from rule_compiler.store._json import canonical_json, loads
from rule_compiler.store.models import AuditAction, AuditEntry
from rule_compiler.store.tables import audit_log, catalogs, definition_versions, definitions


def insert_audit(
    conn: sa.Connection,
    *,
    organization: str,
    actor: str,
    action: AuditAction,
    kind: str,
    name: str,
    version: int | None,
    hash_before: str | None,
    hash_after: str | None,
    detail: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Append one audit row (inside the caller's transaction)."""
    conn.execute(
        audit_log.insert().values(
            organization=organization,
            actor=actor,
            action=action,
            kind=kind,
            name=name,
            version=version,
            hash_before=hash_before,
            hash_after=hash_after,
            detail_json=canonical_json(detail),
            created_at=now,
        )
    )


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit listing: organizations (None: every one), actor, kind, name, action, and
    ``created_at`` from ``since`` (inclusive) to ``until`` (exclusive)."""

    organizations: Collection[str] | None = None
    actor: str | None = None
    kind: str | None = None
    name: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


_COLUMNS = (
    audit_log.c.id,
    audit_log.c.organization,
    audit_log.c.actor,
    audit_log.c.action,
    audit_log.c.kind,
    audit_log.c.name,
    audit_log.c.version,
    audit_log.c.hash_before,
    audit_log.c.hash_after,
    audit_log.c.detail_json,
    audit_log.c.created_at,
)


def query_audit(
    conn: sa.Connection, query: AuditQuery, *, limit: int, offset: int = 0
) -> tuple[list[AuditEntry], bool]:
    """A page of entries, the newest first, and whether more follow."""
    check_page(limit, offset)
    a = audit_log
    statement = sa.select(*_COLUMNS)
    if query.organizations is not None:
        statement = statement.where(a.c.organization.in_(list(query.organizations)))
    for column, value in (
        (a.c.actor, query.actor),
        (a.c.kind, query.kind),
        (a.c.name, query.name),
        (a.c.action, query.action),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(a.c.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(a.c.created_at < query.until)
    rows = conn.execute(statement.order_by(a.c.id.desc()).limit(limit + 1).offset(offset)).all()
    return [_entry(row) for row in rows[:limit]], len(rows) > limit


def version_sources(
    conn: sa.Connection, *, organization: str, kind: str, name: str, versions: Collection[int]
) -> dict[int, Any]:
    """The stored documents of some versions of a definition, or of the organization's catalog
    (``kind`` ``catalog``); a hard-deleted definition has none."""
    if kind == "catalog":
        c = catalogs
        rows = conn.execute(
            sa.select(c.c.version, c.c.catalog_json.label("source_json")).where(
                c.c.organization == organization, c.c.version.in_(list(versions))
            )
        )
    else:
        d, v = definitions, definition_versions
        rows = conn.execute(
            sa.select(v.c.version, v.c.source_json)
            .join(d, d.c.id == v.c.definition_id)
            .where(d.c.organization == organization, d.c.kind == kind, d.c.name == name)
            .where(v.c.version.in_(list(versions)))
        )
    return {row.version: loads(row.source_json) for row in rows}


def list_audit(
    conn: sa.Connection,
    *,
    organization: str | None,
    kind: str | None,
    name: str | None,
    limit: int,
) -> list[AuditEntry]:
    """The newest ``limit`` entries first, optionally for one organization or one definition."""
    query = AuditQuery(None if organization is None else [organization], kind=kind, name=name)
    return query_audit(conn, query, limit=limit)[0]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        organization=row.organization,
        actor=row.actor,
        action=row.action,
        kind=row.kind,
        name=row.name,
        version=row.version,
        hash_before=row.hash_before,
        hash_after=row.hash_after,
        detail=loads(row.detail_json),
        created_at=row.created_at,
    )
