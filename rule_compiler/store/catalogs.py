"""Catalog versions per organization. Each function runs inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from rule_compiler.store import audit
from rule_compiler.store._json import canonical_json, content_hash, loads
from rule_compiler.store.schema import catalogs as c


def put_catalog(
    conn: sa.Connection, *, organization: str, catalog: dict[str, Any], actor: str, now: dt.datetime
) -> int:
    """Store ``catalog`` as a new version unless the latest one has the same content; its version."""
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
        detail={},
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
