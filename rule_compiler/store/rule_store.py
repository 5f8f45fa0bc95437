"""``RuleStore``: the facade of the rule store's registry (definitions, versions, specs, audit, catalogs);
its activity methods (automation log, memberships, rate limits) are in :mod:`.activity`."""

from __future__ import annotations

import builtins
import os
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from rule_compiler import settings
from rule_compiler.clock import utcnow
from rule_compiler.errors import ConflictError, NotFoundError, StoreError, StoreUnavailableError
from rule_compiler.store import (
    audit,
    catalogs,
    definition_queries,
    definition_rows,
    migrate,
    specs,
)
from rule_compiler.store._db import UPGRADE_HINT, Database
from rule_compiler.store.activity import ActivityMethods, check_limit
from rule_compiler.store.analytics_methods import AnalyticsMethods
from rule_compiler.store.approval_methods import ApprovalMethods
from rule_compiler.store.models import (
    ApplyResult,
    AuditAction,
    AuditEntry,
    CatalogVersion,
    DefinitionSummary,
    DefinitionWrite,
    SpecRow,
    StoredDefinition,
    VersionInfo,
)
from rule_compiler.store.retention_methods import RetentionMethods

#: An ``expected`` of :meth:`RuleStore.apply_all` saying the definition must not exist yet (a create).
MUST_NOT_EXIST = "must-not-exist"
#: What a write expects to find: (version, active) of a live definition, :data:`MUST_NOT_EXIST`, or
#: None (anything).
Expected = tuple[int, bool] | str | None


