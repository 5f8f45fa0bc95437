"""Exception handlers: every error answers with :class:`ErrorBody`, bad input never with a 500.

Validation problems (FastAPI's own request checks, and the rule compiler's) answer 422 with
``errors: [{path, message, code}]`` — the JSON paths the CLI prints (``actions[1].values``); a
request parameter's path is ``query.limit`` / ``header.if-match``.

Every error of the exception tree (:mod:`rule_compiler.errors`) answers by its class: the first
class of its MRO that :data:`ANSWERS` lists decides the status (docs/api.md, "Errors and statuses",
lists the same table; tests/test_exception_tree.py checks that they agree).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from rule_compiler.errors import (
    AppDatabaseError,
    CompileError,
    ConfigurationError,
    ConflictError,
    DefinitionError,
    DefinitionLoadError,
    InvalidValueError,
    Issue,
    NotFoundError,
    QuotaExceededError,
    RefusedError,
    RuleEngineError,
    RuleValidationError,
    SpecError,
    StoreError,
    StoreUnavailableError,
    UsageError,
)
from rule_compiler.reporting.report_errors import ReportParameterError
from rule_compiler.store import StaleWriteError
from rule_compiler.store.org_limits import ActiveDefinitionsQuotaError
from rule_compiler.validation.paths import DOCUMENT, from_loc

log = logging.getLogger("rule_engine.api")


@dataclass(frozen=True)
class Answer:
    """How an error class is answered: ``status``; ``detail`` a fixed sentence (``{error}`` is the
    class name, ``{problems}`` "3 problems") or None for the error's own message; ``retry_after``
    seconds for a ``Retry-After`` header (an error's own ``retry_after`` wins, except in a 500).
    A 4xx answer carries the error's issues (``errors``); a 5xx answer is logged."""

    status: int
    detail: str | None = None
    retry_after: int | None = None


#: Error class → answer; an error is answered by the first class of its MRO listed here.
ANSWERS: dict[type[RuleEngineError], Answer] = {
    RuleEngineError: Answer(500, "internal error ({error}); it has been logged"),
    DefinitionError: Answer(422),
    DefinitionLoadError: Answer(422, "the definition cannot be read"),
    RuleValidationError: Answer(422, "the definition has {problems}"),
    InvalidValueError: Answer(422),
    CompileError: Answer(500, "the definition could not be compiled ({error}, a bug); it has been logged"),
    SpecError: Answer(500, "a stored compiled spec cannot be read ({error}); it has been logged"),
    StoreError: Answer(503, "the rule store is not ready; try again later", retry_after=5),
    StoreUnavailableError: Answer(503, "the rule store is unreachable; try again later", retry_after=5),
    NotFoundError: Answer(404),
    ConflictError: Answer(409),
    StaleWriteError: Answer(412),
    UsageError: Answer(422),
    RefusedError: Answer(409),
    ConfigurationError: Answer(503),
    AppDatabaseError: Answer(503, "connection '{exc.conn_id}' {exc.reason}; ask the platform administrators"),
    ReportParameterError: Answer(422),
    QuotaExceededError: Answer(429),
    ActiveDefinitionsQuotaError: Answer(422, "the organization's quota of active definitions is reached"),
}


def answer_for(error: type[BaseException]) -> Answer:
    """The :data:`ANSWERS` entry of the first class of ``error``'s MRO listed there."""
    for cls in error.__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    raise LookupError(f"{error.__name__} is not a RuleEngineError")


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


def _issues_of(exc: BaseException) -> list[Issue] | None:
    if isinstance(exc, DefinitionLoadError):
        return [exc.issue]
    if isinstance(exc, RuleValidationError):
        return list(exc.issues)
    issues = getattr(exc, "issues", None)
    return list(issues) if issues else None


async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    """Any :class:`RuleEngineError`, answered as :data:`ANSWERS` says for its class."""
    answer = answer_for(type(exc))
    issues = _issues_of(exc)
    count = len(issues or ())
    problems = f"{count} problem{'s' if count != 1 else ''}"
    detail = (
        str(exc)
        if answer.detail is None
        else answer.detail.format(error=type(exc).__name__, problems=problems, exc=exc)
    )
    own_wait = getattr(exc, "retry_after", None)
    if not isinstance(own_wait, int) or answer.status == status.HTTP_500_INTERNAL_SERVER_ERROR:
        own_wait = None
    wait = own_wait if own_wait is not None else answer.retry_after
    headers = {"Retry-After": str(wait)} if wait is not None else None
    if answer.status >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        log.error(
            "%s on %s %s: %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc,
            exc_info=exc if answer.status == status.HTTP_500_INTERNAL_SERVER_ERROR else None,
        )
        issues = None
    return error_response(answer.status, detail, issues, headers=headers)


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
    app.add_exception_handler(RuleEngineError, _engine_error)
    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, _method_not_allowed)
    app.add_exception_handler(Exception, _unexpected)
