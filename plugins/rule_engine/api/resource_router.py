"""One resource router, built for each row of the REST view's kinds table (:mod:`.resource_kinds`).

Every definition kind is served the same way: list (filtered, sorted and paged in the database),
create (a guarded "must not exist" write: two concurrent creates of one name give one 201 and one
409), validate (a dry run), get, replace (PUT) and patch (JSON merge patch) under ``If-Match``,
delete (soft, or ``?hard=true`` for admins; refused while something uses it); the compiled spec
(kinds with a DAG), versions, one version, a diff between two, and restore (version n made current
again, as a new version) are added by :mod:`.resource_versions`. A write stores the definition
and recompiles what uses it (a template's rules) in one transaction; kinds with a DAG are announced
to Airflow (re-parse, pause state).

Kind-specific routes (a rule's ``/test``, ``/trigger`` and ``/next-runs``, a report's runs) stay in
their own small modules.
"""

# Routes are built inside functions with local Annotated aliases: annotations must stay evaluated
# (no `from __future__ import annotations`), so that FastAPI can read them.

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from rule_compiler.errors import (
    AlreadyExistsError,
    BrokenDependentsError,
    ConflictError,
    NotFoundError,
    RuleValidationError,
)
from rule_compiler.store import ApplyResult, DefinitionQuery, RuleStore, StoredDefinition
from rule_compiler.store.rule_store import MUST_NOT_EXIST, Expected
from rule_engine.api import airflow_runs
from rule_engine.api import definition_ops as ops
from rule_engine.api.airflow_sync import RuleChange
from rule_engine.api.deps import Editor, Principal, StoreDep, Viewer
from rule_engine.api.resource_kinds import ApiKind
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    TRIGGER_TYPES,
    Page,
)
from rule_engine.api.schemas_templates import BrokenRule, RecompiledRule, UsedBy

log = logging.getLogger("rule_engine.api")

MAX_VERSION = 2**31 - 1  # versions are 32-bit INTEGER columns
IfMatch = Annotated[
    str | None,
    Header(description="the ETag of the version you read (428 without it, 412 when stale; `*`: any)"),
]
Sort = Literal["name", "-name", "updated_at", "-updated_at", "created_at", "-created_at"]
Version = Annotated[int, Path(ge=1, le=MAX_VERSION)]
PatchBody = Annotated[dict[str, Any], Body(description="a JSON merge patch (RFC 7396)")]
_FILTER_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "active": (bool | None, None),
    "trigger_type": (TRIGGER_TYPES | None, None),
}


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _filters_dependency(names: Sequence[str]) -> Callable[..., dict[str, Any]]:
    """A FastAPI dependency taking the row's list filters as query parameters, returning them."""
    import inspect

    def filters(**given: Any) -> dict[str, Any]:
        return given

    filters.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_FILTER_PARAMETERS[name][1],
                              annotation=_FILTER_PARAMETERS[name][0])
            for name in names
        ]
    )  # fmt: skip
    return filters


def precondition(stored: StoredDefinition, if_match: str | None, noun: str) -> tuple[int, bool]:
    """The (version, active) a write must still find; 428 without If-Match, 412 when it is stale."""
    etag = ops.etag_of(stored.version, stored.active, stored.source_hash)
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            f"send If-Match with the {noun}'s ETag (GET it first); it is now {etag}",
        )
    if not ops.etag_matches(if_match, etag):
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED,
            f"the {noun} changed since you read it (its ETag is now {etag}); GET it again",
            headers={"ETag": etag},
        )
    return stored.version, stored.active


@dataclass(frozen=True)
class Call:
    """One write request: who asks (an editor), the store, and the request and response."""

    principal: Principal
    store: RuleStore
    request: Request
    response: Response


def _editor_call(principal: Editor, store: StoreDep, request: Request, response: Response) -> Call:
    return Call(principal, store, request, response)


EditorCall = Annotated[Call, Depends(_editor_call)]


