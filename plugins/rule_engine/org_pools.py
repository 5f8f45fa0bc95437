"""Each organization's Airflow pool: created or resized in Airflow's metadata database, then
recorded in the rule store, in that order, so the loader never names a pool that does not exist.

Used by ``rule-compiler limits`` and ``PUT /automations/api/v1/limits`` (both run where Airflow's
metadata database is configured: the init service, an admin's shell, the api-server).
"""

from __future__ import annotations

import logging
import os

from rule_compiler.store import RuleStore
from rule_compiler.store.models import pool_name
from rule_compiler.store.org_limits import OrganizationLimits

log = logging.getLogger("rule_engine.org_pools")

#: Slots of a pool ``limits sync`` provisions for an organization that has none yet.
DEFAULT_SLOTS_ENV = "AUTOMATION_ORG_POOL_SLOTS"
DEFAULT_SLOTS = 8


def default_slots() -> int:
    """``$AUTOMATION_ORG_POOL_SLOTS`` (a whole number of at least 1), else 8."""
    raw = os.environ.get(DEFAULT_SLOTS_ENV, "").strip()
    if not raw:
        return DEFAULT_SLOTS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{DEFAULT_SLOTS_ENV}={raw!r}: expected a whole number of at least 1")
    return int(raw)


def provision_pool(organization: str, slots: int) -> None:
    """Create the organization's pool in Airflow, or set its size. Deferred tasks (waits) hold no slot."""
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(
        pool_name(organization),
        slots,
        f"rule engine: the tasks of organization {organization}",
        include_deferred=False,
    )


def set_limits(
    store: RuleStore, organization: str, changes: dict[str, int | None], *, actor: str
) -> OrganizationLimits:
    """Store the changed limits; a new pool size goes to Airflow first. ``pool_slots: None`` keeps
    the pool in Airflow (running tasks may hold its slots) but the loader stops using it."""
    slots = changes.get("pool_slots")
    if slots is not None:
        provision_pool(organization, slots)
    limits = store.put_organization_limits(organization, changes, actor=actor)
    if "pool_slots" in changes:
        _parse_soon()
    return limits


def _parse_soon() -> None:
    """The loader moves tasks into (or out of) the pool on its next parse: ask for it now."""
    from airflow.utils.session import create_session

    from rule_engine.api.airflow_sync import request_loader_parse

    try:
        with create_session() as session:
            request_loader_parse(session)
    except Exception:  # the pool change is stored; the regular parse (about 30 s) applies it
        log.warning("could not ask Airflow to re-parse the loader file", exc_info=True)


def sync_pools(store: RuleStore, organizations: list[str], *, actor: str) -> list[OrganizationLimits]:
    """Give every organization a pool: the stored size, or :func:`default_slots` when it has none."""
    fallback = default_slots()
    known = {limits.organization: limits for limits in store.all_organization_limits()}
    done = []
    for organization in organizations:
        limits = known.get(organization) or OrganizationLimits(organization)
        slots = limits.pool_slots if limits.pool_slots is not None else fallback
        provision_pool(organization, slots)
        if limits.pool_slots is None:
            limits = store.put_organization_limits(organization, {"pool_slots": slots}, actor=actor)
        done.append(limits)
    return done
