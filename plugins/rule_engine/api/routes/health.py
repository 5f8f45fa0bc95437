"""``/health``: the rule store answers and is migrated; which of your rules Airflow could not render.

Anyone signed in may ask, even without a membership, and it answers (``degraded``) when the store is
down. Loader errors cover the rules of the caller's organizations (every organization for platform
admins).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from rule_compiler.errors import StoreError
from rule_compiler.store import RuleStore
from rule_compiler.store.migrate import head_revision
from rule_engine.api.deps import CurrentUser, SettingsDep, StoreDep, username_of
from rule_engine.api.routes.common import errors
from rule_engine.api.schemas import Health, LoaderError, StoreHealth

router = APIRouter(tags=["health"])
log = logging.getLogger("rule_engine.api")


@router.get("/health", responses=errors())
def read_health(user: CurrentUser, store: StoreDep, settings: SettingsDep, request: Request) -> Health:
    """``ok`` or ``degraded``, with the store's state and your organizations' loader errors."""
    expected = head_revision()
    try:
        revision = store.ping()
    except StoreError as exc:
        unreachable = StoreHealth(reachable=False, expected_revision=expected, error=str(exc))
        return Health(status="degraded", store=unreachable, loader_errors=[], loader_errors_checked=False)
    store_health = StoreHealth(reachable=True, revision=revision, expected_revision=expected)
    if revision != expected:
        store_health.error = f"the store is at revision {revision}; run `rule-compiler db upgrade`"
        return Health(status="degraded", store=store_health, loader_errors=[], loader_errors_checked=False)
    rules = _rules_of(store, username_of(user), username_of(user) in settings.platform_admins)
    try:
        found: dict[str, str] = request.app.state.render_errors(rules.keys())
        checked = True
    except Exception:  # Airflow's metadata DB is not ours to fail on
        log.warning("could not read render errors from Airflow's metadata DB", exc_info=True)
        found, checked = {}, False
    loader_errors = [LoaderError(dag_id=d, rule_name=rules.get(d), reason=r) for d, r in found.items()]
    ok = checked and not loader_errors
    return Health(
        status="ok" if ok else "degraded",
        store=store_health,
        loader_errors=loader_errors,
        loader_errors_checked=checked,
    )


def _rules_of(store: RuleStore, username: str, platform_admin: bool) -> dict[str, str]:
    """dag_id → "organization/name" of the rules the caller may see."""
    if platform_admin:
        rows = store.list(kind="rule")
    else:
        rows = [
            r
            for m in store.memberships_of(username)
            for r in store.list(organization=m.organization, kind="rule")
        ]
    return {r.dag_id: f"{r.organization}/{r.name}" for r in rows}
