"""``/catalog`` (admins): the organization's schema snapshot and allow-lists; replace it; sync it.
``/catalog/names`` (every member): what definitions may name, for the designer's pickers.

Organization admins edit the tables and columns of the connections their catalog lists. The
connections themselves are the organization's allow-list of Airflow connection ids (whose secrets
belong to the deployment), so adding one, or changing its kind, its storage locations or its query
role (the restricted database role author SQL runs as), needs a platform administrator.
A write stores a new catalog version with an audit row; stored rules are not recompiled (as with
`rule-compiler catalog apply/sync`): those that no longer validate are listed in the answer.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

from rule_compiler import netpolicy
from rule_compiler.catalog import Catalog, ConnectionKind, Table, field_paths
from rule_compiler.catalog_reflect import MergeResult, ReflectionError, merge_connection, reflect_tables
from rule_compiler.errors import RuleValidationError
from rule_compiler.kinds import RULE
from rule_compiler.registration import compile_document
from rule_compiler.store import RuleStore
from rule_compiler.store.models import CatalogVersion
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import Admin, Principal, StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import IssueOut
from rule_engine.api.schemas_ops import (
    AllowLists,
    CatalogNames,
    CatalogPublic,
    CatalogPut,
    CatalogSyncRequest,
    CatalogSyncResult,
    CatalogVersionPublic,
    CatalogWritten,
    ConnectionNames,
    FieldPublic,
    RuleProblems,
    TableFields,
)
from rule_engine.hooks import app_database

router = APIRouter(prefix="/catalog", tags=["catalog"])
log = logging.getLogger("rule_engine.api")

MAX_VERSIONS = 1_000
#: At most this many rules are compiled against a new catalog to list the ones it breaks.
MAX_RULES_CHECKED = 500
IfMatch = Annotated[
    str | None,
    Header(description="the catalog's ETag: the write happens only if it is still current (412)"),
]


def _etag(catalog_hash: str) -> str:
    return f'"{catalog_hash}"'


def _no_catalog(organization: str) -> NoReturn:
    raise HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"organization '{organization}' has no catalog yet: PUT /catalog or POST /catalog/sync",
    )


def _allow_lists(catalog: Catalog) -> AllowLists:
    connections: dict[ConnectionKind, list[str]] = {}
    for conn_id, connection in sorted(catalog.connections.items()):
        connections.setdefault(connection.kind, []).append(conn_id)
    return AllowLists(connections=connections, webhook_hosts=sorted(netpolicy.allowed_hosts()))


def _public(version: CatalogVersion, catalog: Catalog) -> dict[str, Any]:
    return {
        "organization": version.organization,
        "version": version.version,
        "catalog_hash": version.catalog_hash,
        "etag": _etag(version.catalog_hash),
        "updated_by": version.actor,
        "updated_at": version.created_at,
        "catalog": catalog,
        "allow_lists": _allow_lists(catalog),
    }


def _current(store: RuleStore, organization: str) -> tuple[CatalogVersion, Catalog] | None:
    found = store.current_catalog(organization)
    return None if found is None else (found[0], Catalog.model_validate(found[1]))


@router.get("", responses=errors())
def get_catalog(principal: Admin, store: StoreDep, response: Response) -> CatalogPublic:
    """The current catalog: connections, tables, columns, foreign keys, and the allow-lists."""
    found = _current(store, principal.organization)
    if found is None:
        _no_catalog(principal.organization)
    version, catalog = found
    response.headers["ETag"] = _etag(version.catalog_hash)
    return CatalogPublic(**_public(version, catalog))


@router.get("/names", responses=errors())
def get_catalog_names(principal: Viewer, store: StoreDep) -> CatalogNames:
    """What definitions may name, for the designer's pickers: connections, tables, columns, field paths."""
    found = _current(store, principal.organization)
    if found is None:
        _no_catalog(principal.organization)
    version, catalog = found
    connections = []
    for name, connection in sorted(catalog.connections.items()):
        tables = [
            TableFields(
                name=table_name,
                writable=table.writable,
                columns=[FieldPublic(path=column, type=c.type) for column, c in table.columns.items()],
                fields=[FieldPublic(path=p, type=t) for p, t in field_paths(connection, table_name)],
            )
            for table_name, table in sorted(connection.tables.items())
        ]
        connections.append(ConnectionNames(name=name, kind=connection.kind, tables=tables))
    return CatalogNames(organization=principal.organization, version=version.version, connections=connections)


@router.get("/versions", responses=errors())
def list_catalog_versions(
    principal: Admin,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=MAX_VERSIONS)] = 100,
) -> list[CatalogVersionPublic]:
    """Every stored version, newest first: who stored it and when."""
    return [
        CatalogVersionPublic(
            version=v.version, catalog_hash=v.catalog_hash, actor=v.actor, created_at=v.created_at
        )
        for v in store.catalog_versions(principal.organization, limit=limit)
    ]


