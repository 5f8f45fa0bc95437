"""``/rules``: list, create, read, replace, patch, delete, validate, spec, versions, diff, test, next runs."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, HTTPException, Path, Query, Request, Response, status

from rule_compiler import rule_tester
from rule_compiler.catalog import Catalog
from rule_compiler.errors import NotFoundError, RuleValidationError
from rule_compiler.store import DefinitionQuery, RuleStore, StoredDefinition
from rule_engine.api import airflow_runs, rule_ops
from rule_engine.api.deps import Editor, Principal, StoreDep, Viewer
from rule_engine.api.routes import definition_routes as definitions
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.run_trigger import start_audited_run
from rule_engine.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    RULE_PATCH_SCHEMA,
    TRIGGER_TYPES,
    IssueOut,
    NextRuns,
    Page,
    RuleCreate,
    RulePublic,
    RuleSpecPublic,
    RuleSummary,
    RuleTestRequest,
    RuleTestResult,
    RuleUpdate,
    RuleWritten,
    ValidationResult,
    VersionDiff,
    VersionPublic,
)
from rule_engine.api.schemas_ops import RunStarted, TriggerRequest
from rule_engine.hooks import app_database

router = APIRouter(prefix="/rules", tags=["rules"])
log = logging.getLogger("rule_engine.api")

KIND = rule_ops.RULE_KIND
MAX_VERSION = 2**31 - 1  # versions are 32-bit INTEGER columns
RuleName = Annotated[str, Path(max_length=200, description="the rule's name (a slug)")]
IfMatch = Annotated[
    str | None,
    Header(description="the ETag of the version you read (428 without it, 412 when stale; `*`: any)"),
]
RuleSort = Literal["name", "-name", "updated_at", "-updated_at", "created_at", "-created_at"]


def _body_schema(model: type[RuleCreate]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


RuleBody = Annotated[dict[str, Any], Body(description="a rule definition (docs/definitions.md)")]


def _respond(response: Response, stored: StoredDefinition) -> RulePublic:
    [public] = airflow_runs.with_airflow_pause([rule_ops.public_of(stored)])
    response.headers["ETag"] = public.etag
    return public


def _respond_written(response: Response, stored: StoredDefinition, warnings: list[IssueOut]) -> RuleWritten:
    return RuleWritten(**_respond(response, stored).model_dump(), warnings=warnings)


def _current(store: RuleStore, organization: str, name: str) -> StoredDefinition:
    return store.get(organization=organization, kind=KIND, name=name)


@router.get("", responses=errors())
def list_rules(
    *,
    principal: Viewer,
    store: StoreDep,
    active: bool | None = None,
    trigger_type: TRIGGER_TYPES | None = None,
    name_prefix: Annotated[str | None, Query(max_length=63)] = None,
    sort: RuleSort = "name",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[RuleSummary]:
    """Your organization's rules, filtered, sorted and paged (in the database)."""
    query = DefinitionQuery(
        principal.organization, KIND, active=active, trigger_type=trigger_type, name_prefix=name_prefix
    )
    page = store.query_definitions(query, sort=sort, limit=limit, offset=offset)
    return Page[RuleSummary](
        items=airflow_runs.with_airflow_pause([rule_ops.summary_of(r) for r in page.items]),
        limit=limit,
        offset=offset,
        has_more=offset + limit < page.total,
        total=page.total,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 413),
    openapi_extra=_body_schema(RuleCreate),
)
def create_rule(
    body: RuleBody, principal: Editor, store: StoreDep, request: Request, response: Response
) -> RuleWritten:
    """Validate, compile and store a new rule (a soft-deleted rule of that name comes back)."""
    data = rule_ops.with_organization(body, principal.organization)
    name = data.get("name")
    if isinstance(name, str):
        try:
            _current(store, principal.organization, name)
        except NotFoundError:
            pass
        else:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"rule '{name}' exists; change it with PUT or PATCH /rules/{name}"
            )
    compiled = rule_ops.compile_rule_for(store, principal.organization, data)
    result = store.apply(rule_ops.apply_args(compiled, principal.username))
    stored = _current(store, principal.organization, compiled.definition.name)
    definitions.notify(request, principal.organization, stored.name, result.dag_id, stored.active)
    response.headers["Location"] = str(request.url_for("get_rule", name=stored.name))
    return _respond_written(response, stored, rule_ops.warnings_of(compiled))


