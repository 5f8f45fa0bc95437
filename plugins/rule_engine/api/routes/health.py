"""``/health``: the rule store answers and is migrated; which of your rules Airflow could not render;
how far behind the event consumers of your active event rules are.

Anyone signed in may ask, even without a membership, and it answers (``degraded``) when the store is
down. Loader errors and consumers cover the rules of the caller's organizations (every organization
for platform admins). An application database that does not answer shows as an ``unreachable``
consumer (and ``degraded``), never as an error of this route.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from rule_compiler.clock import utcnow
from rule_compiler.errors import StoreError
from rule_compiler.store import RuleStore
from rule_compiler.store.migrate import head_revision
from rule_engine.api.consumer_lag import STALLED_AFTER, Watched, consumer_lags, watched_by
from rule_engine.api.deps import CurrentUser, SettingsDep, StoreDep, username_of
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import LoaderError, StoreHealth
from rule_engine.api.schemas_ops import HealthReport

router = APIRouter(tags=["health"])
log = logging.getLogger("rule_engine.api")

_NOT_CHECKED = {"loader_errors": [], "loader_errors_checked": False, "consumers": []}


@router.get("/health", responses=errors())
def read_health(user: CurrentUser, store: StoreDep, settings: SettingsDep, request: Request) -> HealthReport:
    """``ok`` or ``degraded``, with the store's state, your loader errors and your consumers' lag."""
    expected = head_revision()
    stalled_after = STALLED_AFTER.total_seconds()
    try:
        revision = store.ping()
    except StoreError as exc:
        unreachable = StoreHealth(reachable=False, expected_revision=expected, error=str(exc))
        return HealthReport(
            status="degraded", store=unreachable, stalled_after_seconds=stalled_after, **_NOT_CHECKED
        )
    store_health = StoreHealth(reachable=True, revision=revision, expected_revision=expected)
    if revision != expected:
        store_health.error = f"the store is at revision {revision}; run `rule-compiler db upgrade`"
        return HealthReport(
            status="degraded", store=store_health, stalled_after_seconds=stalled_after, **_NOT_CHECKED
        )
    username = username_of(user)
    rules, watched = _rules_of(store, username, username in settings.platform_admins)
    try:
        found: dict[str, str] = request.app.state.render_errors(rules.keys())
        checked = True
    except Exception:  # Airflow's metadata DB is not ours to fail on
        log.warning("could not read render errors from Airflow's metadata DB", exc_info=True)
        found, checked = {}, False
    loader_errors = [LoaderError(dag_id=d, rule_name=rules.get(d), reason=r) for d, r in found.items()]
    consumers = consumer_lags(watched, utcnow())
    troubled = any(c.status in ("unreachable", "stalled") for c in consumers)
    ok = checked and not loader_errors and not troubled
    return HealthReport(
        status="ok" if ok else "degraded",
        store=store_health,
        loader_errors=loader_errors,
        loader_errors_checked=checked,
        consumers=consumers,
        stalled_after_seconds=stalled_after,
    )


def _rules_of(store: RuleStore, username: str, platform_admin: bool) -> tuple[dict[str, str], list[Watched]]:
    """dag_id → "organization/name" of the rules the caller may see, and what their event rules watch."""
    if platform_admin:
        labels = {r.dag_id: f"{r.organization}/{r.name}" for r in store.list(kind="rule")}
        specs = [
            (labels[s.dag_id], s.active, s.spec_json) for s in store.loadable_specs() if s.dag_id in labels
        ]
        return labels, watched_by(specs)
    rows = [
        row
        for m in store.memberships_of(username)
        for row in store.definitions_of_kind(m.organization, "rule")
    ]
    labels = {r.dag_id: f"{r.organization}/{r.name}" for r in rows}
    return labels, watched_by((labels[r.dag_id], r.active, r.spec_json) for r in rows)
