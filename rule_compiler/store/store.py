"""``RuleStore``: the one entry point to the rule store (definitions, catalogs, automation log)."""

from __future__ import annotations

import builtins
import datetime as dt
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from rule_compiler import settings
from rule_compiler.errors import ConflictError, NotFoundError, StoreError, StoreUnavailableError
from rule_compiler.store import (
    audit,
    catalogs,
    definition_queries,
    definitions,
    memberships,
    migrate,
    rate_limits,
    run_queries,
    runs,
    specs,
)
from rule_compiler.store._db import UPGRADE_HINT, Database, utcnow
from rule_compiler.store.models import (
    ApplyResult,
    AuditAction,
    AuditEntry,
    CatalogVersion,
    DefinitionSummary,
    RunLog,
    SpecRow,
    StoredDefinition,
    VersionInfo,
)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


class RuleStore:
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

    def apply(
        self,
        *,
        organization: str,
        kind: str,
        name: str,
        dag_id: str,
        source: dict[str, Any],
        source_hash: str,
        spec_json: str,
        spec_hash: str,
        active: bool,
        actor: str,
        compiler_version: str,
    ) -> ApplyResult:
        """Store a compiled definition as a new version, with its spec and an audit row, in one transaction.

        ``unchanged`` (nothing written) when both hashes equal the current version's; a soft-deleted
        definition comes back as a new version (``created``). A ``dag_id`` held by another definition
        raises :class:`ConflictError`.
        """
        with self._db.transaction(write=True) as conn:
            return definitions.apply(
                conn,
                organization=organization,
                kind=kind,
                name=name,
                dag_id=dag_id,
                source=source,
                source_hash=source_hash,
                spec_json=spec_json,
                spec_hash=spec_hash,
                active=active,
                actor=actor,
                compiler_version=compiler_version,
                now=utcnow(),
            )

    def set_active(self, *, organization: str, kind: str, name: str, active: bool, actor: str) -> bool:
        """Activate or deactivate (audited); False, with nothing written, when already so."""
        with self._db.transaction(write=True) as conn:
            return definitions.set_active(
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
            definitions.delete(
                conn, organization=organization, kind=kind, name=name, actor=actor, now=utcnow()
            )

    def get(self, *, organization: str, kind: str, name: str, version: int | None = None) -> StoredDefinition:
        """The current version (or ``version``) of a definition that is not deleted; NotFoundError."""
        with self._db.transaction() as conn:
            return definitions.get(conn, organization=organization, kind=kind, name=name, version=version)

    def definitions_of_kind(self, organization: str, kind: str) -> builtins.list[StoredDefinition]:
        """The current version of every not deleted ``kind`` definition of ``organization``, by name."""
        with self._db.transaction() as conn:
            return definitions.of_kind(conn, organization=organization, kind=kind)

    def list(
        self, *, organization: str | None = None, kind: str | None = None, include_deleted: bool = False
    ) -> builtins.list[DefinitionSummary]:
        """Definitions ordered by organization, kind and name."""
        with self._db.transaction() as conn:
            return definitions.list_definitions(
                conn, organization=organization, kind=kind, include_deleted=include_deleted
            )

    def versions(self, *, organization: str, kind: str, name: str) -> builtins.list[VersionInfo]:
        """Every version, oldest first (deleted definitions keep their history); NotFoundError."""
        with self._db.transaction() as conn:
            return definitions.versions(conn, organization=organization, kind=kind, name=name)

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
        _check_limit(limit)
        with self._db.transaction() as conn:
            return audit.list_audit(conn, organization=organization, kind=kind, name=name, limit=limit)

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
        _check_limit(limit)
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

    # -- automation log ---------------------------------------------------------------------------

    def start_run(
        self,
        *,
        organization: str,
        rule_name: str,
        dag_id: str,
        run_id: str,
        spec_hash: str,
        trigger_type: str,
        trigger_context: dict[str, Any],
    ) -> int:
        """Open the log of a run; a retry with the same (dag_id, run_id) gets the same id back."""
        with self._db.transaction(write=True) as conn:
            return runs.start_run(
                conn,
                organization=organization,
                rule_name=rule_name,
                dag_id=dag_id,
                run_id=run_id,
                spec_hash=spec_hash,
                trigger_type=trigger_type,
                trigger_context=trigger_context,
                now=utcnow(),
            )

    def record_evaluation(self, run_pk: int, *, trace: Any, matched_count: int, status: str) -> None:
        """Store the condition trace and match count; any status but ``running`` ends the run."""
        with self._db.transaction(write=True) as conn:
            runs.record_evaluation(
                conn, run_pk, trace=trace, matched_count=matched_count, status=status, now=utcnow()
            )

    def record_action(
        self,
        run_pk: int,
        action_id: str,
        *,
        status: str,
        output: Any = None,
        error: str | None = None,
        count_attempt: bool = True,
    ) -> None:
        """Insert or update an action's result; ``attempts`` grows by one when ``count_attempt``."""
        with self._db.transaction(write=True) as conn:
            runs.record_action(
                conn,
                run_pk,
                action_id,
                status=status,
                output=output,
                error=error,
                count_attempt=count_attempt,
                now=utcnow(),
            )

    def finish_run(self, run_pk: int, status: str) -> None:
        """Set the run's final status and finish time."""
        with self._db.transaction(write=True) as conn:
            runs.finish_run(conn, run_pk, status, utcnow())

    def get_run(self, *, dag_id: str, run_id: str) -> RunLog | None:
        """One run with its action results, or None."""
        with self._db.transaction() as conn:
            return runs.get_run(conn, dag_id=dag_id, run_id=run_id)

    def list_runs(
        self,
        *,
        organization: str | None = None,
        rule_name: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> builtins.list[RunLog]:
        """The newest runs first, each with its action results."""
        _check_limit(limit)
        with self._db.transaction() as conn:
            return runs.list_runs(
                conn, organization=organization, rule_name=rule_name, status=status, limit=limit
            )

    # -- REST view: guarded writes, hard delete, memberships, log queries, health ------------------

    def _expect_current(
        self, conn: sa.Connection, organization: str, kind: str, name: str, expected: tuple[int, bool]
    ) -> None:
        """Lock the live definition and check it is still at ``expected`` (version, active)."""
        from rule_compiler.store.schema import definitions as d

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

    def apply_guarded(self, *, expected: tuple[int, bool], **apply_args: Any) -> ApplyResult:
        """:meth:`apply` to a live definition still at ``expected`` (version, active); else StaleWriteError.

        The check and the write share one transaction, with the definition row locked.
        """
        with self._db.transaction(write=True) as conn:
            self._expect_current(
                conn, apply_args["organization"], apply_args["kind"], apply_args["name"], expected
            )
            return definitions.apply(conn, **apply_args, now=utcnow())

    def apply_all(
        self, writes: Sequence[tuple[tuple[int, bool] | None, dict[str, Any]]]
    ) -> builtins.list[ApplyResult]:
        """Several :meth:`apply` writes in one transaction (a template and the rules recompiled with it).

        Each write is ``(expected, apply_args)``: an ``expected`` (version, active) is checked as in
        :meth:`apply_guarded` (StaleWriteError, and nothing is written); None writes unconditionally.
        """
        with self._db.transaction(write=True) as conn:
            results = []
            for expected, args in writes:
                if expected is not None:
                    self._expect_current(conn, args["organization"], args["kind"], args["name"], expected)
                results.append(definitions.apply(conn, **args, now=utcnow()))
            return results

    def delete_guarded(
        self, *, organization: str, kind: str, name: str, actor: str, expected: tuple[int, bool] | None
    ) -> None:
        """:meth:`delete`, refused with StaleWriteError unless still at ``expected`` (None: any)."""
        with self._db.transaction(write=True) as conn:
            if expected is not None:
                self._expect_current(conn, organization, kind, name, expected)
            definitions.delete(
                conn, organization=organization, kind=kind, name=name, actor=actor, now=utcnow()
            )

    def purge(
        self, *, organization: str, kind: str, name: str, actor: str, expected: tuple[int, bool] | None
    ) -> int:
        """Hard delete: the definition and every version and spec go; the audit log keeps its rows.

        Works on live and soft-deleted definitions (``expected`` is checked only on a live one);
        audited as ``delete`` with ``hard: true``. Returns how many versions were removed.
        """
        from rule_compiler.store.schema import compiled_specs, definition_versions
        from rule_compiler.store.schema import definitions as d

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

    def memberships_of(self, username: str) -> builtins.list[memberships.Membership]:
        """The user's memberships, by organization."""
        with self._db.transaction(single_read=True) as conn:
            return memberships.of_user(conn, username)

    def list_memberships(self, organization: str | None = None) -> builtins.list[memberships.Membership]:
        """Memberships of one organization (or all), by organization and username."""
        with self._db.transaction(single_read=True) as conn:
            return memberships.list_memberships(conn, organization)

    def get_membership(self, organization: str, username: str) -> memberships.Membership | None:
        """One membership, or None."""
        with self._db.transaction(single_read=True) as conn:
            return memberships.get(conn, organization, username)

    def put_membership(
        self, *, organization: str, username: str, role: str, actor: str
    ) -> tuple[memberships.Membership, bool]:
        """Create or change a membership (audited); ``(membership, created)``."""
        with self._db.transaction(write=True) as conn:
            return memberships.put(
                conn, organization=organization, username=username, role=role, actor=actor, now=utcnow()
            )

    def delete_membership(self, *, organization: str, username: str, actor: str) -> None:
        """Remove a membership (audited); NotFoundError when there is none."""
        with self._db.transaction(write=True) as conn:
            memberships.delete(conn, organization=organization, username=username, actor=actor, now=utcnow())

    def query_runs(
        self, query: run_queries.RunQuery, *, sort: str = "-started_at", limit: int = 50, offset: int = 0
    ) -> run_queries.RunPage:
        """A page of one organization's runs (see :mod:`rule_compiler.store.run_queries`)."""
        with self._db.transaction() as conn:
            return run_queries.query_runs(conn, query, sort=sort, limit=limit, offset=offset)

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

    def rate_limit_hit(self, key: str, *, expiry_s: float, amount: int = 1) -> tuple[int, dt.datetime]:
        """Count ``amount`` hits in the key's fixed window (see :mod:`rule_compiler.store.rate_limits`)."""
        with self._db.transaction(write=True) as conn:
            return rate_limits.hit(conn, key, expiry_s=expiry_s, amount=amount, now=utcnow())

    def rate_limit_window(self, key: str) -> tuple[int, dt.datetime] | None:
        """(hits, window end) of the key's open window, or None."""
        with self._db.transaction(single_read=True) as conn:
            return rate_limits.window(conn, key, utcnow())

    def rate_limit_clear(self, key: str | None = None) -> int:
        """Forget one key's window (None: every window); how many went."""
        with self._db.transaction(write=True) as conn:
            return rate_limits.clear(conn, key)

    def get_run_in(self, organization: str, run_pk: int) -> RunLog | None:
        """One run of ``organization`` by id, with its action results, or None."""
        with self._db.transaction() as conn:
            return run_queries.get_run_in(conn, organization, run_pk)

    def ping(self) -> str | None:
        """Reach the database (raises StoreUnavailableError); the schema revision it is at."""
        with self._db.transaction(single_read=True) as conn:
            conn.execute(sa.text("SELECT 1"))
            return migrate.current_revision(conn)


class StaleWriteError(ConflictError):
    """A guarded write found the definition changed since the caller read it (HTTP 412)."""
