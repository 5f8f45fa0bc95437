"""One router per resource, combined under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from rule_engine.api.routes import (
    catalog_routes,
    health,
    logs,
    membership_routes,
    pushed_events,
    report_routes,
    report_run_routes,
    rule_routes,
    template_routes,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(rule_routes.router)
api_router.include_router(template_routes.condition_router)
api_router.include_router(template_routes.notification_router)
api_router.include_router(report_routes.router)
api_router.include_router(report_run_routes.router)
api_router.include_router(pushed_events.router)
api_router.include_router(logs.router)
api_router.include_router(membership_routes.router)
api_router.include_router(catalog_routes.router)
api_router.include_router(health.router)
