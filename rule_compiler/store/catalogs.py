"""Catalog versions per organization. Each function runs inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from rule_compiler.store import audit
from rule_compiler.store._json import canonical_json, content_hash, loads
from rule_compiler.store.models import CatalogVersion
from rule_compiler.store.tables import catalogs as c


def put_catalog(
    conn: sa.Connection,
    *,
    organization: str,
    catalog: dict[str, Any],
    actor: str,
    now: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    """Store ``catalog`` as a new version unless the latest one has the same content; its version.

    ``detail`` goes into the audit row (how the catalog was made, e.g. a sync of one connection).
    """
    catalog_hash = content_hash(catalog)
    latest = conn.execute(
        sa.select(c.c.version, c.c.catalog_hash)
        .where(c.c.organization == organization)
        .order_by(c.c.version.desc())
        .limit(1)
    ).one_or_none()
    if latest is not None and latest.catalog_hash == catalog_hash:
        return int(latest.version)
    version = 1 if latest is None else latest.version + 1
    conn.execute(
        c.insert().values(
            organization=organization,
            version=version,
            catalog_json=canonical_json(catalog),
            catalog_hash=catalog_hash,
            actor=actor,
            created_at=now,
        )
    )
    audit.insert_audit(
        conn,
        organization=organization,
        actor=actor,
        action="catalog",
        kind="catalog",
        name=organization,
        version=version,
        hash_before=None if latest is None else latest.catalog_hash,
        hash_after=catalog_hash,
        detail=detail or {},
        now=now,
    )
    return version


def get_catalog(conn: sa.Connection, organization: str) -> dict[str, Any] | None:
    """The latest catalog of ``organization``, or None when it has none."""
    text = conn.execute(
        sa.select(c.c.catalog_json)
        .where(c.c.organization == organization)
        .order_by(c.c.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    result: dict[str, Any] | None = loads(text)
    return result


def catalog_version(conn: sa.Connection, organization: str) -> int | None:
    """The current catalog version of ``organization``, or None when it has none."""
    version = conn.execute(
        sa.select(sa.func.max(c.c.version)).where(c.c.organization == organization)
    ).scalar_one_or_none()
    return None if version is None else int(version)


def organizations(conn: sa.Connection) -> list[str]:
    """Every organization that has a catalog, sorted."""
    return list(conn.execute(sa.select(c.c.organization).distinct().order_by(c.c.organization)).scalars())


def versions(conn: sa.Connection, organization: str, *, limit: int | None = None) -> list[CatalogVersion]:
    """The organization's catalog versions, newest first (``limit``: at most that many)."""
    query = (
        sa.select(c.c.version, c.c.catalog_hash, c.c.actor, c.c.created_at)
        .where(c.c.organization == organization)
        .order_by(c.c.version.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        CatalogVersion(organization, int(row.version), row.catalog_hash, row.actor, row.created_at)
        for row in conn.execute(query)
    ]


def current(conn: sa.Connection, organization: str) -> tuple[CatalogVersion, dict[str, Any]] | None:
    """The latest version of the organization's catalog and its content, in one query; None: no catalog."""
    row = conn.execute(
        sa.select(c.c.version, c.c.catalog_hash, c.c.actor, c.c.created_at, c.c.catalog_json)
        .where(c.c.organization == organization)
        .order_by(c.c.version.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    version = CatalogVersion(organization, int(row.version), row.catalog_hash, row.actor, row.created_at)
    catalog: dict[str, Any] = loads(row.catalog_json)
    return version, catalog
