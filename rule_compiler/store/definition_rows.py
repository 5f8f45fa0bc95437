"""Definitions, their versions and compiled specs. Each function runs inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from rule_compiler.errors import AlreadyExistsError, ConflictError, NotFoundError
from rule_compiler.raw_sources import raw_trigger_type
from rule_compiler.store import audit, org_limits
from rule_compiler.store._json import canonical_json, loads
from rule_compiler.store.models import (
    ApplyResult,
    DefinitionSummary,
    DefinitionWrite,
    StoredDefinition,
    VersionInfo,
)
from rule_compiler.store.tables import compiled_specs, definition_versions, definitions

d, v, s = definitions, definition_versions, compiled_specs
TRIGGER_TYPE_LENGTH = 64


def _at_version(version: Any) -> sa.FromClause:
    """definitions ⋈ definition_versions ⋈ compiled_specs, at ``version`` (a column or a number)."""
    return d.join(v, (v.c.definition_id == d.c.id) & (v.c.version == version)).join(
        s, (s.c.definition_id == d.c.id) & (s.c.version == version)
    )


def _named(organization: str, kind: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(d.c.organization == organization, d.c.kind == kind, d.c.name == name)


def _label(organization: str, kind: str, name: str) -> str:
    return f"{kind} {organization}/{name}"


def trigger_type_of(source: dict[str, Any]) -> str | None:
    """The trigger type of a rule's or workflow's source (the indexed ``trigger_type`` column), or None."""
    kind = raw_trigger_type(source)
    return kind[:TRIGGER_TYPE_LENGTH] if kind else None


def apply(
    conn: sa.Connection, write: DefinitionWrite, *, now: dt.datetime, create: bool = False
) -> ApplyResult:
    """Create, update, revive or leave alone one definition (see :meth:`RuleStore.apply`).

    ``create``: the definition must not exist (a soft-deleted one comes back); AlreadyExistsError
    otherwise, also when a concurrent create of the same name commits first.
    """
    organization, kind, name, dag_id = write.organization, write.kind, write.name, write.dag_id
    source_hash, spec_hash = write.source_hash, write.spec_hash
    current = conn.execute(
        sa.select(
            d.c.id,
            d.c.dag_id,
            d.c.active,
            d.c.current_version,
            d.c.deleted_at,
            v.c.source_hash,
            s.c.spec_hash,
        )
        .select_from(_at_version(d.c.current_version))
        .where(_named(organization, kind, name))
        .with_for_update(of=d)
    ).one_or_none()
    if create and current is not None and current.deleted_at is None:
        raise AlreadyExistsError(
            f"{write.label} exists; change it with a replace or a patch (version {current.current_version})"
        )
    if (
        current is not None
        and current.deleted_at is None
        and (current.source_hash, current.spec_hash) == (source_hash, spec_hash)
    ):
        return ApplyResult("unchanged", current.current_version, current.dag_id)

    if current is None or current.dag_id != dag_id:
        holder = conn.execute(
            sa.select(d.c.organization, d.c.kind, d.c.name, d.c.deleted_at).where(d.c.dag_id == dag_id)
        ).first()
        if holder is not None and tuple(holder[:3]) == (organization, kind, name) and current is None:
            # created by a concurrent write after this one read nothing: the same answer as the insert's
            raise AlreadyExistsError(f"{write.label} exists: it was created concurrently")
        if holder is not None:
            deleted = " (deleted)" if holder.deleted_at is not None else ""
            raise ConflictError(
                f"dag_id {dag_id!r} is already used by {_label(*holder[:3])}{deleted}; "
                f"{_label(organization, kind, name)} needs another name"
            )

    revived = current is not None and current.deleted_at is not None
    if write.active and kind in org_limits.DAG_KINDS and (current is None or revived or not current.active):
        org_limits.check_one_more_active(conn, organization)
    values = {
        "dag_id": dag_id,
        "active": write.active,
        "trigger_type": trigger_type_of(write.expanded or write.source),
        "updated_at": now,
        "deleted_at": None,
    }
    if current is None:
        version = 1
        insert = d.insert().values(
            organization=organization, kind=kind, name=name, current_version=version, created_at=now, **values
        )
        try:
            with conn.begin_nested():  # a savepoint: the check below still runs after a refused insert
                definition_id = conn.execute(insert.returning(d.c.id)).scalar_one()
        except sa.exc.IntegrityError:
            if _exists(conn, organization, kind, name):
                raise AlreadyExistsError(f"{write.label} exists: it was created concurrently") from None
            raise
    else:
        version = current.current_version + 1
        definition_id = current.id
        conn.execute(d.update().where(d.c.id == definition_id).values(current_version=version, **values))

    conn.execute(
        v.insert().values(
            definition_id=definition_id,
            version=version,
            source_json=canonical_json(write.source),
            source_hash=source_hash,
            actor=write.actor,
            created_at=now,
        )
    )
    conn.execute(
        s.insert().values(
            definition_id=definition_id,
            version=version,
            dag_id=dag_id,
            spec_json=write.spec_json,
            spec_hash=spec_hash,
            compiler_version=write.compiler_version,
            created_at=now,
        )
    )
    created = current is None or revived
    detail: dict[str, Any] = {
        "dag_id": dag_id,
        "active": write.active,
        "revived": revived,
        "spec_hash_before": None if current is None else current.spec_hash,
        "spec_hash_after": spec_hash,
        "compiler_version": write.compiler_version,
    }
    if write.restored_from is not None:
        detail["restored_from"] = write.restored_from
    audit.insert_audit(
        conn,
        organization=organization,
        actor=write.actor,
        action="create" if created else "update",
        kind=kind,
        name=name,
        version=version,
        hash_before=None if current is None else current.source_hash,
        hash_after=source_hash,
        detail=detail,
        now=now,
    )
    return ApplyResult("created" if created else "updated", version, dag_id)


def _exists(conn: sa.Connection, organization: str, kind: str, name: str) -> bool:
    """Whether a definition of that name exists and is not deleted (read after a failed insert)."""
    found = conn.execute(sa.select(d.c.id).where(_named(organization, kind, name), d.c.deleted_at.is_(None)))
    return found.first() is not None


def _live(conn: sa.Connection, organization: str, kind: str, name: str) -> Any:
    """The current, not deleted definition row, locked for update; NotFoundError otherwise."""
    row = conn.execute(
        sa.select(d.c.id, d.c.dag_id, d.c.active, d.c.current_version, v.c.source_hash)
        .select_from(d.join(v, (v.c.definition_id == d.c.id) & (v.c.version == d.c.current_version)))
        .where(_named(organization, kind, name), d.c.deleted_at.is_(None))
        .with_for_update(of=d)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no {_label(organization, kind, name)}")
    return row


def set_active(
    conn: sa.Connection,
    *,
    organization: str,
    kind: str,
    name: str,
    active: bool,
    actor: str,
    now: dt.datetime,
) -> bool:
    """Activate or deactivate; False (and no audit row) when it already was in that state."""
    row = _live(conn, organization, kind, name)
    if row.active == active:
        return False
    if active and kind in org_limits.DAG_KINDS:
        org_limits.check_one_more_active(conn, organization)
    conn.execute(d.update().where(d.c.id == row.id).values(active=active, updated_at=now))
    audit.insert_audit(
        conn,
        organization=organization,
        actor=actor,
        action="activate" if active else "deactivate",
        kind=kind,
        name=name,
        version=row.current_version,
        hash_before=row.source_hash,
        hash_after=row.source_hash,
        detail={"dag_id": row.dag_id, "active_before": row.active, "active_after": active},
        now=now,
    )
    return True


def delete(
    conn: sa.Connection, *, organization: str, kind: str, name: str, actor: str, now: dt.datetime
) -> None:
    """Soft-delete: set ``deleted_at`` and deactivate; every version stays."""
    row = _live(conn, organization, kind, name)
    conn.execute(d.update().where(d.c.id == row.id).values(active=False, deleted_at=now, updated_at=now))
    audit.insert_audit(
        conn,
        organization=organization,
        actor=actor,
        action="delete",
        kind=kind,
        name=name,
        version=row.current_version,
        hash_before=row.source_hash,
        hash_after=None,
        detail={"dag_id": row.dag_id, "active_before": row.active},
        now=now,
    )


def _stored_columns() -> list[Any]:
    return [
        d.c.organization,
        d.c.kind,
        d.c.name,
        d.c.dag_id,
        d.c.active,
        v.c.version,
        d.c.current_version,
        v.c.source_json,
        v.c.source_hash,
        s.c.spec_json,
        s.c.spec_hash,
        s.c.compiler_version,
        v.c.actor,
        d.c.created_at,
        d.c.updated_at,
        d.c.trigger_type,
    ]


def _stored(row: Any) -> StoredDefinition:
    fields = row._asdict()
    fields["source"] = loads(fields.pop("source_json"))
    return StoredDefinition(**fields)


def get(
    conn: sa.Connection, *, organization: str, kind: str, name: str, version: int | None
) -> StoredDefinition:
    """The current version (or ``version``) of a not deleted definition."""
    at = d.c.current_version if version is None else sa.literal(version)
    row = conn.execute(
        sa.select(*_stored_columns())
        .select_from(_at_version(at))
        .where(_named(organization, kind, name), d.c.deleted_at.is_(None))
    ).one_or_none()
    if row is None:
        which = "" if version is None else f"version {version} of "
        raise NotFoundError(f"no {which}{_label(organization, kind, name)}")
    return _stored(row)


def of_kind(conn: sa.Connection, *, organization: str, kind: str) -> list[StoredDefinition]:
    """The current version of every not deleted definition of one kind in an organization, by name."""
    rows = conn.execute(
        sa.select(*_stored_columns())
        .select_from(_at_version(d.c.current_version))
        .where(d.c.organization == organization, d.c.kind == kind, d.c.deleted_at.is_(None))
        .order_by(d.c.name)
    )
    return [_stored(row) for row in rows]


def list_definitions(
    conn: sa.Connection, *, organization: str | None, kind: str | None, include_deleted: bool
) -> list[DefinitionSummary]:
    """Definitions ordered by organization, kind and name."""
    query = sa.select(
        d.c.organization,
        d.c.kind,
        d.c.name,
        d.c.dag_id,
        d.c.active,
        d.c.current_version,
        v.c.source_hash,
        s.c.spec_hash,
        d.c.created_at,
        d.c.updated_at,
        d.c.deleted_at,
    ).select_from(_at_version(d.c.current_version))
    if organization is not None:
        query = query.where(d.c.organization == organization)
    if kind is not None:
        query = query.where(d.c.kind == kind)
    if not include_deleted:
        query = query.where(d.c.deleted_at.is_(None))
    rows = conn.execute(query.order_by(d.c.organization, d.c.kind, d.c.name))
    return [DefinitionSummary(*row) for row in rows]


def versions(conn: sa.Connection, *, organization: str, kind: str, name: str) -> list[VersionInfo]:
    """Every version, oldest first (deleted definitions keep theirs)."""
    rows = conn.execute(
        sa.select(
            v.c.version, v.c.source_hash, s.c.spec_hash, s.c.compiler_version, v.c.actor, v.c.created_at
        )
        .select_from(_at_version(v.c.version))
        .where(_named(organization, kind, name))
        .order_by(v.c.version)
    ).all()
    if not rows:
        raise NotFoundError(f"no {_label(organization, kind, name)}")
    return [VersionInfo(*row) for row in rows]