@router.post("/validate", responses=errors(413))
def validate_rule(body: RuleBody, principal: Viewer, store: StoreDep) -> ValidationResult:
    """Dry run: every problem with its JSON path, and the DAG it would compile to. Nothing is stored."""
    try:
        data = rule_ops.with_organization(body, principal.organization)
        compiled = rule_ops.compile_rule_for(store, principal.organization, data)
    except RuleValidationError as exc:
        issues = [IssueOut(**issue.as_dict()) for issue in exc.issues]
        return ValidationResult(valid=False, errors=issues)
    return ValidationResult(
        valid=True,
        errors=[],
        warnings=rule_ops.warnings_of(compiled),
        dag_id=compiled.dag_id,
        spec_hash=compiled.spec_hash,
    )


@router.get("/{name}", responses=errors())
def get_rule(name: RuleName, principal: Viewer, store: StoreDep, response: Response) -> RulePublic:
    """One rule, with its ETag (send it back in If-Match to change the rule)."""
    return _respond(response, _current(store, principal.organization, name))


def _replace(
    *,
    store: RuleStore,
    request: Request,
    response: Response,
    principal: Principal,
    name: str,
    body: dict[str, Any],
    expected: tuple[int, bool],
) -> RuleWritten:
    data = rule_ops.with_organization(body, principal.organization, name=name)
    compiled = rule_ops.compile_rule_for(store, principal.organization, data)
    result = store.apply_guarded(rule_ops.apply_args(compiled, principal.username), expected=expected)
    stored = _current(store, principal.organization, name)
    if result.status != "unchanged" or (stored.active and airflow_runs.paused_in_airflow(stored.dag_id)):
        definitions.notify(request, principal.organization, name, result.dag_id, stored.active)  # unpauses it
    return _respond_written(response, stored, rule_ops.warnings_of(compiled))


