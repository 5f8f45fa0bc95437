"""The routers under ``/api/v1``: one resource router per row of the kinds table, then the routes of
one kind alone (rule tests and runs, workflow tests, report runs) and the other resources."""

from __future__ import annotations

from fastapi import APIRouter

from rule_engine.api.resource_kinds import API_KINDS
from rule_engine.api.resource_versions import versioned_router
from rule_engine.api.routes import (
    analytics_routes,
    approval_routes,
    audit_routes,
    catalog_routes,
    definition_board_routes,
    definition_run_routes,
    health,
    limits_routes,
    logs,
    membership_routes,
    pushed_events,
    report_run_routes,
    rule_routes,
    self_service_routes,
    template_expand_routes,
    webhook_delivery_routes,
    workflow_test_routes,
)

api_router = APIRouter(prefix="/api/v1")
for api_kind in API_KINDS:
    api_router.include_router(versioned_router(api_kind))
api_router.include_router(rule_routes.router)
api_router.include_router(workflow_test_routes.router)
api_router.include_router(template_expand_routes.router)
api_router.include_router(definition_run_routes.definition_run_router("rule", "/rules", "rule"))
api_router.include_router(definition_run_routes.definition_run_router("workflow", "/workflows", "workflow"))
api_router.include_router(approval_routes.router)
api_router.include_router(report_run_routes.router)
api_router.include_router(pushed_events.router)
api_router.include_router(definition_board_routes.router)
api_router.include_router(logs.router)
api_router.include_router(analytics_routes.router)
api_router.include_router(audit_routes.router)
api_router.include_router(membership_routes.router)
api_router.include_router(limits_routes.router)
api_router.include_router(self_service_routes.router)
api_router.include_router(webhook_delivery_routes.router)
api_router.include_router(catalog_routes.router)
api_router.include_router(health.router)
