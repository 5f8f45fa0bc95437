"""The routes of a kind's stored versions (and, for kinds with a DAG, the compiled spec): list, one
version's definition, a diff between two, restore. :func:`versioned_router` is a kind's whole router."""

# Routes are built inside functions with local Annotated aliases: annotations must stay evaluated
# (no `from __future__ import annotations`), so that FastAPI can read them.

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path

from rule_compiler.store import StoredDefinition
from rule_compiler.write_plans import restored_document
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.resource_kinds import ApiKind
from rule_engine.api.resource_router import (
    EditorCall,
    IfMatch,
    Resource,
    Version,
    precondition,
    resource_router,
)
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import RuleSpecPublic, VersionDetail, VersionDiff, VersionPublic


def versioned_router(api_kind: ApiKind) -> APIRouter:
    """Every route of one kind: :func:`resource_router`'s, then its versions'."""
    router = resource_router(api_kind)
    add_version_routes(router, Resource(api_kind))
    return router


def add_version_routes(router: APIRouter, resource: Resource) -> None:
    """The compiled spec (kinds with a DAG), versions, a diff between two, and restore."""
    kind, slug, noun = resource.kind, resource.api.slug, resource.kind.noun
    Name = Annotated[str, Path(max_length=200, description=f"the {noun}'s name (a slug)")]
    writes = errors(409, 412, 413, 428)

    if kind.has_dag:

        @router.get(
            "/{name}/spec",
            responses=errors(),
            name=f"get_{slug}_spec",
            description=f"The compiled spec of the {noun}'s current version, and its DAG id.",
        )
        def get_spec(name: Name, principal: Viewer, store: StoreDep) -> RuleSpecPublic:
            stored = resource.current(store, principal.organization, name)
            return RuleSpecPublic(
                name=stored.name,
                dag_id=stored.dag_id,
                version=stored.version,
                spec_hash=stored.spec_hash,
                compiler_version=stored.compiler_version,
                spec=json.loads(stored.spec_json),
            )

    @router.get(
        "/{name}/versions",
        responses=errors(),
        name=f"list_{slug}_versions",
        description=f"Every stored version of the {noun}, oldest first.",
    )
    def versions(name: Name, principal: Viewer, store: StoreDep) -> list[VersionPublic]:
        resource.current(store, principal.organization, name)  # deleted ones answer 404 here too
        return [
            VersionPublic(
                version=v.version,
                source_hash=v.source_hash,
                spec_hash=v.spec_hash,
                compiler_version=v.compiler_version,
                actor=v.actor,
                created_at=v.created_at,
            )
            for v in store.versions(organization=principal.organization, kind=kind.name, name=name)
        ]

    @router.get(
        "/{name}/versions/{version}",
        responses=errors(),
        name=f"get_{slug}_version",
        description=f"One stored version of the {noun}: who stored it, when, and its definition as stored.",
    )
    def version_detail(name: Name, version: Version, principal: Viewer, store: StoreDep) -> VersionDetail:
        resource.current(store, principal.organization, name)  # deleted ones answer 404 here too
        stored = store.get(organization=principal.organization, kind=kind.name, name=name, version=version)
        [info] = [
            v
            for v in store.versions(organization=principal.organization, kind=kind.name, name=name)
            if v.version == version
        ]
        return VersionDetail(
            version=info.version,
            source_hash=info.source_hash,
            spec_hash=info.spec_hash,
            compiler_version=info.compiler_version,
            actor=info.actor,
            created_at=info.created_at,
            definition=stored.source,
        )

    @router.get(
        "/{name}/versions/{from_version}/diff/{to_version}",
        responses=errors(),
        name=f"diff_{slug}_versions",
        description=f"What changed between two versions of the {noun}, at JSON paths.",
    )
    def diff(
        name: Name, from_version: Version, to_version: Version, principal: Viewer, store: StoreDep
    ) -> VersionDiff:
        def at(version: int) -> StoredDefinition:
            return store.get(organization=principal.organization, kind=kind.name, name=name, version=version)

        changes = ops.diff(at(from_version).source, at(to_version).source)
        return VersionDiff(name=name, from_version=from_version, to_version=to_version, changes=changes)

    @router.post(
        "/{name}/versions/{version}/restore",
        responses=writes,
        response_model=resource.api.written,
        name=f"restore_{slug}_version",
        description=f"Make version `version` of the {noun} the current one again, as a new version "
        "(validated and compiled as today's rules say; audited with `restored_from`). Its active flag "
        "is kept.",
    )
    def restore(*, name: Name, version: Version, call: EditorCall, if_match: IfMatch = None) -> Any:
        organization = call.principal.organization
        expected = precondition(resource.current(call.store, organization, name), if_match, noun)
        document = restored_document(call.store, organization, kind.name, name, version)
        return resource.replace(call, name, document, expected, restored_from=version)
