"""The REST view's FastAPI app, built by a factory; Airflow mounts it at ``/automations``.

Deny by default: every route, the OpenAPI schema and the docs page included, goes through the
app-level dependencies — Airflow's ``get_user`` (401 without a valid Airflow token or UI cookie) and
the per-user rate limit. FastAPI's own docs routes are switched off (they would sit outside the
app-level dependencies) and served again as ordinary routes, with Swagger UI's files served by the
app too (:mod:`rule_engine.api.docs_page`: no CDN). Two middlewares come first: the body size limit
(413) and the input guard (422 for control characters in the path or query and for JSON bodies too
deep, with non-finite numbers or NUL characters; :mod:`rule_engine.api.input_guard`). The definition
routes also take YAML bodies (:mod:`rule_engine.api.yaml_bodies`), parsed only after the size limit and
authentication, then checked like JSON ones. ``GET /api/v1/`` is the API's index; ``/ui/`` serves the pages
Airflow's UI shows (:mod:`rule_engine.api.ui_pages`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from rule_compiler.store import RuleStore
from rule_engine.api import ui_pages
from rule_engine.api.airflow_sync import RuleChange, notify_airflow
from rule_engine.api.api_settings import ApiSettings
from rule_engine.api.docs_page import add_docs
from rule_engine.api.error_handlers import install_error_handlers
from rule_engine.api.input_guard import InputGuard
from rule_engine.api.limits import BodySizeLimit, RateLimiter, rate_limit
from rule_engine.api.loader_errors import render_errors
from rule_engine.api.routes import api_router, index
from rule_engine.api.routes.pushed_events import OutboxEngines
from rule_engine.api.yaml_bodies import accept_yaml_bodies, document_yaml_bodies

TITLE = "Automation rule engine"
API_VERSION = "1"


def _operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation ids: ``<tag>-<function name>``."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(
    store: RuleStore | None = None,
    *,
    settings: ApiSettings | None = None,
    on_change: Callable[[RuleChange], None] | None = notify_airflow,
    render_errors_of: Callable[[Collection[str]], dict[str, str]] = render_errors,
) -> FastAPI:
    """The app. ``store`` defaults to the configured rule store (``AUTOMATION_STORE_URL``).

    ``on_change`` runs after every stored rule change (default: ask Airflow to re-parse the loader
    file and sync the pause state; None: nothing). ``render_errors_of`` reads the placeholder DAGs
    Airflow holds for the health route.
    """
    settings = settings or ApiSettings.from_env()
    app = FastAPI(
        title=TITLE,
        version=API_VERSION,
        description="Register, test and manage automations. Every route needs an Airflow login.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(get_user), Depends(rate_limit)],
        generate_unique_id_function=_operation_id,
    )
    app.state.store = store or RuleStore()
    app.state.settings = settings
    app.state.on_change = on_change
    app.state.render_errors = render_errors_of
    app.state.outbox_engines = OutboxEngines()
    app.state.rate_limiter = (
        RateLimiter(settings.rate_limit, settings.rate_limit_storage, app.state.store)
        if settings.rate_limit
        else None
    )
    app.add_middleware(InputGuard)  # inside the size limit: it reads bodies the limit has capped
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(index.router)
    app.include_router(api_router)
    app.include_router(ui_pages.router)
    accept_yaml_bodies(app)
    _document_yaml(app)
    add_docs(app, TITLE)
    return app


def _document_yaml(app: FastAPI) -> None:
    """The schema lists ``application/yaml`` beside ``application/json`` for the YAML-capable bodies."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_yaml_bodies(FastAPI.openapi(app))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def mounted_app_entry() -> dict[str, Any]:
    """The ``fastapi_apps`` entry the plugin registers."""
    return {"app": create_app(), "url_prefix": "/automations", "name": TITLE}
