"""``explain(..., values=False)`` and ``format_trace(..., values=False)``: the verdicts task logs show
by default hold no value of the record, yet say the same as the full trace."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from rule_compiler.conditions import compile_condition
from rule_compiler.conditions.trace import format_trace
from tests.compiler.conditions._support import NOW, node

SECRET_TEXT = "ada.lovelace@example.org"
SECRET_NUMBER = Decimal("48213.77")
SECRET_DAY = NOW - timedelta(days=9, hours=5)
RECORD = {
    "email": SECRET_TEXT,
    "total": SECRET_NUMBER,
    "limit": Decimal("10345.01"),
    "seen_at": SECRET_DAY.isoformat(),
    "note": "called on 2024-05-01 about 48213.77",
    "tags": "not-a-number-7731",
    "empty": None,
}
SECRETS = [SECRET_TEXT, "48213.77", "10345.01", SECRET_DAY.isoformat()[:16], "7731", "2024-05-01"]

CASES: list[dict[str, Any]] = [
    {"field": "email", "operator": "endswith", "value": ".com"},  # false
    {"field": "email", "operator": "contains", "value": "@"},  # true
    {"field": "total", "operator": "gt", "value": 1000},
    {"field": "total", "operator": "lte", "value": {"field_ref": "limit"}},
    {"field": "seen_at", "operator": "older_than", "value": "3d"},
    {"field": "tags", "operator": "gt", "value": 5},  # text that is no number
    {"field": "note", "operator": "is_not_empty"},
    {"field": "empty", "operator": "equals", "value": "x"},  # NULL
    {"field": "missing", "operator": "equals", "value": "x"},
    {"not": {"field": "email", "operator": "startswith", "value": "bob"}},
    {"any": [{"field": "total", "operator": "lt", "value": 0}, {"field": "email", "operator": "is_null"}]},
]


def _both(condition: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    compiled = compile_condition(node(condition), column_types={"total": "numeric", "limit": "numeric"})
    return (
        compiled.explain(RECORD, now=NOW, **kwargs),
        compiled.explain(RECORD, now=NOW, values=False, **kwargs),
    )


def _verdicts(trace: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    out = [(trace["path"], trace["result"], trace["skipped"])]
    for child in trace["children"]:
        out += _verdicts(child)
    return out


@pytest.mark.parametrize("condition", CASES, ids=[json.dumps(c)[:60] for c in CASES])
def test_the_trace_without_values_has_the_same_verdicts_and_no_value(condition: dict[str, Any]) -> None:
    full, bare = _both(condition)
    assert bare["matched"] is full["matched"]
    assert _verdicts(bare["node"]) == _verdicts(full["node"])
    text = json.dumps(bare) + "\n".join(format_trace(bare["node"], values=False))
    assert not [secret for secret in SECRETS if secret in text]
    assert "[seen:" not in text
    shown = "\n".join(format_trace(full["node"]))
    assert "[seen:" in shown  # the full tree does show what it saw


def test_reasons_without_values_still_say_what_decided() -> None:
    reasons = {json.dumps(c): _both(c)[1]["node"] for c in CASES}

    def reason(index: int) -> str:
        return str(reasons[json.dumps(CASES[index])]["reason"])

    assert reason(0) == ""  # a plain comparison: the condition and its verdict say it all
    assert (
        reason(5)
        == "'tags' holds a str value, which cannot be compared as a number, so the condition is false"
    )
    assert reason(6) == "'note' is not NULL: is_not_empty is true"
    assert reason(7) == "'empty' is NULL, and a comparison with NULL is false"
    assert reason(8) == "no value: the record has no 'missing'; NULL"
    assert reason(4).startswith("'seen_at' older_than 3d means before 2024-05-29T12:00:00+00:00")
    ref = reasons[json.dumps(CASES[3])]
    assert ref["expected"] == {"field_ref": "limit"} and ref["actual"] is None
    lines = format_trace(_both(CASES[9])[1]["node"], values=False)
    assert lines == ["  ✓ not", "    ✗ email startswith 'bob'"]


def test_change_conditions_without_values() -> None:
    compiled = compile_condition(node({"field": "email", "operator": "changed_to", "value": "x@y.z"}))
    old = {"email": SECRET_TEXT}
    bare = compiled.explain({"email": "new@example.net"}, old=old, changed={"email"}, now=NOW, values=False)
    assert bare["node"]["reason"] == "'email' changed" and SECRET_TEXT not in json.dumps(bare)
    unchanged = compiled.explain(RECORD, old=RECORD, changed=set(), now=NOW, values=False)
    assert unchanged["node"]["reason"] == "'email' did not change"


def test_the_full_traces_do_hold_every_value_the_bare_ones_leave_out() -> None:
    """The check above is only worth something if the values are there to leave out."""
    full_text = "\n".join(line for c in CASES for line in format_trace(_both(c)[0]["node"]))
    assert [secret for secret in SECRETS if secret not in full_text] == []
