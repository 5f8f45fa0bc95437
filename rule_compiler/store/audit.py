"""The append-only audit log: written in the transaction of the change it records.

The database refuses UPDATE and DELETE on ``audit_log`` (triggers created by the migration), so
this module only inserts and reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from rule_compiler.store._json import canonical_json, loads
from rule_compiler.store.models import AuditAction, AuditEntry
from rule_compiler.store.tables import audit_log


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


def list_audit(
    conn: sa.Connection,
    *,
    organization: str | None,
    kind: str | None,
    name: str | None,
    limit: int,
) -> list[AuditEntry]:
    """The newest ``limit`` entries first, optionally for one organization or one definition."""
    a = audit_log
    query = sa.select(
        a.c.id,
        a.c.organization,
        a.c.actor,
        a.c.action,
        a.c.kind,
        a.c.name,
        a.c.version,
        a.c.hash_before,
        a.c.hash_after,
        a.c.detail_json,
        a.c.created_at,
    )
    if organization is not None:
        query = query.where(a.c.organization == organization)
    if kind is not None:
        query = query.where(a.c.kind == kind)
    if name is not None:
        query = query.where(a.c.name == name)
    rows = conn.execute(query.order_by(a.c.id.desc()).limit(limit))
    return [
        AuditEntry(
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
        for row in rows
    ]
