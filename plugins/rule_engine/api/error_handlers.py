"""Exception handlers: every error answers with :class:`ErrorBody`, bad input never with a 500.

Validation problems (FastAPI's own request checks, and the rule compiler's) answer 422 with
``errors: [{path, message, code}]`` — the JSON paths the CLI prints (``actions[1].values``); a
request parameter's path is ``query.limit`` / ``header.if-match``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from rule_compiler.errors import (
    AppDatabaseError,
    ConflictError,
    DefinitionLoadError,
    Issue,
    NotFoundError,
    RuleValidationError,
    StoreError,
    StoreUnavailableError,
)
from rule_compiler.store import StaleWriteError
from rule_compiler.validation.paths import DOCUMENT, from_loc

log = logging.getLogger("rule_engine.api")


def error_response(
    status_code: int,
    detail: str,
    issues: Sequence[Issue] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An :class:`ErrorBody` response."""
    body: dict[str, Any] = {"detail": detail}
    if issues is not None:
        body["errors"] = [issue.as_dict() for issue in issues]
    return JSONResponse(body, status_code=status_code, headers=headers)


def request_issues(errors: Sequence[Any], body: Any) -> list[Issue]:
    """FastAPI's validation errors as JSON-path issues (the body's paths relative to the document)."""
    issues = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        where, rest = (loc[0], loc[1:]) if loc else ("body", ())
        kind = str(error.get("type", "invalid"))
        if kind == "json_invalid":
            path = DOCUMENT
            message = f"the body is not valid JSON: {error.get('ctx', {}).get('error', error.get('msg'))}"
        else:
            path = from_loc(rest, body) if where == "body" else f"{where}." + ".".join(map(str, rest))
            message = str(error.get("msg", kind)).removeprefix("Value error, ")
        issues.append(Issue(path, message, kind))
    return issues


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    issues = request_issues(exc.errors(), getattr(exc, "body", None))
    return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, "the request is not valid", issues)


async def _definition_invalid(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RuleValidationError):
        count = len(exc.issues)
        detail = f"the definition has {count} problem{'s' if count != 1 else ''}"
        return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, detail, exc.issues)
    assert isinstance(exc, DefinitionLoadError)  # noqa: S101
    return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, "the definition cannot be read", [exc.issue])


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, NotFoundError):
        return error_response(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, StaleWriteError):
        return error_response(status.HTTP_412_PRECONDITION_FAILED, str(exc))
    if isinstance(exc, ConflictError):
        return error_response(status.HTTP_409_CONFLICT, str(exc))
    log.error("rule store error on %s %s: %s", request.method, request.url.path, exc)
    reason = "unreachable" if isinstance(exc, StoreUnavailableError) else "not ready"
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the rule store is {reason}; try again later",
        headers={"Retry-After": "5"},
    )


async def _app_database_error(request: Request, exc: Exception) -> JSONResponse:
    """A connection the plugin's connection seam cannot give (missing from Airflow, or no SQL
    database): the deployment's to fix, so 503, naming the connection and never its details."""
    assert isinstance(exc, AppDatabaseError)  # noqa: S101 - registered for this type only
    log.warning("application database on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"connection '{exc.conn_id}' {exc.reason}; ask the platform administrators",
    )


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 whose ``Allow`` lists the path's methods (Starlette names only the first route's).

    A fixed path (``/rules/validate``) is answered for its own route, not for ``/rules/{name}``.
    """
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    matching = [r for r in request.app.router.routes if isinstance(r, APIRoute) and r.path_regex.match(path)]
    fixed = [r for r in matching if not r.param_convertors]
    allowed = sorted({method for route in fixed or matching for method in route.methods})
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    return error_response(status.HTTP_405_METHOD_NOT_ALLOWED, "Method Not Allowed", headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(RuleValidationError, _definition_invalid)
    app.add_exception_handler(DefinitionLoadError, _definition_invalid)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(AppDatabaseError, _app_database_error)
    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, _method_not_allowed)
    app.add_exception_handler(Exception, _unexpected)
