"""``/audit``: who changed what, with each change's diff (organization admins: their organization;
platform admins: every organization, or one with ``?organization=``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status

from rule_compiler.audit_changes import changes_of
from rule_compiler.json_diff import JsonChange
from rule_compiler.store.audit import AuditQuery
from rule_compiler.store.tables import AUDIT_ACTIONS
from rule_engine.api.definition_ops import public_changes
from rule_engine.api.deps import (
    CurrentUser,
    OrganizationParam,
    SettingsDep,
    StoreDep,
    current_principal,
    requires_role,
    username_of,
)
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.routes.logs import IsoDateTime, as_utc
from rule_engine.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Change, OutModel, Page

router = APIRouter(prefix="/audit", tags=["audit"])

AuditActionName = Literal["create", "update", "activate", "deactivate", "delete", "catalog"]
assert set(AuditActionName.__args__) == set(AUDIT_ACTIONS)  # type: ignore[attr-defined]  # noqa: S101


class AuditEntryPublic(OutModel):
    """One change: who, when, what (kind and name, the version it made), its details, and its diff at
    JSON paths (null for entries that change no document, or whose versions are no longer stored)."""

    id: int
    organization: str
    actor: str
    action: AuditActionName
    kind: str
    name: str
    version: int | None
    hash_before: str | None
    hash_after: str | None
    detail: dict[str, Any]
    created_at: dt.datetime
    diff: list[Change] | None


def audit_scope(
    user: CurrentUser, store: StoreDep, settings: SettingsDep, organization: OrganizationParam = None
) -> list[str] | None:
    """The organizations the caller may read the audit of: a platform admin every one (None) unless
    one is named; anyone else their organization, as its admin (403 otherwise)."""
    if organization is None and username_of(user) in settings.platform_admins:
        return None
    principal = requires_role("admin")(current_principal(user, store, settings, organization))
    return [principal.organization]


AuditScope = Annotated[list[str] | None, Depends(audit_scope)]


@router.get("", responses=errors())
def list_audit(
    *,
    scope: AuditScope,
    store: StoreDep,
    actor: Annotated[str | None, Query(max_length=200, description="who made the change")] = None,
    kind: Annotated[
        str | None, Query(max_length=64, description="rule, workflow, report, catalog, membership, run, …")
    ] = None,
    name: Annotated[
        str | None, Query(max_length=200, description="the definition's (or member's) name")
    ] = None,
    action: AuditActionName | None = None,
    since: Annotated[IsoDateTime | None, Query(description="changes at or after (ISO 8601)")] = None,
    until: Annotated[IsoDateTime | None, Query(description="changes before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[AuditEntryPublic]:
    """The audit log, newest first: every change to definitions, catalogs, memberships, runs started and
    approvals answered, with the diff of what changed."""
    since, until = as_utc(since), as_utc(until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "`since` must be before `until`")
    query = AuditQuery(scope, actor=actor, kind=kind, name=name, action=action, since=since, until=until)
    entries, has_more = store.audit_page(query, limit=limit, offset=offset)
    changes = changes_of(store, entries)
    items = [
        AuditEntryPublic(
            id=e.id,
            organization=e.organization,
            actor=e.actor,
            action=e.action,
            kind=e.kind,
            name=e.name,
            version=e.version,
            hash_before=e.hash_before,
            hash_after=e.hash_after,
            detail=e.detail if isinstance(e.detail, dict) else {},
            created_at=e.created_at,
            diff=_public_changes(changes[e.id]),
        )
        for e in entries
    ]
    return Page[AuditEntryPublic](items=items, limit=limit, offset=offset, has_more=has_more)


def _public_changes(changes: list[JsonChange] | None) -> list[Change] | None:
    return None if changes is None else public_changes(changes)