class Resource:
    """What the routes of one kind do, over :mod:`.definition_ops`; the router below is HTTP only."""

    def __init__(self, api_kind: ApiKind) -> None:
        self.api = api_kind
        self.kind = api_kind.definition_kind

    def current(self, store: RuleStore, organization: str, name: str) -> StoredDefinition:
        return store.get(organization=organization, kind=self.kind.name, name=name)

    def with_pause(self, items: list[Any]) -> list[Any]:
        """Answers of a kind with a DAG read ``active: false`` where Airflow holds the DAG paused."""
        return airflow_runs.with_airflow_pause(items) if self.kind.has_dag else items

    def fields(self, store: RuleStore, stored: StoredDefinition) -> dict[str, Any]:
        fields = ops.stored_fields(stored)
        if "used_by" in self.api.public.model_fields:
            users = ops.used_by(store, stored.organization, stored.kind, stored.name)
            fields["used_by"] = UsedBy(
                rules=users.get("rule", []),
                condition_templates=users.get("condition_template", []),
                workflows=users.get("workflow", []),
                rule_templates=users.get("rule_template", []),
                workflow_templates=users.get("workflow_template", []),
            )
        return fields

    def public(self, store: RuleStore, stored: StoredDefinition, response: Response) -> Any:
        [public] = self.with_pause([ops.answer(self.api.public, self.fields(store, stored))])
        response.headers["ETag"] = public.etag
        return public

    def notify(
        self, request: Request, organization: str, name: str, dag_id: str, active: bool | None
    ) -> None:
        """Tell Airflow about a stored change of a kind with a DAG (re-parse, pause state)."""
        on_change = request.app.state.on_change
        if on_change is not None and self.kind.has_dag:
            on_change(RuleChange(organization, name, dag_id, active))

    def write(
        self, call: Call, data: dict[str, Any], expected: Expected, restored_from: int | None = None
    ) -> Any:
        """Store the definition and recompile what uses it, in one transaction; the Written answer."""
        store, request, principal = call.store, call.request, call.principal
        organization = principal.organization
        plan = ops.plan_write(store, organization, data)
        if broken := plan.broken:
            raise BrokenDependentsError(*ops.broken_error(broken))
        results = store.apply_all(plan.writes(principal.username, expected, restored_from=restored_from))
        stored = self.current(store, organization, plan.compiled.definition.name)
        changed = results[0].status != "unchanged"
        if changed or (stored.active and self.kind.has_dag and airflow_runs.paused_in_airflow(stored.dag_id)):
            self.notify(request, organization, stored.name, results[0].dag_id, stored.active)  # unpauses it
        fields = {
            **self.public(store, stored, call.response).model_dump(),
            "warnings": ops.issues_out(plan.compiled.warnings),
            "recompiled": self._recompiled(request, organization, plan.dependents, results[1:]),
        }
        return ops.answer(self.api.written, fields)

    def _recompiled(
        self, request: Request, organization: str, dependents: list[Any], results: list[ApplyResult]
    ) -> list[RecompiledRule]:
        """The dependents whose stored spec changed, each announced to Airflow like a write of its own."""
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

    def replace(
        self,
        call: Call,
        name: str,
        document: dict[str, Any],
        expected: Expected,
        restored_from: int | None = None,
    ) -> Any:
        """PUT, PATCH (the merged document) and restore (an old version's document) of ``name``."""
        data = ops.with_organization(document, call.principal.organization, kind=self.kind.name, name=name)
        return self.write(call, data, expected, restored_from)

    def validate(self, store: RuleStore, organization: str, body: dict[str, Any]) -> Any:
        try:
            data = ops.with_organization(body, organization, kind=self.kind.name)
            plan = ops.plan_write(store, organization, data)
        except RuleValidationError as exc:
            return ops.answer(self.api.validation, {"valid": False, "errors": ops.issues_out(exc.issues)})
        broken = [
            BrokenRule(name=d.stored.name, uses=d.uses, errors=ops.issues_out(d.issues)) for d in plan.broken
        ]
        fields = {
            "valid": not broken,
            "errors": [],
            "warnings": ops.issues_out(plan.compiled.warnings),
            "dag_id": plan.compiled.dag_id,
            "spec_hash": plan.compiled.spec_hash,
            "recompiles": [d.stored.name for d in plan.dependents if d.compiled is not None],
            "broken_rules": broken,
        }
        return ops.answer(self.api.validation, fields)

    def delete(self, call: Call, name: str, *, hard: bool, if_match: str | None) -> None:
        store, principal = call.store, call.principal
        if hard and not principal.has("admin"):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a hard delete needs the admin role")
        organization = principal.organization
        try:
            stored: StoredDefinition | None = self.current(store, organization, name)
        except NotFoundError:
            # a soft-deleted definition is not found, except by a hard delete that sends `If-Match: *`
            if not hard or if_match is None or if_match.strip() != "*":
                raise
            stored = None
        expected = None if stored is None else precondition(stored, if_match, self.kind.noun)
        users = ops.used_by(store, organization, self.kind.name, name)
        if users:
            named = ", ".join(
                f"{kind.replace('_', ' ')} '{user}'" for kind, names in users.items() for user in names
            )
            raise ConflictError(f"{self.kind.noun} '{name}' is still used by {named}; change them first")
        args = {
            "organization": organization,
            "kind": self.kind.name,
            "name": name,
            "actor": principal.username,
        }
        if hard:
            store.purge(**args, expected=expected)
        else:
            store.delete_guarded(**args, expected=expected)
        if stored is not None:
            self.notify(call.request, organization, name, stored.dag_id, None)


