"""Organization limits: what the platform admins allow each organization on a shared cluster.

- ``pool_slots``: the size of the organization's own Airflow pool (:func:`pool_name`); every task of
  its definitions runs in it, so a burst of one organization waits in its pool and leaves the
  others' slots free. NULL until the pool was provisioned (the loader then uses Airflow's
  ``default_pool``: a task naming a missing pool would never be scheduled).
- ``max_active_definitions``: active rules, workflows and reports (the kinds with a DAG); a write
  that would activate one more is refused with a problem at ``active``.
- ``events_per_minute``: events the organization pushes through the REST view (``POST /events``);
  more in the same minute answer 429 with ``Retry-After``.

A change is audited (kind ``limits``). Each function runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rule_compiler.errors import Issue, QuotaExceededError
from rule_compiler.store import audit
from rule_compiler.store.models import pool_name
from rule_compiler.store.specs import DAG_KINDS  # the kinds with a DAG: they count against the quota
from rule_compiler.store.tables import definitions, organization_limits

LIMITS_KIND = "limits"
LIMIT_FIELDS = ("pool_slots", "max_active_definitions", "events_per_minute")
__all__ = ["DAG_KINDS", "LIMIT_FIELDS", "ActiveDefinitionsQuotaError", "OrganizationLimits", "pool_name"]
t = organization_limits


@dataclass(frozen=True, slots=True)
class OrganizationLimits:
    """One organization's limits; None means "not set" (no quota; no pool of its own yet)."""

    organization: str
    pool_slots: int | None = None
    max_active_definitions: int | None = None
    events_per_minute: int | None = None
    updated_by: str | None = None
    updated_at: dt.datetime | None = None

    @property
    def pool(self) -> str | None:
        """The organization's pool once provisioned, else None (Airflow's default pool)."""
        return pool_name(self.organization) if self.pool_slots is not None else None


class ActiveDefinitionsQuotaError(QuotaExceededError):
    """One more active definition would pass the organization's ``max_active_definitions`` (HTTP 422,
    the problem at ``active``)."""

    def __init__(self, organization: str, active: int, quota: int) -> None:
        message = (
            f"organization {organization!r} has {active} active definition{'s' if active != 1 else ''} "
            f"(rules, workflows, reports), its quota: deactivate one, store this one with active: false, "
            f"or ask a platform admin to raise max_active_definitions"
        )
        self.issues = (Issue("active", message, "quota"),)
        super().__init__(message)


def _row(row: Any) -> OrganizationLimits:
    return OrganizationLimits(**dict(row._mapping))


def get(conn: sa.Connection, organization: str, *, lock: bool = False) -> OrganizationLimits:
    """The organization's limits (all None when never set); ``lock`` holds its row until commit."""
    query = sa.select(t).where(t.c.organization == organization)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    return _row(row) if row is not None else OrganizationLimits(organization)


def list_all(conn: sa.Connection) -> list[OrganizationLimits]:
    """Every organization's limits that were ever set, by organization."""
    return [_row(row) for row in conn.execute(sa.select(t).order_by(t.c.organization))]


def put(
    conn: sa.Connection, organization: str, changes: dict[str, int | None], *, actor: str, now: dt.datetime
) -> OrganizationLimits:
    """Set some limits (the others keep their value); audited. A value must be at least 1, or None."""
    unknown = set(changes) - set(LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"unknown limits: {sorted(unknown)}")
    for name, value in changes.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a whole number of at least 1, or null (no limit)")
    before = get(conn, organization, lock=True)
    values = {name: getattr(before, name) for name in LIMIT_FIELDS} | changes
    if before.updated_at is None:
        conn.execute(t.insert().values(organization=organization, updated_by=actor, updated_at=now, **values))
    else:
        conn.execute(
            t.update()
            .where(t.c.organization == organization)
            .values(updated_by=actor, updated_at=now, **values)
        )
    audit.insert_audit(
        conn,
        organization=organization,
        actor=actor,
        action="update",
        kind=LIMITS_KIND,
        name=organization,
        version=None,
        hash_before=None,
        hash_after=None,
        detail={"before": {n: getattr(before, n) for n in LIMIT_FIELDS}, "after": values},
        now=now,
    )
    return OrganizationLimits(organization, **values, updated_by=actor, updated_at=now)


def check_one_more_active(conn: sa.Connection, organization: str) -> None:
    """Refuse to activate one more definition past the quota (called in the activating transaction).

    The limits row is locked first, so two concurrent activations of one organization cannot both
    pass on the last free place (Postgres; SQLite's write transactions are serial anyway)."""
    limits = get(conn, organization, lock=True)
    if limits.max_active_definitions is None:
        return
    d = definitions
    active = conn.execute(
        sa.select(sa.func.count())
        .select_from(d)
        .where(
            d.c.organization == organization,
            d.c.active.is_(True),
            d.c.deleted_at.is_(None),
            d.c.kind.in_(DAG_KINDS),
        )
    ).scalar_one()
    if active >= limits.max_active_definitions:
        raise ActiveDefinitionsQuotaError(organization, int(active), limits.max_active_definitions)
