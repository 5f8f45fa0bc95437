"""``/condition-templates`` and ``/notification-templates``: list, create, read, replace, patch, delete,
validate, versions and diffs. One router per kind, built by :func:`template_router`.

Writing a template stores it and recompiles the stored rules that use it, in one transaction, as
``rule-compiler apply`` does; a change that would make one of them invalid stores nothing (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from rule_compiler.errors import NotFoundError, RuleValidationError
from rule_compiler.kinds import CONDITION_TEMPLATE as TEMPLATE_KIND
from rule_compiler.notification_templates import NOTIFICATION_TEMPLATE_KIND
from rule_compiler.store import ApplyResult, RuleStore, StoredDefinition
from rule_engine.api import rule_ops, template_ops
from rule_engine.api.airflow_sync import RuleChange
from rule_engine.api.deps import Editor, Principal, StoreDep, Viewer
from rule_engine.api.error_handlers import error_response
from rule_engine.api.routes import definition_routes as definitions
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    IssueOut,
    Page,
    VersionDiff,
    VersionPublic,
)
from rule_engine.api.schemas_templates import (
    BrokenRule,
    ConditionTemplateCreate,
    ConditionTemplatePublic,
    ConditionTemplateUpdate,
    ConditionTemplateWritten,
    NotificationTemplateCreate,
    NotificationTemplatePublic,
    NotificationTemplateUpdate,
    NotificationTemplateWritten,
    RecompiledRule,
    TemplateSummary,
    TemplateValidationResult,
    patch_schema,
)

MAX_VERSION = 2**31 - 1  # versions are 32-bit INTEGER columns
TemplateName = Annotated[str, Path(max_length=200, description="the template's name (a slug)")]
IfMatch = Annotated[
    str | None,
    Header(description="the ETag of the version you read (428 without it, 412 when stale; `*`: any)"),
]
TemplateSort = Literal["name", "-name", "updated_at", "-updated_at", "created_at", "-created_at"]
TemplateBody = Annotated[dict[str, Any], Body(description="a template definition (docs/definitions.md)")]
PatchBody = Annotated[dict[str, Any], Body(description="a JSON merge patch (RFC 7396)")]


@dataclass(frozen=True)
class TemplateKind:
    """One kind of template and its models: ``slug`` names its routes and operation ids."""

    kind: str
    path: str
    slug: str
    create: type[BaseModel]
    update: type[BaseModel]
    public: type[BaseModel]
    written: type[BaseModel]

    @property
    def noun(self) -> str:
        return self.kind.replace("_", " ")


CONDITION = TemplateKind(
    TEMPLATE_KIND,
    "/condition-templates",
    "condition_template",
    ConditionTemplateCreate,
    ConditionTemplateUpdate,
    ConditionTemplatePublic,
    ConditionTemplateWritten,
)
NOTIFICATION = TemplateKind(
    NOTIFICATION_TEMPLATE_KIND,
    "/notification-templates",
    "notification_template",
    NotificationTemplateCreate,
    NotificationTemplateUpdate,
    NotificationTemplatePublic,
    NotificationTemplateWritten,
)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _current(spec: TemplateKind, store: RuleStore, organization: str, name: str) -> StoredDefinition:
    return store.get(organization=organization, kind=spec.kind, name=name)


def _public(spec: TemplateKind, store: RuleStore, stored: StoredDefinition, response: Response) -> Any:
    """The template as the API shows it (with its users), its ETag in the response headers."""
    users = template_ops.used_by(store, stored.organization, spec.kind, stored.name)
    response.headers["ETag"] = rule_ops.etag_of(stored.version, stored.active, stored.source_hash)
    return spec.public(**template_ops.public_fields(stored, users))


def _recompiled(
    request: Request, organization: str, dependents: list[template_ops.Dependent], results: list[ApplyResult]
) -> list[RecompiledRule]:
    """The rules whose stored spec changed, each announced to Airflow like a rule write."""
    out = []
    on_change = request.app.state.on_change
    for dependent, result in zip(dependents, results, strict=True):
        if result.status == "unchanged" or dependent.compiled is None:
            continue
        row = dependent.stored
        out.append(
            RecompiledRule(
                name=row.name,
                dag_id=result.dag_id,
                version=result.version,
                spec_hash=dependent.compiled.spec_hash,
                uses=dependent.uses,
            )
        )
        if on_change is not None:
            on_change(RuleChange(organization, row.name, result.dag_id, row.active))
    return out


def _write(
    spec: TemplateKind,
    *,
    store: RuleStore,
    request: Request,
    response: Response,
    principal: Principal,
    data: dict[str, Any],
    expected: tuple[int, bool] | None,
) -> Any:
    """Store the template and recompile the rules using it, in one transaction (409: it breaks some)."""
    organization = principal.organization
    compiled = template_ops.compile_template_for(store, organization, data)
    dependents = template_ops.dependents(store, compiled)
    if any(d.compiled is None for d in dependents):
        return error_response(status.HTTP_409_CONFLICT, *template_ops.broken_error(dependents))
    results = store.apply_all(template_ops.writes(compiled, dependents, principal.username, expected))
    recompiled = _recompiled(request, organization, dependents, results[1:])
    stored = _current(spec, store, organization, compiled.definition.name)
    return spec.written(**_public(spec, store, stored, response).model_dump(), recompiled=recompiled)


def _list(
    spec: TemplateKind,
    store: RuleStore,
    organization: str,
    *,
    name_prefix: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> Page[TemplateSummary]:
    rows = [
        r
        for r in store.definitions_of_kind(organization, spec.kind)
        if name_prefix is None or r.name.startswith(name_prefix)
    ]
    field = sort.removeprefix("-")
    rows.sort(key=lambda row: (getattr(row, field), row.name), reverse=sort.startswith("-"))
    items = [template_ops.summary_of(r) for r in rows[offset : offset + limit]]
    return Page[TemplateSummary](
        items=items, limit=limit, offset=offset, has_more=offset + limit < len(rows), total=len(rows)
    )


def _create(
    spec: TemplateKind,
    *,
    body: dict[str, Any],
    principal: Principal,
    store: RuleStore,
    request: Request,
    response: Response,
) -> Any:
    data = rule_ops.with_organization(body, principal.organization, kind=spec.kind)
    name = data.get("name")
    if isinstance(name, str):
        try:
            _current(spec, store, principal.organization, name)
        except NotFoundError:
            pass
        else:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{spec.noun} '{name}' exists; change it with PUT or PATCH {spec.path}/{name}",
            )
    written = _write(
        spec, store=store, request=request, response=response, principal=principal, data=data, expected=None
    )
    if isinstance(written, BaseModel):
        response.headers["Location"] = str(request.url_for(f"get_{spec.slug}", name=name))
    return written


def _validate(
    spec: TemplateKind, body: dict[str, Any], principal: Principal, store: RuleStore
) -> TemplateValidationResult:
    try:
        data = rule_ops.with_organization(body, principal.organization, kind=spec.kind)
        compiled = template_ops.compile_template_for(store, principal.organization, data)
    except RuleValidationError as exc:
        return TemplateValidationResult(
            valid=False, errors=[IssueOut(**issue.as_dict()) for issue in exc.issues]
        )
    dependents = template_ops.dependents(store, compiled)
    broken = [
        BrokenRule(
            name=d.stored.name, uses=d.uses, errors=[IssueOut(**issue.as_dict()) for issue in d.issues]
        )
        for d in dependents
        if d.compiled is None
    ]
    return TemplateValidationResult(
        valid=not broken,
        errors=[],
        spec_hash=compiled.spec_hash,
        recompiles=[d.stored.name for d in dependents if d.compiled is not None],
        broken_rules=broken,
    )


def _replace(
    spec: TemplateKind,
    *,
    name: str,
    body: dict[str, Any] | None,
    principal: Principal,
    store: RuleStore,
    request: Request,
    response: Response,
    if_match: str | None,
    patch: dict[str, Any] | None = None,
) -> Any:
    """PUT (``body``) or PATCH (``patch``, merged into the stored definition)."""
    stored = _current(spec, store, principal.organization, name)
    expected = rule_ops.precondition(stored, if_match, spec.noun)
    document = rule_ops.merge_patch(stored.source, patch) if body is None else body
    data = rule_ops.with_organization(document, principal.organization, name=name, kind=spec.kind)
    return _write(
        spec,
        store=store,
        request=request,
        response=response,
        principal=principal,
        data=data,
        expected=expected,
    )


def _delete(
    spec: TemplateKind, *, name: str, principal: Principal, store: RuleStore, hard: bool, if_match: str | None
) -> None:
    if hard and not principal.has("admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a hard delete needs the admin role")
    organization = principal.organization
    try:
        stored: StoredDefinition | None = _current(spec, store, organization, name)
    except NotFoundError:
        # a soft-deleted template is not found, except by a hard delete that sends `If-Match: *`
        if not hard or if_match is None or if_match.strip() != "*":
            raise
        stored = None
    expected = None if stored is None else rule_ops.precondition(stored, if_match, spec.noun)
    users = template_ops.used_by(store, organization, spec.kind, name)
    if users.rules or users.condition_templates:
        named = [f"rule '{r}'" for r in users.rules]
        named += [f"condition template '{t}'" for t in users.condition_templates]
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{spec.noun} '{name}' is still used by {', '.join(named)}; change them first",
        )
    args = {"organization": organization, "kind": spec.kind, "name": name, "actor": principal.username}
    if hard:
        store.purge(**args, expected=expected)
    else:
        store.delete_guarded(**args, expected=expected)


def _versions(spec: TemplateKind, name: str, principal: Principal, store: RuleStore) -> list[VersionPublic]:
    _current(spec, store, principal.organization, name)  # deleted templates answer 404 here too
    return definitions.versions_public(store, principal.organization, spec.kind, name)


def _diff(
    spec: TemplateKind, name: str, versions: tuple[int, int], principal: Principal, store: RuleStore
) -> VersionDiff:
    return definitions.version_diff(store, principal.organization, spec.kind, name, versions)


def template_router(spec: TemplateKind) -> APIRouter:
    """The routes of one kind of template; operation ids ``<path>-<verb>_<kind>``."""
    router = APIRouter(prefix=spec.path, tags=[spec.path.removeprefix("/")])
    noun, slug = spec.noun, spec.slug
    writes = errors(409, 412, 413, 428)
    patch_body = {"schema": patch_schema(noun)}

    @router.get(
        "",
        responses=errors(),
        name=f"list_{slug}s",
        description=f"Your organization's {noun}s, filtered by name prefix, sorted and paged.",
    )
    def list_templates(
        *,
        principal: Viewer,
        store: StoreDep,
        name_prefix: Annotated[str | None, Query(max_length=63)] = None,
        sort: TemplateSort = "name",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Page[TemplateSummary]:
        return _list(
            spec,
            store,
            principal.organization,
            name_prefix=name_prefix,
            sort=sort,
            limit=limit,
            offset=offset,
        )

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        responses=errors(409, 412, 413),
        openapi_extra=_body_schema(spec.create),
        response_model=spec.written,
        name=f"create_{slug}",
        description=f"Validate and store a new {noun} (a deleted one of that name comes back as a new "
        "version).",
    )
    def create_template(
        body: TemplateBody, principal: Editor, store: StoreDep, request: Request, response: Response
    ) -> Any:
        return _create(spec, body=body, principal=principal, store=store, request=request, response=response)

    @router.post(
        "/validate",
        responses=errors(413),
        name=f"validate_{slug}",
        description=f"Dry run of a {noun}: every problem with its JSON path, and the stored rules it would "
        "recompile or break. Nothing is stored.",
    )
    def validate_template(body: TemplateBody, principal: Viewer, store: StoreDep) -> TemplateValidationResult:
        return _validate(spec, body, principal, store)

    @router.get(
        "/{name}",
        responses=errors(),
        response_model=spec.public,
        name=f"get_{slug}",
        description=f"One {noun}, with its ETag and the rules that use it.",
    )
    def get_template(name: TemplateName, principal: Viewer, store: StoreDep, response: Response) -> Any:
        return _public(spec, store, _current(spec, store, principal.organization, name), response)

    @router.put(
        "/{name}",
        responses=writes,
        openapi_extra=_body_schema(spec.update),
        response_model=spec.written,
        name=f"replace_{slug}",
        description=f"Replace the whole {noun} (a new version; an identical one writes nothing) and "
        "recompile the rules that use it, in one transaction.",
    )
    def replace_template(
        *,
        name: TemplateName,
        body: TemplateBody,
        principal: Editor,
        store: StoreDep,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
    ) -> Any:
        return _replace(
            spec,
            name=name,
            body=body,
            principal=principal,
            store=store,
            request=request,
            response=response,
            if_match=if_match,
        )

    @router.patch(
        "/{name}",
        responses=writes,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/merge-patch+json": patch_body, "application/json": patch_body},
            }
        },
        response_model=spec.written,
        name=f"patch_{slug}",
        description=f"Change part of the {noun} with a JSON merge patch (`null` removes a key).",
    )
    def patch_template(
        *,
        name: TemplateName,
        body: PatchBody,
        principal: Editor,
        store: StoreDep,
        request: Request,
        response: Response,
        if_match: IfMatch = None,
    ) -> Any:
        return _replace(
            spec,
            name=name,
            body=None,
            patch=body,
            principal=principal,
            store=store,
            request=request,
            response=response,
            if_match=if_match,
        )

    @router.delete(
        "/{name}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=errors(409, 412, 428),
        name=f"delete_{slug}",
        description=f"Delete a {noun} that nothing uses (409 names its users): hidden, its history kept; "
        "`?hard=true` (admins) removes every version.",
    )
    def delete_template(
        *,
        name: TemplateName,
        principal: Editor,
        store: StoreDep,
        hard: Annotated[bool, Query(description="remove every version too (admins only)")] = False,
        if_match: IfMatch = None,
    ) -> None:
        _delete(spec, name=name, principal=principal, store=store, hard=hard, if_match=if_match)

    @router.get(
        "/{name}/versions",
        responses=errors(),
        name=f"list_{slug}_versions",
        description=f"Every stored version of a {noun}, oldest first.",
    )
    def list_template_versions(name: TemplateName, principal: Viewer, store: StoreDep) -> list[VersionPublic]:
        return _versions(spec, name, principal, store)

    @router.get(
        "/{name}/versions/{from_version}/diff/{to_version}",
        responses=errors(),
        name=f"diff_{slug}_versions",
        description=f"What changed between two versions of a {noun}, at JSON paths.",
    )
    def diff_template_versions(
        name: TemplateName,
        from_version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
        to_version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
        principal: Viewer,
        store: StoreDep,
    ) -> VersionDiff:
        return _diff(spec, name, (from_version, to_version), principal, store)

    return router


condition_router = template_router(CONDITION)
notification_router = template_router(NOTIFICATION)
