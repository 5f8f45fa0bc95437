"""``/reports``: list, create, read, replace, patch, delete, validate, spec, versions, diff, next runs,
trigger and the execution log's recent runs.

Reports are served like rules (same store, ETags, audit rows and Airflow notification, through
:mod:`rule_ops`); a report compiles against its organization's catalog only (no templates), and its
SQL files are read from ``include/sql/reports/`` of the api-server (inline ``sql`` needs none).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Header, HTTPException, Path, Query, Request, Response, status

from rule_compiler.errors import NotFoundError, RuleValidationError
from rule_compiler.store import DefinitionQuery, RuleStore, StoredDefinition
from rule_engine.api import airflow_runs, rule_ops
from rule_engine.api.deps import Editor, Principal, StoreDep, Viewer
from rule_engine.api.routes import definition_routes as definitions
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    IssueOut,
    NextRuns,
    Page,
    RuleSpecPublic,
    ValidationResult,
    VersionDiff,
    VersionPublic,
)
from rule_engine.api.schemas_reports import (
    REPORT_PATCH_SCHEMA,
    ReportCreate,
    ReportPublic,
    ReportSummary,
    ReportUpdate,
    ReportWritten,
)

router = APIRouter(prefix="/reports", tags=["reports"])
log = logging.getLogger("rule_engine.api")

KIND = rule_ops.REPORT_KIND
NOUN = "report"
MAX_VERSION = 2**31 - 1  # versions are 32-bit INTEGER columns
ReportName = Annotated[str, Path(max_length=200, description="the report's name (a slug)")]
IfMatch = Annotated[
    str | None,
    Header(description="the ETag of the version you read (428 without it, 412 when stale; `*`: any)"),
]
ReportSort = Literal["name", "-name", "updated_at", "-updated_at", "created_at", "-created_at"]
ReportBody = Annotated[dict[str, Any], Body(description="a report definition (docs/definitions.md)")]
PatchBody = Annotated[dict[str, Any], Body(description="a JSON merge patch (RFC 7396)")]
WRITE_ERRORS = errors(409, 412, 413, 428)
S = TypeVar("S", bound=ReportSummary)


def _body_schema(model: type[ReportCreate]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _summary_fields(stored: StoredDefinition) -> dict[str, Any]:
    schedule = stored.source.get("schedule") or {}
    return {
        "name": stored.name,
        "organization": stored.organization,
        "dag_id": stored.dag_id,
        "active": stored.active,
        "description": str(stored.source.get("description", "")),
        "cron": str(schedule.get("cron", "")),
        "timezone": str(schedule.get("timezone") or "UTC"),
        "formats": [str(f) for f in stored.source.get("formats") or []],
        "version": stored.version,
        "etag": rule_ops.etag_of(stored.version, stored.active, stored.source_hash),
        "updated_at": stored.updated_at,
    }


def _public(stored: StoredDefinition) -> ReportPublic:
    return ReportPublic(
        **_summary_fields(stored),
        definition=stored.source,
        source_hash=stored.source_hash,
        spec_hash=stored.spec_hash,
        compiler_version=stored.compiler_version,
        updated_by=stored.actor,
        created_at=stored.created_at,
    )


def _with_airflow_pause(items: Sequence[S]) -> list[S]:
    """``items`` with ``active: false`` where Airflow holds the DAG paused (as for rules)."""
    try:
        paused = airflow_runs.paused_among([item.dag_id for item in items if item.active])
    except Exception:
        log.warning("could not read pause states from Airflow's metadata DB", exc_info=True)
        return list(items)
    return [item.model_copy(update={"active": False}) if item.dag_id in paused else item for item in items]


def _respond(response: Response, stored: StoredDefinition, warnings: list[IssueOut]) -> ReportWritten:
    [public] = _with_airflow_pause([_public(stored)])
    response.headers["ETag"] = public.etag
    return ReportWritten(**public.model_dump(), warnings=warnings)


def _current(store: RuleStore, organization: str, name: str) -> StoredDefinition:
    return store.get(organization=organization, kind=KIND, name=name)


@router.get("", responses=errors())
def list_reports(
    *,
    principal: Viewer,
    store: StoreDep,
    active: bool | None = None,
    name_prefix: Annotated[str | None, Query(max_length=63)] = None,
    sort: ReportSort = "name",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[ReportSummary]:
    """Your organization's reports, filtered, sorted and paged (in the database)."""
    query = DefinitionQuery(principal.organization, KIND, active=active, name_prefix=name_prefix)
    page = store.query_definitions(query, sort=sort, limit=limit, offset=offset)
    return Page[ReportSummary](
        items=_with_airflow_pause([ReportSummary(**_summary_fields(r)) for r in page.items]),
        limit=limit,
        offset=offset,
        has_more=offset + limit < page.total,
        total=page.total,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 413),
    openapi_extra=_body_schema(ReportCreate),
)
def create_report(
    body: ReportBody, principal: Editor, store: StoreDep, request: Request, response: Response
) -> ReportWritten:
    """Validate, compile and store a new report (a deleted report of that name comes back)."""
    data = rule_ops.with_organization(body, principal.organization, kind=KIND)
    name = data.get("name")
    if isinstance(name, str):
        try:
            _current(store, principal.organization, name)
        except NotFoundError:
            pass
        else:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"report '{name}' exists; change it with PUT or PATCH /reports/{name}",
            )
    compiled = rule_ops.compile_report_for(store, principal.organization, data)
    result = store.apply(rule_ops.apply_args(compiled, principal.username))
    stored = _current(store, principal.organization, compiled.definition.name)
    definitions.notify(request, principal.organization, stored.name, result.dag_id, stored.active)
    response.headers["Location"] = str(request.url_for("get_report", name=stored.name))
    return _respond(response, stored, rule_ops.warnings_of(compiled))