def resource_router(api_kind: ApiKind) -> APIRouter:
    """The routes of one kind; operation ids ``<path>-<verb>_<slug>`` (``rules-get_rule``)."""
    resource = Resource(api_kind)
    kind = resource.kind
    noun, slug, path = kind.noun, api_kind.slug, api_kind.path
    router = APIRouter(prefix=path, tags=[api_kind.tag])
    Name = Annotated[str, Path(max_length=200, description=f"the {noun}'s name (a slug)")]
    DefinitionBody = Annotated[dict[str, Any], Body(description=f"a {noun} definition (docs/definitions.md)")]
    Filters = Annotated[dict[str, Any], Depends(_filters_dependency(api_kind.filters))]
    writes = errors(409, 412, 413, 428)
    patch_body = {"schema": api_kind.patch_schema}

    @router.get(
        "",
        responses=errors(),
        name=f"list_{slug}s",
        response_model=Page[api_kind.summary],  # type: ignore[name-defined]
        description=f"Your organization's {noun}s, filtered, sorted and paged (in the database).",
    )
    def list_definitions(
        *,
        principal: Viewer,
        store: StoreDep,
        filters: Filters,
        name_prefix: Annotated[str | None, Query(max_length=63)] = None,
        sort: Sort = "name",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Any:
        query = DefinitionQuery(principal.organization, kind.name, name_prefix=name_prefix, **filters)
        page = store.query_definitions(query, sort=sort, limit=limit, offset=offset)
        items = [ops.answer(api_kind.summary, ops.stored_fields(row)) for row in page.items]
        return Page[api_kind.summary](  # type: ignore[name-defined]
            items=resource.with_pause(items),
            limit=limit,
            offset=offset,
            has_more=offset + limit < page.total,
            total=page.total,
        )

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        responses=errors(409, 413),
        openapi_extra=_body_schema(api_kind.create),
        response_model=api_kind.written,
        name=f"create_{slug}",
        description=f"Validate and store a new {noun} (a deleted one of that name comes back as a new "
        "version).",
    )
    def create(body: DefinitionBody, call: EditorCall) -> Any:
        principal, store = call.principal, call.store
        data = ops.with_organization(body, principal.organization, kind=kind.name)
        name = data.get("name")
        if isinstance(name, str):  # answered before compiling; the write below is guarded too
            try:
                resource.current(store, principal.organization, name)
            except NotFoundError:
                pass
            else:
                raise AlreadyExistsError(f"{noun} '{name}' exists; change it with PUT or PATCH {path}/{name}")
        written = resource.write(call, data, MUST_NOT_EXIST)
        call.response.headers["Location"] = str(call.request.url_for(f"get_{slug}", name=written.name))
        return written

    @router.post(
        "/validate",
        responses=errors(413),
        response_model=api_kind.validation,
        name=f"validate_{slug}",
        description=f"Dry run of a {noun}: every problem with its JSON path, what it would compile to, and "
        "the stored definitions it would recompile or break. Nothing is stored.",
    )
    def validate(body: DefinitionBody, principal: Viewer, store: StoreDep) -> Any:
        return resource.validate(store, principal.organization, body)

    @router.get(
        "/{name}",
        responses=errors(),
        response_model=api_kind.public,
        name=f"get_{slug}",
        description=f"One {noun}, with its ETag (send it back in If-Match to change it).",
    )
    def get(name: Name, principal: Viewer, store: StoreDep, response: Response) -> Any:
        return resource.public(store, resource.current(store, principal.organization, name), response)

    @router.put(
        "/{name}",
        responses=writes,
        openapi_extra=_body_schema(api_kind.update),
        response_model=api_kind.written,
        name=f"replace_{slug}",
        description=f"Replace the whole {noun} (a new version; an identical one writes nothing), and "
        "recompile what uses it, in one transaction.",
    )
    def replace(*, name: Name, body: DefinitionBody, call: EditorCall, if_match: IfMatch = None) -> Any:
        stored = resource.current(call.store, call.principal.organization, name)
        return resource.replace(call, name, body, precondition(stored, if_match, noun))

    @router.patch(
        "/{name}",
        responses=writes,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/merge-patch+json": patch_body, "application/json": patch_body},
            }
        },
        response_model=api_kind.written,
        name=f"patch_{slug}",
        description=f"Change part of the {noun} with a JSON merge patch (`null` removes a key).",
    )
    def patch(*, name: Name, body: PatchBody, call: EditorCall, if_match: IfMatch = None) -> Any:
        stored = resource.current(call.store, call.principal.organization, name)
        expected = precondition(stored, if_match, noun)
        return resource.replace(call, name, ops.merge_patch(stored.source, body), expected)

    @router.delete(
        "/{name}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=errors(409, 412, 428),
        name=f"delete_{slug}",
        description=f"Delete a {noun} that nothing uses (409 names its users): hidden, deactivated, its "
        "history kept; `?hard=true` (admins) removes every version.",
    )
    def delete(
        *,
        name: Name,
        call: EditorCall,
        hard: Annotated[bool, Query(description="remove every version too (admins only)")] = False,
        if_match: IfMatch = None,
    ) -> None:
        resource.delete(call, name, hard=hard, if_match=if_match)

    return router
