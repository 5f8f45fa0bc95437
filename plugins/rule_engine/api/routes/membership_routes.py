"""``/memberships`` (admins of the organization) and ``/me`` (anyone signed in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from rule_compiler.store import Membership
from rule_compiler.store.memberships import USERNAME_PATTERN
from rule_engine.api.deps import Admin, CurrentUser, SettingsDep, StoreDep, username_of
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import Me, MembershipPublic, MembershipPut

router = APIRouter(tags=["memberships"])

Username = Annotated[str, Path(min_length=1, max_length=200, description="an Airflow username")]
#: A username given a role: letters, digits and ``. _ @ + -`` only (422 otherwise); removing one takes
#: any stored name (one stored before this check included).
NewUsername = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=USERNAME_PATTERN,
        description="an Airflow username: letters, digits and . _ @ + - (no spaces or control characters)",
    ),
]


def _public(m: Membership) -> MembershipPublic:
    return MembershipPublic(
        organization=m.organization,
        username=m.username,
        role=m.role,
        created_at=m.created_at,
        updated_at=m.updated_at,
        updated_by=m.updated_by,
    )


@router.get("/me", responses=errors())
def read_me(user: CurrentUser, store: StoreDep, settings: SettingsDep) -> Me:
    """Who you are here: your memberships, and whether you are a platform admin."""
    username = username_of(user)
    return Me(
        username=username,
        platform_admin=username in settings.platform_admins,
        memberships=[_public(m) for m in store.memberships_of(username)],
    )


@router.get("/memberships", responses=errors())
def list_memberships(principal: Admin, store: StoreDep) -> list[MembershipPublic]:
    """Every member of your organization and their role."""
    return [_public(m) for m in store.list_memberships(principal.organization)]


def _guard_last_admin(store: StoreDep, organization: str, username: str, platform_admin: bool) -> None:
    """Refuse (409) to leave an organization without an admin, unless a platform admin does it."""
    if platform_admin:
        return
    admins = [m.username for m in store.list_memberships(organization) if m.role == "admin"]
    if admins == [username]:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"'{username}' is the last admin of '{organization}'; add another first"
        )


@router.put(
    "/memberships/{username}",
    responses={**errors(409), 201: {"model": MembershipPublic, "description": "Created"}},
)
def put_membership(
    username: NewUsername, body: MembershipPut, principal: Admin, store: StoreDep, response: Response
) -> MembershipPublic:
    """Give a user a role in your organization (201 when new, 200 when changed or the same)."""
    if body.role != "admin":
        _guard_last_admin(store, principal.organization, username, principal.platform_admin)
    membership, created = store.put_membership(
        organization=principal.organization, username=username, role=body.role, actor=principal.username
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _public(membership)


@router.delete("/memberships/{username}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(409))
def delete_membership(username: Username, principal: Admin, store: StoreDep) -> None:
    """Remove a user from your organization."""
    _guard_last_admin(store, principal.organization, username, principal.platform_admin)
    store.delete_membership(organization=principal.organization, username=username, actor=principal.username)