@router.post("/validate", responses=errors(413))
def validate_report(body: ReportBody, principal: Viewer, store: StoreDep) -> ValidationResult:
    """Dry run: every problem with its JSON path, and the DAG it would compile to. Nothing is stored."""
    try:
        data = rule_ops.with_organization(body, principal.organization, kind=KIND)
        compiled = rule_ops.compile_report_for(store, principal.organization, data)
    except RuleValidationError as exc:
        return ValidationResult(valid=False, errors=[IssueOut(**issue.as_dict()) for issue in exc.issues])
    return ValidationResult(
        valid=True,
        errors=[],
        warnings=rule_ops.warnings_of(compiled),
        dag_id=compiled.dag_id,
        spec_hash=compiled.spec_hash,
    )


@router.get("/{name}", responses=errors())
def get_report(name: ReportName, principal: Viewer, store: StoreDep, response: Response) -> ReportPublic:
    """One report, with its ETag (send it back in If-Match to change the report)."""
    [public] = _with_airflow_pause([_public(_current(store, principal.organization, name))])
    response.headers["ETag"] = public.etag
    return public


def _replace(
    *,
    store: RuleStore,
    request: Request,
    response: Response,
    principal: Principal,
    name: str,
    body: dict[str, Any],
    expected: tuple[int, bool],
) -> ReportWritten:
    data = rule_ops.with_organization(body, principal.organization, name=name, kind=KIND)
    compiled = rule_ops.compile_report_for(store, principal.organization, data)
    result = store.apply_guarded(rule_ops.apply_args(compiled, principal.username), expected=expected)
    stored = _current(store, principal.organization, name)
    if result.status != "unchanged" or (stored.active and airflow_runs.paused_in_airflow(stored.dag_id)):
        definitions.notify(request, principal.organization, name, result.dag_id, stored.active)
    return _respond(response, stored, rule_ops.warnings_of(compiled))


