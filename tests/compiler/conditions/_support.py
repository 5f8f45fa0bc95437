"""Helpers shared by the condition tests: build nodes from plain data, evaluate with both paths."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from rule_compiler.conditions import compile_condition
from rule_compiler.definitions.conditions import ConditionNode

NODE: TypeAdapter[ConditionNode] = TypeAdapter(ConditionNode)
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def node(data: Mapping[str, Any]) -> ConditionNode:
    return NODE.validate_python(data)


def evaluate(
    condition: Mapping[str, Any],
    record: Mapping[str, Any],
    *,
    types: Mapping[str, str] | None = None,
    old: Mapping[str, Any] | None = None,
    changed: Collection[str] | None = None,
    now: datetime = NOW,
) -> bool:
    """``matches``, after checking that ``explain`` agrees and its trace is JSON."""
    compiled = compile_condition(node(condition), column_types=types)
    result = compiled.matches(record, old=old, changed=changed, now=now)
    trace = compiled.explain(record, old=old, changed=changed, now=now)
    assert isinstance(result, bool)
    assert trace["matched"] is result
    json.dumps(trace, allow_nan=False)
    return result


def explain(
    condition: Mapping[str, Any],
    record: Mapping[str, Any],
    *,
    types: Mapping[str, str] | None = None,
    old: Mapping[str, Any] | None = None,
    changed: Collection[str] | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    compiled = compile_condition(node(condition), column_types=types)
    trace = compiled.explain(record, old=old, changed=changed, now=now)
    assert trace["matched"] is compiled.matches(record, old=old, changed=changed, now=now)
    json.loads(json.dumps(trace, allow_nan=False))
    return trace