def _problems(body: CatalogPut, organization: str) -> list[dict[str, Any]]:
    """What the shape allows but a catalog cannot mean, as request errors at JSON paths."""
    found: list[dict[str, Any]] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        found.append({"loc": ("body", *loc), "msg": message, "type": "catalog"})

    if body.organization not in (None, organization):
        problem(
            ("organization",),
            f"the organization comes from your membership ('{organization}'); leave it out or give it",
        )
    for conn_id, connection in body.connections.items():
        if connection.kind != "database" and connection.tables:
            problem(("connections", conn_id, "tables"), f"a {connection.kind} connection has no tables")
        for name, table in connection.tables.items():
            for loc, message in _table_problems(table):
                problem(("connections", conn_id, "tables", name, *loc), message)
    return found


def _table_problems(table: Table) -> list[tuple[tuple[str | int, ...], str]]:
    columns = table.columns
    found: list[tuple[tuple[str | int, ...], str]] = []
    if table.soft_delete_column is not None and table.soft_delete_column not in columns:
        found.append((("soft_delete_column",), f"no column '{table.soft_delete_column}' in the table"))
    hops: set[str] = set()
    for index, fk in enumerate(table.foreign_keys):
        if fk.column not in columns:
            found.append((("foreign_keys", index, "column"), f"no column '{fk.column}' in the table"))
        if fk.name in hops or fk.name in columns:
            found.append(
                (("foreign_keys", index, "name"), f"'{fk.name}' is already a column or foreign key name")
            )
        hops.add(fk.name)
    for index, key in enumerate(table.unique_keys):
        missing = [column for column in key if column not in columns]
        if not key or missing:
            what = f"no column {', '.join(repr(m) for m in missing)}" if missing else "an empty key"
            found.append((("unique_keys", index), f"{what} in the table"))
    return found


def _check_connections(principal: Principal, current: Catalog | None, new: Catalog) -> None:
    """403 when an organization admin adds a connection id or changes a connection's kind, or, for a
    storage connection, the locations it may write under (a path of the worker's disk or a bucket),
    or, for a database connection, the query role its author SQL runs as (a database credential)."""
    if principal.platform_admin:
        return
    before = current.connections if current is not None else {}
    added = sorted(c for c in new.connections if c not in before)
    changed = sorted(
        c
        for c, v in new.connections.items()
        if c in before and (before[c].kind != v.kind or before[c].locations != v.locations)
    )
    roles = sorted(
        c for c, v in new.connections.items() if c in before and before[c].query_role != v.query_role
    )
    if added or changed or roles:
        what = "; ".join(
            part
            for part in (
                f"adds {', '.join(added)}" if added else "",
                f"changes the kind or locations of {', '.join(changed)}" if changed else "",
                f"changes the query role of {', '.join(roles)}" if roles else "",
            )
            if part
        )
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the catalog {what}: the connections an organization may use are set by a platform "
            "administrator (connection ids name Airflow connections and their secrets)",
        )


def _invalid_rules(store: RuleStore, organization: str, catalog: Catalog) -> list[RuleProblems]:
    """The organization's rules that fail validation against ``catalog``."""
    rows = store.definitions_of_kind(organization, RULE)[:MAX_RULES_CHECKED]
    if not rows:
        return []
    templates = ops.templates_of(store, organization)
    notification_templates = ops.notification_templates_of(store, organization)
    found = []
    for row in rows:
        try:
            compile_document(
                row.source, catalog, templates=templates, notification_templates=notification_templates
            )
        except RuleValidationError as exc:
            issues = [IssueOut(**issue.as_dict()) for issue in exc.issues]
            found.append(RuleProblems(name=row.name, dag_id=row.dag_id, active=row.active, errors=issues))
    return found


def _expected_hash(if_match: str | None) -> str | None:
    if if_match is None or if_match.strip() == "*":
        return None
    return if_match.strip().removeprefix("W/").strip('"')


@router.put("", responses=errors(412, 413))
def replace_catalog(
    body: CatalogPut,
    principal: Admin,
    store: StoreDep,
    response: Response,
    if_match: IfMatch = None,
) -> CatalogWritten:
    """Replace the whole catalog (a new version when it changed; 422 with every problem's path)."""
    problems = _problems(body, principal.organization)
    if problems:
        raise RequestValidationError(problems, body=body.model_dump(mode="json"))
    catalog = Catalog.model_validate({**body.model_dump(mode="json"), "organization": principal.organization})
    found = _current(store, principal.organization)
    _check_connections(principal, found[1] if found else None, catalog)
    version = store.put_catalog(
        organization=principal.organization,
        catalog=catalog.model_dump(mode="json"),
        actor=principal.username,
        detail={"via": "api"},
        expected_hash=_expected_hash(if_match),
    )
    return _written(
        store, principal.organization, response, changed=found is None or found[0].version != version
    )


