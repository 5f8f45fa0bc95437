"""Typed dependencies: the Airflow user, the store, and the caller's organization and role.

Authentication is Airflow's own (``airflow.api_fastapi.core_api.security.get_user``: a bearer JWT or
the UI's ``_token`` cookie). Authorization is ours: the caller's organization and role come from the
store's memberships, never from the request body; ``?organization=`` only chooses among the caller's
own organizations. Platform admins (``AUTOMATION_API_ADMINS``) are admins in every organization.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Query, Request, status

from rule_compiler.store import Role, RuleStore
from rule_engine.api.api_settings import ApiSettings

ROLE_RANK: dict[str, int] = {"viewer": 1, "editor": 2, "admin": 3}

CurrentUser = Annotated[Any, Depends(get_user)]


def get_store(request: Request) -> RuleStore:
    """The app's rule store."""
    store: RuleStore = request.app.state.store
    return store


def get_settings(request: Request) -> ApiSettings:
    """The app's settings."""
    settings: ApiSettings = request.app.state.settings
    return settings


StoreDep = Annotated[RuleStore, Depends(get_store)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def username_of(user: Any) -> str:
    """The Airflow username (what memberships and the audit log name)."""
    return str(user.get_name())


@dataclass(frozen=True)
class Principal:
    """Who is asking, in which organization, with which role."""

    username: str
    organization: str
    role: Role
    platform_admin: bool = False

    def has(self, needed: Role) -> bool:
        """Whether the role is at least ``needed``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


OrganizationParam = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Which of your organizations to act in; needed only when you belong to several.",
    ),
]


def current_principal(
    user: CurrentUser, store: StoreDep, settings: SettingsDep, organization: OrganizationParam = None
) -> Principal:
    """The caller's organization and role, from their memberships (403/404/400 otherwise)."""
    username = username_of(user)
    platform_admin = username in settings.platform_admins
    mine = {m.organization: m.role for m in store.memberships_of(username)}
    if organization is None:
        if len(mine) == 1:
            (org, role), *_ = mine.items()
            return Principal(username, org, role, platform_admin)
        if not mine and not platform_admin:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"'{username}' is not a member of any organization"
            )
        raise HTTPException(status.HTTP_400_BAD_REQUEST, _choose_one(store, mine, platform_admin))
    if platform_admin:
        return Principal(username, organization, "admin", True)
    if organization not in mine:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no organization '{organization}' among yours")
    return Principal(username, organization, mine[organization], False)


#: At most this many organizations are named in the 400 answer.
MAX_NAMED_ORGANIZATIONS = 50


def _named(organizations: list[str]) -> str:
    shown = ", ".join(organizations[:MAX_NAMED_ORGANIZATIONS])
    more = len(organizations) - MAX_NAMED_ORGANIZATIONS
    return shown + (f" and {more} more" if more > 0 else "")


def _choose_one(store: RuleStore, mine: dict[str, Role], platform_admin: bool) -> str:
    """The 400 message: name an organization with ``?organization=``, and which ones there are."""
    if not platform_admin:
        yours = _named(sorted(mine))
        return f"you can act in several organizations: name one with ?organization= (yours: {yours})"
    known = sorted({*store.catalog_organizations(), *mine})
    listed = (
        f"organizations: {_named(known)}"
        if known
        else "there are none yet: create one's catalog with PUT /catalog?organization=NAME"
    )
    return f"as a platform admin you can act in any organization: name one with ?organization= ({listed})"


def requires_role(needed: Role) -> Callable[..., Principal]:
    """A dependency giving the :class:`Principal`, refusing (403) a role below ``needed``."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has(needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {needed} role in '{principal.organization}'; you are {principal.role}",
            )
        return principal

    dependency.__name__ = f"requires_{needed}"
    return dependency


Viewer = Annotated[Principal, Depends(requires_role("viewer"))]
Editor = Annotated[Principal, Depends(requires_role("editor"))]
Admin = Annotated[Principal, Depends(requires_role("admin"))]