@router.put("/{name}", responses=WRITE_ERRORS, openapi_extra=_body_schema(ReportUpdate))
def replace_report(
    *,
    name: ReportName,
    body: ReportBody,
    principal: Editor,
    store: StoreDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ReportWritten:
    """Replace the whole definition (a new version; an identical one writes nothing)."""
    expected = rule_ops.precondition(_current(store, principal.organization, name), if_match, NOUN)
    return _replace(
        store=store,
        request=request,
        response=response,
        principal=principal,
        name=name,
        body=body,
        expected=expected,
    )


@router.patch(
    "/{name}",
    responses=WRITE_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {"schema": REPORT_PATCH_SCHEMA},
                "application/json": {"schema": REPORT_PATCH_SCHEMA},
            },
        }
    },
)
def patch_report(
    *,
    name: ReportName,
    body: PatchBody,
    principal: Editor,
    store: StoreDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ReportWritten:
    """Change part of the definition with a JSON merge patch (``null`` removes a key)."""
    stored = _current(store, principal.organization, name)
    expected = rule_ops.precondition(stored, if_match, NOUN)
    return _replace(
        store=store,
        request=request,
        response=response,
        principal=principal,
        name=name,
        body=rule_ops.merge_patch(stored.source, body),
        expected=expected,
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(412, 428))
def delete_report(
    *,
    name: ReportName,
    principal: Editor,
    store: StoreDep,
    request: Request,
    hard: Annotated[bool, Query(description="remove every version too (admins only)")] = False,
    if_match: IfMatch = None,
) -> None:
    """Deactivate and hide the report, keeping its history and run log; ``?hard=true`` (admins)
    removes every version."""
    if hard and not principal.has("admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a hard delete needs the admin role")
    try:
        stored: StoredDefinition | None = _current(store, principal.organization, name)
    except NotFoundError:
        # a deleted report is not found, except by a hard delete that sends `If-Match: *`
        if not hard or if_match is None or if_match.strip() != "*":
            raise
        stored = None
    expected = None if stored is None else rule_ops.precondition(stored, if_match, NOUN)
    args = {"organization": principal.organization, "kind": KIND, "name": name, "actor": principal.username}
    if hard:
        store.purge(**args, expected=expected)
    else:
        store.delete_guarded(**args, expected=expected)
    if stored is not None:
        definitions.notify(request, principal.organization, name, stored.dag_id, None)


@router.get("/{name}/spec", responses=errors())
def get_report_spec(name: ReportName, principal: Viewer, store: StoreDep) -> RuleSpecPublic:
    """The compiled spec of the current version (its SQL texts included), and its DAG id."""
    return definitions.spec_public(_current(store, principal.organization, name))


@router.get("/{name}/versions", responses=errors())
def list_report_versions(name: ReportName, principal: Viewer, store: StoreDep) -> list[VersionPublic]:
    """Every stored version, oldest first."""
    _current(store, principal.organization, name)  # deleted reports answer 404 here too
    return definitions.versions_public(store, principal.organization, KIND, name)


@router.get("/{name}/versions/{from_version}/diff/{to_version}", responses=errors())
def diff_report_versions(
    name: ReportName,
    from_version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Viewer,
    store: StoreDep,
) -> VersionDiff:
    """What changed between two versions, at JSON paths."""
    return definitions.version_diff(store, principal.organization, KIND, name, (from_version, to_version))


@router.get("/{name}/next-runs", responses=errors())
def next_report_runs(
    name: ReportName,
    principal: Viewer,
    store: StoreDep,
    count: Annotated[int, Query(ge=1, le=rule_ops.MAX_NEXT_RUNS)] = 5,
) -> NextRuns:
    """When the report runs next, in its time zone (each run reads the interval since the one before)."""
    schedule = _current(store, principal.organization, name).source["schedule"]
    cron, timezone = str(schedule["cron"]), str(schedule.get("timezone") or "UTC")
    runs = rule_ops.next_runs(cron, timezone, count, dt.datetime.now(dt.UTC))
    return NextRuns(name=name, cron=cron, timezone=timezone, runs=runs)
