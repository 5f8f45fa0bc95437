"""The schema and the Swagger UI page, served by the app itself: no CDN, no request leaves the machine.

FastAPI's own ``/docs`` loads Swagger UI from a CDN (a blank page without internet) and sits outside the
app-level dependencies. Here the schema, the page and its three files (``swagger-ui-bundle.js``,
``swagger-ui.css``, the favicon) are ordinary routes, so Airflow's login covers them like every other
route: a browser signed in to the Airflow UI sends its ``_token`` cookie with each of them.

The files come from the ``fastapi-offline`` package (MIT; it ships swagger-ui's dist files, Apache-2.0,
refreshed with swagger-ui's releases). Swagger UI's online validator badge is switched off
(``validatorUrl: null``): it would send the schema's URL to validator.swagger.io.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
#: name served under /docs/assets/ -> (file in fastapi-offline's static folder, media type)
ASSETS = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "favicon.png": ("favicon.png", "image/png"),
}
#: Signed-in browsers keep the files an hour (private: they were served to a logged-in user).
CACHE_CONTROL = "private, max-age=3600"


def assets_folder() -> Path | None:
    """fastapi-offline's folder of swagger-ui files, or None when the package is not installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "static"


def add_docs(app: FastAPI, title: str) -> None:
    """``/openapi.json``, ``/docs`` and ``/docs/assets/{asset}`` as ordinary (authenticated) routes."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(f"{ASSETS_PATH}/{{asset}}", include_in_schema=False)
    def swagger_ui_asset(asset: Annotated[str, PathParam(max_length=100)]) -> FileResponse:
        if asset not in ASSETS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no docs asset '{asset}'")
        folder = assets_folder()
        file_name, media_type = ASSETS[asset]
        if folder is None or not (folder / file_name).is_file():
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "the docs page's files are missing: install the pinned requirements (fastapi-offline)",
            )
        headers = {"Cache-Control": CACHE_CONTROL}
        return FileResponse(folder / file_name, media_type=media_type, headers=headers)
