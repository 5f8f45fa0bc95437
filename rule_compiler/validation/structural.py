"""Structural validation: pydantic's errors rewritten as JSON-path issues a person can act on, and
one pass over the raw document for what no model field may hold (:func:`raw_value_issues`)."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rule_compiler.definitions import ACTION_TYPES, TRIGGER_TYPES
from rule_compiler.errors import Issue
from rule_compiler.loading import MAX_NESTING_DEPTH
from rule_compiler.validation.paths import DOCUMENT, from_loc, join

#: At most this many problems are listed by :func:`raw_value_issues` (a document could hold thousands).
MAX_RAW_ISSUES = 50
NUL_MESSAGE = "text may not contain the NUL character (U+0000): no database can store it"
KEY_NUL_MESSAGE = "a key may not contain the NUL character (U+0000): no database can store it"
SURROGATE_MESSAGE = "text must be valid Unicode: a lone surrogate (\\ud800-\\udfff) cannot be stored"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: What a key may not bring into a path shown to people (a path is printed and sent back as JSON).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def raw_value_issues(value: Any, *, max_depth: int = MAX_NESTING_DEPTH) -> list[Issue]:
    """What a parsed JSON/YAML value may hold nowhere, each at its JSON path (at most 50 listed).

    The NUL character in any string or key (Postgres text and JSONB refuse it, so it would be
    accepted here and fail at run time), lone surrogates (JSON's ``"\\ud800"``: no UTF-8 form),
    numbers that are not finite (``NaN``, ``Infinity``, ``1e400`` read as infinity: JSON has none,
    canonical JSON refuses them) and nesting deeper than ``max_depth`` levels of mappings and lists.
    Iterative: any depth the parser produced is safe.
    """
    issues: list[Issue] = []
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack and len(issues) < MAX_RAW_ISSUES:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            issues += _text_issues(item, path or DOCUMENT, NUL_MESSAGE)
        elif isinstance(item, float) and not math.isfinite(item):
            message = f"must be a finite number, not {item} (no NaN, Infinity or numbers beyond 1e308)"
            issues.append(Issue(path or DOCUMENT, message, "not_finite"))
        elif isinstance(item, dict | list) and depth >= max_depth:
            message = f"nests more than {max_depth} levels of mappings and lists"
            issues.append(Issue(path or DOCUMENT, message, "too_deep"))
        elif isinstance(item, list):
            stack.extend((item[i], join(path, i), depth + 1) for i in reversed(range(len(item))))
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                where = join(path, _UNPRINTABLE.sub("?", str(key)))
                if isinstance(key, str):
                    issues += _text_issues(key, where, KEY_NUL_MESSAGE)
                children.append((child, where, depth + 1))
            stack.extend(reversed(children))
    return issues[:MAX_RAW_ISSUES]  # in document order: the walk is depth first, left to right


def _text_issues(text: str, path: str, nul_message: str) -> list[Issue]:
    if "\x00" in text:
        return [Issue(path, nul_message, "nul_character")]
    if _SURROGATE.search(text):
        return [Issue(path, SURROGATE_MESSAGE, "invalid_unicode")]
    return []


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
