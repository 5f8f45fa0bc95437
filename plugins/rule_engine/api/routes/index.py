"""``/api/v1/``: what this API is and where its parts are (the URL the README gives).

Anyone signed in may read it, with or without a membership, like ``/me`` and ``/health``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from rule_engine.api.deps import CurrentUser, username_of
from rule_engine.api.resource_kinds import API_KINDS
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas_index import ApiIndex

router = APIRouter(prefix="/api/v1", tags=["index"])  # included by the app itself, not under api_router

#: collection -> the route listing it (GET): what the index links to.
COLLECTIONS = {
    **{row.tag: f"list_{row.slug}s" for row in API_KINDS},
    "definitions": "list_definitions_board",
    "logs": "list_logs",
    "analytics": "organization_analytics",
    "audit": "list_audit",
    "approvals": "list_approvals",
    "memberships": "list_memberships",
    "catalog": "get_catalog",
    "me": "read_me",
    "health": "read_health",
}


@router.get("/", responses=errors())
def api_index(user: CurrentUser, request: Request) -> ApiIndex:
    """The API's name and version, and links to its docs, its schema and its collections."""
    app = request.app
    return ApiIndex(
        name=app.title,
        version=app.version,
        description=app.description,
        username=username_of(user),
        docs=str(request.url_for("swagger_ui")),
        openapi=str(request.url_for("openapi_schema")),
        collections={name: str(request.url_for(route)) for name, route in COLLECTIONS.items()},
        events=str(request.url_for("push_event")),
    )


@router.get("", include_in_schema=False)
def api_index_without_slash(user: CurrentUser, request: Request) -> ApiIndex:
    """The same index at ``/api/v1`` (no redirect)."""
    return api_index(user, request)
