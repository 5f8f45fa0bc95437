"""The rule engine's pages inside the Airflow UI: the built bundle of ``ui/``, served at ``/automations/ui/``.

Airflow shows them in an iframe (the plugin's ``external_views``, ADR 0016); the page is signed in by
the ``_token`` cookie Airflow's UI sets, which the app-level ``get_user`` dependency accepts, and it
calls only this REST view. The bundle is committed (``plugins/rule_engine/ui_dist``), so a machine
without Node serves it; ``scripts/check.sh`` rebuilds it from ``ui/`` and fails when they differ.
Files are served from that folder only: a path that leads anywhere else is a 404.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

UI_DIST = Path(__file__).resolve().parents[1] / "ui_dist"
#: Only the page's own files, the API on the same origin, and framing by Airflow's UI (same origin).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/")
def ui_index() -> FileResponse:
    """The page (every view of it: ``?page=...`` chooses)."""
    return _file("index.html")


@router.get("/{path:path}")
def ui_file(path: str) -> FileResponse:
    """A file of the bundle; hashed assets are cached for a year, the rest revalidated."""
    return _file(path)


def _file(path: str) -> FileResponse:
    root = UI_DIST.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such page")
    hashed = target.parent.name == "assets"
    headers = {**_HEADERS, "Cache-Control": "public, max-age=31536000, immutable" if hashed else "no-cache"}
    media_type = (
        _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    )
    return FileResponse(target, media_type=media_type, headers=headers)