class RuleStore(ActivityMethods, ApprovalMethods, AnalyticsMethods, RetentionMethods):
    """Definitions with their versions and compiled specs, the audit log, catalogs and the automation log.

    SQLite (default: :func:`rule_compiler.settings.store_url`) or Postgres by URL. Creating a store
    does not connect; every method is one short transaction. Errors are :class:`StoreError`\\ s:
    :class:`StoreUnavailableError` when the database cannot be reached, :class:`NotFoundError`,
    :class:`ConflictError`. An ``engine`` passed in is used as it is (the SQLite transaction settings
    of engines the store creates are not added to it).
    """

    def __init__(self, url: str | None = None, *, engine: sa.Engine | None = None) -> None:
        if url is None:
            url = (
                engine.url.render_as_string(hide_password=False)
                if engine is not None
                else settings.store_url()
            )
        self._db = Database(url, engine)
        self._url = url
        self._engine_given = engine is not None

    def __repr__(self) -> str:
        return f"RuleStore({self._db.masked_url!r})"

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self._db.masked_url

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (created on first use)."""
        return self._db.engine

    def close(self) -> None:
        """Close pooled connections; the store reconnects when used again."""
        self._db.dispose()

    # -- schema -----------------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Create or migrate the tables (Alembic ``upgrade head``); a no-op when already current."""
        with self._db.transaction(write=True) as conn:
            migrate.upgrade(conn)

    def downgrade_all(self) -> None:
        """Drop every table of the store (Alembic ``downgrade base``). For tests."""
        with self._db.transaction(write=True) as conn:
            migrate.downgrade(conn)

    def schema_revision(self) -> str | None:
        """The migration the database is at (None before :meth:`upgrade`)."""
        with self._db.transaction() as conn:
            return migrate.current_revision(conn)

    # -- definitions ------------------------------------------------------------------------------

    def apply(self, write: DefinitionWrite) -> ApplyResult:
        """Store a compiled definition as a new version, with its spec and an audit row, in one transaction.

        ``unchanged`` (nothing written) when both hashes equal the current version's; a soft-deleted
        definition comes back as a new version (``created``). A ``dag_id`` held by another definition
        raises :class:`ConflictError`.
        """
        with self._db.transaction(write=True) as conn:
            return definition_rows.apply(conn, write, now=utcnow())

    def create(self, write: DefinitionWrite) -> ApplyResult:
        """:meth:`apply` for a definition that must not exist yet (a soft-deleted one comes back).

        :class:`AlreadyExistsError` when it exists, also when a concurrent create of the same name
        commits first: the check and the write are one guarded statement sequence, with no race.
        """
        with self._db.transaction(write=True) as conn:
            return definition_rows.apply(conn, write, now=utcnow(), create=True)

    def set_active(self, *, organization: str, kind: str, name: str, active: bool, actor: str) -> bool:
        """Activate or deactivate (audited); False, with nothing written, when already so."""
        with self._db.transaction(write=True) as conn:
            return definition_rows.set_active(
                conn,
                organization=organization,
                kind=kind,
                name=name,
                active=active,
                actor=actor,
                now=utcnow(),
            )

    def delete(self, *, organization: str, kind: str, name: str, actor: str) -> None:
        """Soft-delete (audited): hidden from the loader and listings, every version kept."""
        with self._db.transaction(write=True) as conn:
            definition_rows.delete(
                conn, organization=organization, kind=kind, name=name, actor=actor, now=utcnow()
            )

    def get(self, *, organization: str, kind: str, name: str, version: int | None = None) -> StoredDefinition:
        """The current version (or ``version``) of a definition that is not deleted; NotFoundError."""
        with self._db.transaction() as conn:
            return definition_rows.get(conn, organization=organization, kind=kind, name=name, version=version)

    def definitions_of_kind(self, organization: str, kind: str) -> builtins.list[StoredDefinition]:
        """The current version of every not deleted ``kind`` definition of ``organization``, by name."""
        with self._db.transaction() as conn:
            return definition_rows.of_kind(conn, organization=organization, kind=kind)

    def list(
        self, *, organization: str | None = None, kind: str | None = None, include_deleted: bool = False
    ) -> builtins.list[DefinitionSummary]:
        """Definitions ordered by organization, kind and name."""
        with self._db.transaction() as conn:
            return definition_rows.list_definitions(
                conn, organization=organization, kind=kind, include_deleted=include_deleted
            )

    def versions(self, *, organization: str, kind: str, name: str) -> builtins.list[VersionInfo]:
        """Every version, oldest first (deleted definitions keep their history); NotFoundError."""
        with self._db.transaction() as conn:
            return definition_rows.versions(conn, organization=organization, kind=kind, name=name)

    def loadable_specs(self, dag_id: str | None = None) -> builtins.list[SpecRow]:
        """The current spec of every definition that is not deleted, by dag_id: one SELECT."""
        sqlite_path = self._sqlite_file()
        if sqlite_path is not None:
            try:
                return specs.loadable_specs_sqlite(sqlite_path, dag_id)
            except sqlite3.Error as exc:
                if "no such table" in str(exc) or not os.path.exists(sqlite_path):
                    raise StoreError(
                        f"the rule store at {self.url} has no schema ({UPGRADE_HINT}): {exc}"
                    ) from None
                raise StoreUnavailableError(f"cannot reach the rule store at {self.url}: {exc}") from None
        with self._db.transaction(single_read=True) as conn:
            return specs.loadable_specs(conn, dag_id)

    def _sqlite_file(self) -> str | None:
        """The database file when this store is a SQLite file whose engine was not built yet."""
        if self._engine_given:
            return None
        url = sa.make_url(self._url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return str(url.database)

    def spec_by_hash(self, spec_hash: str) -> str | None:
        """The spec JSON with this hash (any version), for runs pinned to the spec they started with."""
        with self._db.transaction(single_read=True) as conn:
            return specs.spec_by_hash(conn, spec_hash)

    def audit_entries(
        self,
        *,
        organization: str | None = None,
        kind: str | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """The newest audit entries first."""
        check_limit(limit)
        with self._db.transaction() as conn:
            return audit.list_audit(conn, organization=organization, kind=kind, name=name, limit=limit)

    def audit_page(
        self, query: audit.AuditQuery, *, limit: int = 50, offset: int = 0
    ) -> tuple[builtins.list[AuditEntry], bool]:
        """A page of audit entries matching ``query``, the newest first, and whether more follow."""
        with self._db.transaction(single_read=True) as conn:
            return audit.query_audit(conn, query, limit=limit, offset=offset)

    def version_sources(
        self, *, organization: str, kind: str, name: str, versions: Collection[int]
    ) -> dict[int, Any]:
        """The stored documents of some versions of a definition (none once it is hard-deleted)."""
        with self._db.transaction(single_read=True) as conn:
            return audit.version_sources(
                conn, organization=organization, kind=kind, name=name, versions=versions
            )

    def record_audit(
        self,
        *,
        organization: str,
        actor: str,
        action: AuditAction,
        kind: str,
        name: str,
        version: int | None,
        detail: dict[str, Any],
    ) -> None:
        """Append one audit row for something done outside the store (a run started through Airflow)."""
        with self._db.transaction(write=True) as conn:
            audit.insert_audit(
                conn,
                organization=organization,
                actor=actor,
                action=action,
                kind=kind,
                name=name,
                version=version,
                hash_before=None,
                hash_after=None,
                detail=detail,
                now=utcnow(),
            )

    # -- catalogs ---------------------------------------------------------------------------------

    def put_catalog(
        self,
        *,
        organization: str,
        catalog: dict[str, Any],
        actor: str,
        detail: dict[str, Any] | None = None,
        expected_hash: str | None = None,
    ) -> int:
        """Store the catalog (audited, with ``detail``) when its content changed; the version now current.

        With ``expected_hash``, StaleWriteError (nothing written) unless the current catalog has it.
        """
        with self._db.transaction(write=True) as conn:
            if expected_hash is not None:
                found = catalogs.current(conn, organization)
                if found is None or found[0].catalog_hash != expected_hash:
                    raise StaleWriteError(f"the catalog of '{organization}' changed since it was read")
            return catalogs.put_catalog(
                conn, organization=organization, catalog=catalog, actor=actor, now=utcnow(), detail=detail
            )

    def current_catalog(self, organization: str) -> tuple[CatalogVersion, dict[str, Any]] | None:
        """The organization's current catalog version and content, or None when it has none."""
        with self._db.transaction(single_read=True) as conn:
            return catalogs.current(conn, organization)

    def catalog_versions(self, organization: str, *, limit: int = 100) -> builtins.list[CatalogVersion]:
        """The organization's catalog versions, newest first."""
        check_limit(limit)
        with self._db.transaction(single_read=True) as conn:
            return catalogs.versions(conn, organization, limit=limit)

    def get_catalog(self, organization: str) -> dict[str, Any] | None:
        """The latest catalog of the organization, or None."""
        with self._db.transaction() as conn:
            return catalogs.get_catalog(conn, organization)

    def catalog_version(self, organization: str) -> int | None:
        """The organization's current catalog version, or None when it has no catalog."""
        with self._db.transaction(single_read=True) as conn:
            return catalogs.catalog_version(conn, organization)

    def catalog_organizations(self) -> builtins.list[str]:
        """Every organization that has a catalog, sorted."""
        with self._db.transaction(single_read=True) as conn:
            return catalogs.organizations(conn)

    # -- guarded writes and hard delete (the REST view) -----------------------------------------

    def _expect_current(
        self, conn: sa.Connection, organization: str, kind: str, name: str, expected: tuple[int, bool]
    ) -> None:
        """Lock the live definition and check it is still at ``expected`` (version, active)."""
        from rule_compiler.store.tables import definitions as d

        row = conn.execute(
            sa.select(d.c.current_version, d.c.active)
            .where(
                d.c.organization == organization,
                d.c.kind == kind,
                d.c.name == name,
                d.c.deleted_at.is_(None),
            )
            .with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no {kind} {organization}/{name}")
        if (row.current_version, row.active) != expected:
            raise StaleWriteError(
                f"{kind} {organization}/{name} changed since it was read: it is at version "
                f"{row.current_version} (active={row.active}), the request expected version "
                f"{expected[0]} (active={expected[1]})"
            )

    def apply_guarded(self, write: DefinitionWrite, *, expected: tuple[int, bool]) -> ApplyResult:
        """:meth:`apply` to a live definition still at ``expected`` (version, active); else StaleWriteError.

        The check and the write share one transaction, with the definition row locked.
        """
        with self._db.transaction(write=True) as conn:
            self._expect_current(conn, write.organization, write.kind, write.name, expected)
            return definition_rows.apply(conn, write, now=utcnow())

    def apply_all(self, writes: Sequence[tuple[Expected, DefinitionWrite]]) -> builtins.list[ApplyResult]:
        """Several :meth:`apply` writes in one transaction (a template and the rules recompiled with it).

        Each write is ``(expected, write)``: an ``expected`` (version, active) is checked as in
        :meth:`apply_guarded` (StaleWriteError, and nothing is written); :data:`MUST_NOT_EXIST` as in
        :meth:`create` (AlreadyExistsError); None writes unconditionally.
        """
        with self._db.transaction(write=True) as conn:
            results = []
            for expected, write in writes:
                if isinstance(expected, tuple):
                    self._expect_current(conn, write.organization, write.kind, write.name, expected)
                now = utcnow()
                results.append(definition_rows.apply(conn, write, now=now, create=expected == MUST_NOT_EXIST))
            return results

    def delete_guarded(
        self, *, organization: str, kind: str, name: str, actor: str, expected: tuple[int, bool] | None
    ) -> None:
        """:meth:`delete`, refused with StaleWriteError unless still at ``expected`` (None: any)."""
        with self._db.transaction(write=True) as conn:
            if expected is not None:
                self._expect_current(conn, organization, kind, name, expected)
            definition_rows.delete(
                conn, organization=organization, kind=kind, name=name, actor=actor, now=utcnow()
            )

    def purge(
        self, *, organization: str, kind: str, name: str, actor: str, expected: tuple[int, bool] | None
    ) -> int:
        """Hard delete: the definition and every version and spec go; the audit log keeps its rows.

        Works on live and soft-deleted definitions (``expected`` is checked only on a live one);
        audited as ``delete`` with ``hard: true``. Returns how many versions were removed.
        """
        from rule_compiler.store.tables import compiled_specs, definition_versions
        from rule_compiler.store.tables import definitions as d

        with self._db.transaction(write=True) as conn:
            row = conn.execute(
                sa.select(d.c.id, d.c.dag_id, d.c.current_version, d.c.active, d.c.deleted_at)
                .where(d.c.organization == organization, d.c.kind == kind, d.c.name == name)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFoundError(f"no {kind} {organization}/{name}")
            if expected is not None and row.deleted_at is None:
                self._expect_current(conn, organization, kind, name, expected)
            conn.execute(compiled_specs.delete().where(compiled_specs.c.definition_id == row.id))
            removed = conn.execute(
                definition_versions.delete().where(definition_versions.c.definition_id == row.id)
            ).rowcount
            conn.execute(d.delete().where(d.c.id == row.id))
            audit.insert_audit(
                conn,
                organization=organization,
                actor=actor,
                action="delete",
                kind=kind,
                name=name,
                version=row.current_version,
                hash_before=None,
                hash_after=None,
                detail={"dag_id": row.dag_id, "hard": True, "versions_removed": removed},
                now=utcnow(),
            )
            return int(removed)

    def query_definitions(
        self,
        query: definition_queries.DefinitionQuery,
        *,
        sort: str = "name",
        limit: int = 50,
        offset: int = 0,
    ) -> definition_queries.DefinitionPage:
        """A page of definitions and the total (see :mod:`rule_compiler.store.definition_queries`)."""
        with self._db.transaction() as conn:
            return definition_queries.query_definitions(conn, query, sort=sort, limit=limit, offset=offset)


class StaleWriteError(ConflictError):
    """A guarded write found the definition changed since the caller read it (HTTP 412)."""
