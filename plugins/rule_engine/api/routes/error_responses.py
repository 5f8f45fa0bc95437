"""Response documentation shared by the routes."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status

from rule_engine.api.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "Ambiguous request (name one of your organizations with ?organization=)",
    401: "Not authenticated (an Airflow token is needed)",
    403: "Authenticated, but your role does not allow this",
    404: "Not found (or not in your organization)",
    409: "Conflicts with what is stored",
    412: "If-Match does not match the current ETag: read it again",
    413: "Body too large",
    422: "Invalid input: every problem with its JSON path",
    428: "If-Match is required",
    429: "Too many requests (see Retry-After)",
    503: "The rule store is unreachable or not migrated",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes plus the ones every route can give."""
    every = (400, 401, 403, 404, 422, 429, 503)
    return {
        code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in sorted({*every, *codes})
    }


def airflow_unavailable(detail: str) -> HTTPException:
    """503 with Retry-After: Airflow's metadata database did not answer."""
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": "5"})
