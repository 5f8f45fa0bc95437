"""One router per resource, combined under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from rule_engine.api.routes import health, logs, memberships, rules

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(rules.router)
api_router.include_router(logs.router)
api_router.include_router(memberships.router)
api_router.include_router(health.router)