def _written(store: RuleStore, organization: str, response: Response, *, changed: bool) -> CatalogWritten:
    current = _current(store, organization)
    if current is None:  # pragma: no cover - just stored
        _no_catalog(organization)
    version, catalog = current
    response.headers["ETag"] = _etag(version.catalog_hash)
    return CatalogWritten(
        **_public(version, catalog),
        changed=changed,
        invalid_rules=_invalid_rules(store, organization, catalog),
    )


def _reflect(conn_id: str, tables: list[str] | None, notes: list[str]) -> dict[str, Table]:
    """The connection's tables, reflected through the plugin's one connection seam (a connection
    Airflow cannot give answers 503 through the app's :class:`AppDatabaseError` handler)."""
    engine = app_database.engine_for(conn_id)
    try:
        return reflect_tables(engine, tables, notes=notes)
    except ReflectionError as exc:
        if isinstance(exc.__cause__, sa.exc.SQLAlchemyError):
            log.warning("catalog sync of %s could not read the database: %s", conn_id, exc)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the database of connection '{conn_id}' cannot be read; try again later",
                headers={"Retry-After": "5"},
            ) from None
        raise RequestValidationError(
            [{"loc": ("body", "tables"), "msg": str(exc), "type": "reflection"}]
        ) from None


@router.post("/sync", responses=errors(409, 412, 413))
def sync_catalog(
    body: CatalogSyncRequest, principal: Admin, store: StoreDep, response: Response
) -> CatalogSyncResult:
    """Reflect a connection's database into the catalog (what `rule-compiler catalog sync` does)."""
    organization = principal.organization
    found = _current(store, organization)
    current = found[1] if found else None
    listed = current.connections.get(body.connection) if current else None
    if listed is None and not principal.platform_admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"connection '{body.connection}' is not in your catalog: the connections an organization "
            "may use are added by a platform administrator",
        )
    if listed is not None and listed.kind != "database":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"connection '{body.connection}' is a {listed.kind} connection in the catalog; only "
            "database connections are synced",
        )
    tables = body.tables
    if tables is None and listed is not None:
        tables = sorted(listed.tables) or None
    notes: list[str] = []
    reflected = _reflect(body.connection, tables, notes)
    if not reflected:
        raise RequestValidationError(
            [{"loc": ("body", "tables"), "msg": "no table to sync", "type": "reflection"}]
        )
    merged = merge_connection(
        current, organization=organization, connection_id=body.connection, tables=reflected
    )
    new_data = merged.catalog.model_dump(mode="json")
    changed = current is None or current.model_dump(mode="json") != new_data
    version = found[0].version if found else None
    stored = False
    if changed and not body.dry_run:
        version = store.put_catalog(
            organization=organization,
            catalog=new_data,
            actor=principal.username,
            detail={"via": "sync", "connection": body.connection, "tables": sorted(reflected)},
            expected_hash=found[0].catalog_hash if found else None,
        )
        stored = True
    latest = store.catalog_versions(organization, limit=1)
    if latest:
        response.headers["ETag"] = _etag(latest[0].catalog_hash)
    return _sync_result(
        store=store,
        organization=organization,
        body=body,
        merged=merged,
        reflected=reflected,
        notes=notes,
        changed=changed,
        stored=stored,
        version=version,
    )


def _sync_result(
    *,
    store: RuleStore,
    organization: str,
    body: CatalogSyncRequest,
    merged: MergeResult,
    reflected: dict[str, Table],
    notes: list[str],
    changed: bool,
    stored: bool,
    version: int | None,
) -> CatalogSyncResult:
    changes = merged.changes
    lines = changes.summary_lines(merged.catalog.connections[body.connection].tables)
    if changes.created_catalog:
        lines.insert(0, f"+ catalog of {organization} (new)")
    elif changes.added_connection:
        lines.insert(0, f"+ connection {body.connection}")
    return CatalogSyncResult(
        organization=organization,
        connection=body.connection,
        tables_reflected=sorted(reflected),
        created_catalog=changes.created_catalog,
        added_connection=changes.added_connection,
        tables_added=changes.tables_added,
        tables_removed=changes.tables_removed,
        table_changes=changes.table_changes,
        changes=lines,
        notes=[*changes.kept, *notes],
        changed=changed,
        stored=stored,
        version=version,
        invalid_rules=_invalid_rules(store, organization, merged.catalog) if changed else [],
    )
