"""One router per resource, combined under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from rule_engine.api.routes import (
    catalog,
    events,
    health,
    logs,
    memberships,
    report_runs,
    reports,
    rules,
    templates,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(rules.router)
api_router.include_router(templates.condition_router)
api_router.include_router(templates.notification_router)
api_router.include_router(reports.router)
api_router.include_router(report_runs.router)
api_router.include_router(events.router)
api_router.include_router(logs.router)
api_router.include_router(memberships.router)
api_router.include_router(catalog.router)
api_router.include_router(health.router)
