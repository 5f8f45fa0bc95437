"""``/limits``: your organization's Airflow pool and quotas (members read them, platform admins set them)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from rule_compiler.store.org_limits import OrganizationLimits
from rule_engine import org_pools
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors

router = APIRouter(tags=["limits"])

Limit = int | None


class LimitsPublic(BaseModel):
    """An organization's limits; null: not set (no quota; no pool of its own: Airflow's default pool)."""

    organization: str
    pool: str | None = Field(description="the Airflow pool its tasks run in (null: Airflow's default_pool)")
    pool_slots: Limit
    max_active_definitions: Limit = Field(description="active rules, workflows and reports at most")
    events_per_minute: Limit = Field(description="events pushed through POST /events per minute at most")
    updated_by: str | None
    updated_at: dt.datetime | None


class LimitsPut(BaseModel):
    """The limits to change; a field left out keeps its value, null removes the limit."""

    model_config = ConfigDict(extra="forbid")

    pool_slots: int | None = Field(default=None, ge=1, le=100_000)
    max_active_definitions: int | None = Field(default=None, ge=1, le=1_000_000)
    events_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)


def _public(limits: OrganizationLimits) -> LimitsPublic:
    return LimitsPublic(
        organization=limits.organization,
        pool=limits.pool,
        pool_slots=limits.pool_slots,
        max_active_definitions=limits.max_active_definitions,
        events_per_minute=limits.events_per_minute,
        updated_by=limits.updated_by,
        updated_at=limits.updated_at,
    )


@router.get("/limits", responses=errors())
def read_limits(principal: Viewer, store: StoreDep) -> LimitsPublic:
    """Your organization's Airflow pool and quotas."""
    return _public(store.organization_limits(principal.organization))


@router.put("/limits", responses=errors())
def put_limits(body: LimitsPut, principal: Viewer, store: StoreDep) -> LimitsPublic:
    """Set the organization's pool size and quotas (platform admins only; `?organization=` names it).
    A pool size goes to Airflow first (created or resized), then to the store; the loader moves the
    organization's tasks into the pool on its next parse."""
    if not principal.platform_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a platform admin sets an organization's limits")
    changes = body.model_dump(exclude_unset=True)
    limits = org_pools.set_limits(store, principal.organization, changes, actor=principal.username)
    return _public(limits)
