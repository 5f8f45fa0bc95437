"""Structural validation: pydantic's errors rewritten as JSON-path issues a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rule_compiler.definitions import ACTION_TYPES, TRIGGER_TYPES
from rule_compiler.errors import Issue
from rule_compiler.validation.paths import from_loc, join


def issues_from_pydantic(exc: ValidationError, data: Any) -> list[Issue]:
    """Every error pydantic found, each at its JSON path with a clear message."""
    return [_issue(error, data) for error in exc.errors(include_url=False)]


def _issue(error: ErrorDetails, data: Any) -> Issue:
    kind = error["type"]
    path = from_loc(error["loc"], data)
    given = error.get("input")
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        return _union_issue(error, path)
    if kind == "missing":
        field = path.rsplit(".", 1)[-1]
        return Issue(path, f"'{field}' is required", "missing")
    if kind == "extra_forbidden":
        field = path.rsplit(".", 1)[-1]
        return Issue(path, f"unknown key '{field}' is not permitted here (check the spelling)", "unknown_key")
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        what = "action" if path == "actions" else "item"
        return Issue(path, f"needs at least one {what}", kind)
    if kind == "list_type":
        return Issue(path, f"must be a list, not {type(given).__name__}", kind)
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return Issue(path, f"must be a mapping, not {type(given).__name__}", kind)
    message = error["msg"].removeprefix("Value error, ")
    return Issue(path, message[0].lower() + message[1:] if message else kind, kind)


def _union_issue(error: ErrorDetails, path: str) -> Issue:
    expected = str(error.get("ctx", {}).get("expected_tags", ""))
    choices: tuple[str, ...]
    if "#event" in expected:
        kind, choices = "trigger type", TRIGGER_TYPES
    elif "#update_record" in expected:
        kind, choices = "action type", ACTION_TYPES
    else:
        kind, choices = "type", tuple(t.strip(" '#") for t in expected.split(","))
    given = error.get("input")
    value = given.get("type") if isinstance(given, dict) else None
    where = join(path, "type") if path != "(document)" else "type"
    if value is None:
        return Issue(where, f"'type' is required; use one of: {', '.join(choices)}", "missing")
    return Issue(where, f"unknown {kind} '{value}'; use one of: {', '.join(choices)}", "unknown_type")