@router.put("/{name}", responses=errors(409, 412, 413, 428), openapi_extra=_body_schema(RuleUpdate))
def replace_rule(
    *,
    name: RuleName,
    body: RuleBody,
    principal: Editor,
    store: StoreDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> RuleWritten:
    """Replace the whole definition (a new version; an identical one writes nothing)."""
    expected = rule_ops.precondition(_current(store, principal.organization, name), if_match)
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
    responses=errors(409, 412, 413, 428),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {"schema": RULE_PATCH_SCHEMA},
                "application/json": {"schema": RULE_PATCH_SCHEMA},
            },
        }
    },
)
def patch_rule(
    *,
    name: RuleName,
    body: Annotated[dict[str, Any], Body(description="a JSON merge patch (RFC 7396)")],
    principal: Editor,
    store: StoreDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> RuleWritten:
    """Change part of the definition with a JSON merge patch (``null`` removes a key)."""
    stored = _current(store, principal.organization, name)
    expected = rule_ops.precondition(stored, if_match)
    merged = rule_ops.merge_patch(stored.source, body)
    return _replace(
        store=store,
        request=request,
        response=response,
        principal=principal,
        name=name,
        body=merged,
        expected=expected,
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(412, 428))
def delete_rule(
    *,
    name: RuleName,
    principal: Editor,
    store: StoreDep,
    request: Request,
    hard: Annotated[bool, Query(description="remove every version too (admins only)")] = False,
    if_match: IfMatch = None,
) -> None:
    """Deactivate and hide the rule, keeping its history; ``?hard=true`` (admins) removes it."""
    if hard and not principal.has("admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a hard delete needs the admin role")
    try:
        stored: StoredDefinition | None = _current(store, principal.organization, name)
    except NotFoundError:
        # a soft-deleted rule is not found, except by a hard delete that sends `If-Match: *`
        if not hard or if_match is None or if_match.strip() != "*":
            raise
        stored = None
    expected = None if stored is None else rule_ops.precondition(stored, if_match)
    if hard:
        store.purge(
            organization=principal.organization,
            kind=KIND,
            name=name,
            actor=principal.username,
            expected=expected,
        )
    else:
        store.delete_guarded(
            organization=principal.organization,
            kind=KIND,
            name=name,
            actor=principal.username,
            expected=expected,
        )
    if stored is not None:
        definitions.notify(request, principal.organization, name, stored.dag_id, None)


@router.get("/{name}/spec", responses=errors())
def get_rule_spec(name: RuleName, principal: Viewer, store: StoreDep) -> RuleSpecPublic:
    """The compiled spec of the current version, and its DAG id."""
    return definitions.spec_public(_current(store, principal.organization, name))


@router.get("/{name}/versions", responses=errors())
def list_rule_versions(name: RuleName, principal: Viewer, store: StoreDep) -> list[VersionPublic]:
    """Every stored version, oldest first."""
    _current(store, principal.organization, name)  # deleted rules answer 404 here too
    return definitions.versions_public(store, principal.organization, KIND, name)


@router.get("/{name}/versions/{from_version}/diff/{to_version}", responses=errors())
def diff_rule_versions(
    name: RuleName,
    from_version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Viewer,
    store: StoreDep,
) -> VersionDiff:
    """What changed between two versions, at JSON paths."""
    return definitions.version_diff(store, principal.organization, KIND, name, (from_version, to_version))


@router.post("/{name}/test", responses=errors())
def test_rule(name: RuleName, body: RuleTestRequest, principal: Viewer, store: StoreDep) -> RuleTestResult:
    """Evaluate the rule's conditions against an event (or a target row) and return the trace."""
    stored = _current(store, principal.organization, name)
    compiled = rule_ops.compile_rule_for(store, principal.organization, stored.source)
    catalog = rule_ops.catalog_of(store, principal.organization) or Catalog(
        organization=principal.organization
    )
    related = None
    if body.read_related:  # a connection Airflow cannot give: 503 (the AppDatabaseError handler)
        related = rule_tester.database_related(app_database.engine_for)
    try:
        assert compiled.rule is not None  # noqa: S101 - this route compiles rules only
        result = rule_tester.test_rule(
            compiled.rule,
            body.event,
            catalog=catalog,
            related=related,
            now=body.now or dt.datetime.now(dt.UTC),
        )
    except rule_tester.RuleTestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return RuleTestResult(**result.as_dict())


@router.get("/{name}/next-runs", responses=errors(409))
def next_rule_runs(
    name: RuleName,
    principal: Viewer,
    store: StoreDep,
    count: Annotated[int, Query(ge=1, le=rule_ops.MAX_NEXT_RUNS)] = 5,
) -> NextRuns:
    """When a scheduled (or data) rule runs next, in its time zone."""
    stored = _current(store, principal.organization, name)
    schedule = rule_ops.schedule_of(stored.source)
    if schedule is None:
        kind = rule_ops.trigger_type(stored.source)
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"rule '{name}' has a {kind} trigger: it has no schedule"
        )
    cron, timezone = schedule
    runs = rule_ops.next_runs(cron, timezone, count, dt.datetime.now(dt.UTC))
    return NextRuns(name=name, cron=cron, timezone=timezone, runs=runs)


_TRIGGER_RESPONSES = {
    **errors(409, 413),
    409: {
        **errors(409)[409],
        "description": "The rule cannot run now: inactive, paused, or not (yet) loaded by Airflow "
        "(then with Retry-After)",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}


@router.post("/{name}/trigger", status_code=status.HTTP_201_CREATED, responses=_TRIGGER_RESPONSES)
def trigger_rule(
    name: RuleName,
    principal: Editor,
    store: StoreDep,
    request: Request,
    body: Annotated[TriggerRequest | None, Body()] = None,
) -> RunStarted:
    """Start a run now through Airflow; ``payload`` becomes the run's conf (audited)."""
    stored = _current(store, principal.organization, name)
    if not stored.active:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"rule '{name}' is inactive: activate it first (PATCH /rules/{name} with {{\"active\": true}})",
        )
    trigger = body or TriggerRequest()
    conf = airflow_runs.run_conf(rule_ops.trigger_type(stored.source), trigger.payload)
    started = start_audited_run(
        store=store,
        principal=principal,
        request=request,
        stored=stored,
        conf=conf,
        note=trigger.note,
        what="rule",
        audit_kind="run",
    )
    return RunStarted(
        rule=name,
        version=stored.version,
        dag_id=started.dag_id,
        run_id=started.run_id,
        state=started.state,
        logical_date=started.logical_date,
        run_after=started.run_after,
        conf=conf,
        triggered_by=principal.username,
        url=started.url,
    )
