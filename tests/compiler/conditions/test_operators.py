"""Every operator's semantics: true, false, NULL, missing keys and run-time type mismatches.

Each case runs through ``matches`` and ``explain`` (they must agree, see ``_support.evaluate``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rule_compiler.conditions import OPERATORS, OperatorSpec, compile_condition, operators_for, register
from rule_compiler.conditions import operator_registry as operators_module
from rule_compiler.definitions.conditions import OPERATOR_NAMES

from ._support import NOW, evaluate, node

NUM = {"total": "numeric"}
TEXT = {"status": "text"}
TS = {"created_at": "timestamp"}


def c(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"field": field, "operator": operator}
    if value is not None:
        data["value"] = value
    return data


# (condition, record, column types, expected)
CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, str] | None, bool]] = [
    # equals
    (c("status", "equals", "paid"), {"status": "paid"}, None, True),
    (c("status", "equals", "paid"), {"status": "Paid"}, None, False),
    (c("status", "equals", "paid"), {"status": None}, None, False),
    (c("status", "equals", "paid"), {}, None, False),
    (c("total", "equals", 5), {"total": "5"}, None, False),
    (c("total", "equals", 5), {"total": 5.0}, None, True),
    (c("total", "equals", 1000), {"total": Decimal("1000.00")}, NUM, True),
    (c("total", "equals", 0.1), {"total": Decimal("0.1")}, NUM, True),
    (c("total", "equals", 0.1), {"total": 0.1}, NUM, True),
    (c("total", "equals", 1), {"total": True}, NUM, False),
    (c("total", "equals", 1), {"total": float("nan")}, NUM, False),
    (c("deleted", "equals", True), {"deleted": True}, {"deleted": "boolean"}, True),
    (c("deleted", "equals", True), {"deleted": 1}, {"deleted": "boolean"}, True),
    (c("deleted", "equals", False), {"deleted": 0}, {"deleted": "boolean"}, True),
    (c("deleted", "equals", True), {"deleted": "true"}, {"deleted": "boolean"}, False),
    (
        c("created_at", "equals", "2024-05-01T08:00:00Z"),
        {"created_at": "2024-05-01T10:00:00+02:00"},
        TS,
        True,
    ),
    (c("created_at", "equals", "2024-05-01T08:00:00Z"), {"created_at": datetime(2024, 5, 1, 8)}, TS, True),
    (c("created_at", "equals", "2024-05-01T08:00:00Z"), {"created_at": datetime(2024, 5, 1, 8)}, None, True),
    (c("day", "equals", "2024-05-01"), {"day": date(2024, 5, 1)}, {"day": "date"}, True),
    (c("status", "equals", "2024-05-01"), {"status": "2024-05-01"}, TEXT, True),
    (c("status", "equals", "2024-05-01"), {"status": "2024-05-01T00:00:00"}, TEXT, False),
    (c("meta", "equals", "x"), {"meta": {"a": 1}}, {"meta": "other"}, False),
    (c("status", "equals", "5"), {"status": 5}, TEXT, False),
    (c("status", "equals", "paid"), {"status": "paid"}, TEXT, True),
    # not_equals
    (c("status", "not_equals", "paid"), {"status": "new"}, None, True),
    (c("status", "not_equals", "paid"), {"status": "paid"}, None, False),
    (c("status", "not_equals", "paid"), {"status": None}, None, False),
    (c("status", "not_equals", "paid"), {}, None, False),
    (c("status", "not_equals", "paid"), {"status": 5}, TEXT, False),
    # gt / gte / lt / lte
    (c("total", "gt", 10), {"total": 11}, None, True),
    (c("total", "gt", 10), {"total": 10}, None, False),
    (c("total", "gte", 10), {"total": Decimal("10")}, None, True),
    (c("total", "gte", 10.5), {"total": 10.49}, NUM, False),
    (c("total", "lt", 10), {"total": 9.99}, None, True),
    (c("total", "lt", 10), {"total": 10}, None, False),
    (c("total", "lte", 10), {"total": 10}, None, True),
    (c("total", "lte", 10), {"total": None}, None, False),
    (c("total", "gt", 10), {}, None, False),
    (c("total", "gt", 10), {"total": "abc"}, None, False),
    (c("total", "gt", 10), {"total": "11"}, NUM, False),
    (c("total", "gt", 10), {"total": Decimal("NaN")}, NUM, False),
    (c("total", "gt", 10), {"total": [11]}, None, False),
    (c("created_at", "gt", "2024-05-01"), {"created_at": "2024-05-01T00:00:01Z"}, TS, True),
    (c("created_at", "gt", "2024-05-01"), {"created_at": "2024-05-01 00:00:00"}, None, False),
    (c("created_at", "lt", "2024-05-01T00:00:00Z"), {"created_at": date(2024, 4, 30)}, TS, True),
    (c("created_at", "lt", "2024-05-01T00:00:00Z"), {"created_at": "not a date"}, TS, False),
    # between (inclusive)
    (c("total", "between", [1, 10]), {"total": 5}, None, True),
    (c("total", "between", [1, 10]), {"total": 1}, None, True),
    (c("total", "between", [1, 10]), {"total": 10}, None, True),
    (c("total", "between", [1, 10]), {"total": 10.01}, None, False),
    (c("total", "between", [1, 10]), {"total": None}, None, False),
    (c("total", "between", [10, 1]), {"total": 5}, None, False),
    (c("total", "between", [1, 10]), {"total": "5"}, None, False),
    (
        c("created_at", "between", ["2024-05-01", "2024-05-31T23:59:59Z"]),
        {"created_at": datetime(2024, 5, 15, tzinfo=UTC)},
        TS,
        True,
    ),
    # in / not_in
    (c("status", "in", ["paid", "void"]), {"status": "void"}, None, True),
    (c("status", "in", ["paid", "void"]), {"status": "new"}, None, False),
    (c("status", "in", ["paid", "void"]), {"status": None}, None, False),
    (c("status", "in", ["paid", "void"]), {}, None, False),
    (c("total", "in", [1, 2]), {"total": Decimal("2.0")}, None, True),
    (c("total", "in", [1, 2]), {"total": 2.0}, NUM, True),
    (c("total", "in", [1, 2]), {"total": True}, NUM, False),
    (c("total", "in", [1, 2]), {"total": [1]}, None, False),
    (c("status", "not_in", ["paid", "void"]), {"status": "new"}, None, True),
    (c("status", "not_in", ["paid", "void"]), {"status": "paid"}, None, False),
    (c("status", "not_in", ["paid", "void"]), {"status": None}, None, False),
    (c("status", "not_in", ["paid", "void"]), {}, None, False),
    # contains / not_contains / icontains: substring for text, element for JSON arrays
    (c("note", "contains", "rush"), {"note": "please rush it"}, None, True),
    (c("note", "contains", "Rush"), {"note": "please rush it"}, None, False),
    (c("note", "contains", "rush"), {"note": None}, None, False),
    (c("note", "contains", "rush"), {"note": 42}, None, False),
    (c("tags", "contains", "vip"), {"tags": ["vip", "new"]}, {"tags": "json"}, True),
    (c("tags", "contains", 2), {"tags": [1, 2.0]}, None, True),
    (c("tags", "contains", 1), {"tags": [True]}, {"tags": "json"}, False),
    (c("tags", "contains", True), {"tags": [1]}, {"tags": "json"}, False),
    (c("tags", "contains", "vip"), {"tags": {"vip": 1}}, {"tags": "json"}, False),
    (c("note", "not_contains", "rush"), {"note": "calm"}, None, True),
    (c("note", "not_contains", "rush"), {"note": "rush"}, None, False),
    (c("note", "not_contains", "rush"), {"note": None}, None, False),
    (c("note", "not_contains", "rush"), {}, None, False),
    (c("note", "icontains", "WORLD"), {"note": "Hello World"}, None, True),
    (c("note", "icontains", "Straße"), {"note": "STRASSE straße"}, None, True),
    (c("note", "icontains", "x"), {"note": "Hello"}, None, False),
    (c("note", "icontains", "x"), {"note": None}, None, False),
    (c("note", "icontains", "1"), {"note": 1}, None, False),
    # startswith / endswith
    (c("code", "startswith", "INV-"), {"code": "INV-1"}, None, True),
    (c("code", "startswith", "INV-"), {"code": "inv-1"}, None, False),
    (c("code", "startswith", "INV-"), {"code": None}, None, False),
    (c("code", "startswith", "1"), {"code": 12}, None, False),
    (c("code", "endswith", "-1"), {"code": "INV-1"}, None, True),
    (c("code", "endswith", "-1"), {"code": "INV-2"}, None, False),
    (c("code", "endswith", "-1"), {}, None, False),
    # matches (re.search on the first 10,000 characters)
    (c("code", "matches", r"^INV-\d+$"), {"code": "INV-123"}, None, True),
    (c("code", "matches", r"^INV-\d+$"), {"code": "INV-12a"}, None, False),
    (c("code", "matches", "\\d"), {"code": "abc1"}, None, True),
    (c("code", "matches", "x"), {"code": None}, None, False),
    (c("code", "matches", "1"), {"code": 1}, None, False),
    (c("code", "matches", "X"), {"code": "a" * 10_000 + "X"}, None, False),
    (c("code", "matches", "X"), {"code": "a" * 9_999 + "X"}, None, True),
    # null operators see NULL
    (c("note", "is_null"), {"note": None}, None, True),
    (c("note", "is_null"), {}, None, True),
    (c("note", "is_null"), {"note": ""}, None, False),
    (c("note", "is_not_null"), {"note": ""}, None, True),
    (c("note", "is_not_null"), {"note": None}, None, False),
    (c("note", "is_not_null"), {}, None, False),
    (c("note", "is_empty"), {"note": None}, None, True),
    (c("note", "is_empty"), {}, None, True),
    (c("note", "is_empty"), {"note": ""}, None, True),
    (c("note", "is_empty"), {"note": []}, None, True),
    (c("note", "is_empty"), {"note": {}}, None, True),
    (c("note", "is_empty"), {"note": " "}, None, False),
    (c("note", "is_empty"), {"note": [0]}, None, False),
    (c("note", "is_empty"), {"note": 0}, None, False),
    (c("note", "is_not_empty"), {"note": "x"}, None, True),
    (c("note", "is_not_empty"), {"note": ""}, None, False),
    (c("note", "is_not_empty"), {"note": None}, None, False),
    (c("note", "is_not_empty"), {"note": []}, None, False),
    # contains_any / contains_all
    (c("note", "contains_any", ["vip", "gold"]), {"note": "a vip order"}, None, True),
    (c("note", "contains_any", ["vip", "gold"]), {"note": "plain"}, None, False),
    (c("note", "contains_any", ["vip"]), {"note": None}, None, False),
    (c("tags", "contains_any", [3, 2]), {"tags": [1, 2]}, {"tags": "json"}, True),
    (c("tags", "contains_any", [3, 4]), {"tags": [1, 2]}, {"tags": "json"}, False),
    (c("note", "contains_all", ["a", "b"]), {"note": "b and a"}, None, True),
    (c("note", "contains_all", ["a", "z"]), {"note": "b and a"}, None, False),
    (c("tags", "contains_all", ["x", "y"]), {"tags": ["y", "x", "z"]}, {"tags": "json"}, True),
    (c("tags", "contains_all", ["x", "q"]), {"tags": ["y", "x"]}, {"tags": "json"}, False),
    (c("tags", "contains_all", ["x"]), {}, None, False),
    # older_than / newer_than, relative to the given now
    (c("created_at", "older_than", "3d"), {"created_at": NOW - timedelta(days=4)}, None, True),
    (c("created_at", "older_than", "3d"), {"created_at": NOW - timedelta(days=2)}, None, False),
    (c("created_at", "older_than", "3d"), {"created_at": NOW - timedelta(days=3)}, None, False),
    (c("created_at", "older_than", "3d"), {"created_at": None}, None, False),
    (c("created_at", "older_than", "3d"), {}, None, False),
    (c("created_at", "older_than", "90m"), {"created_at": "2024-06-01T10:00:00Z"}, None, True),
    (c("created_at", "older_than", "90m"), {"created_at": "2024-06-01T11:00:00"}, None, False),
    (c("created_at", "older_than", "1w"), {"created_at": date(2024, 5, 20)}, TS, True),
    (c("created_at", "older_than", "1w"), {"created_at": "yesterday"}, TS, False),
    (c("created_at", "older_than", "1w"), {"created_at": 12345}, TS, False),
    (c("created_at", "newer_than", "2h"), {"created_at": NOW - timedelta(hours=1)}, None, True),
    (c("created_at", "newer_than", "2h"), {"created_at": NOW - timedelta(hours=3)}, None, False),
    (c("created_at", "newer_than", "2h"), {"created_at": NOW + timedelta(days=1)}, None, True),
    (c("created_at", "newer_than", "30s"), {"created_at": datetime(2024, 6, 1, 11, 59, 45)}, None, True),
    (c("created_at", "newer_than", "2h"), {"created_at": None}, None, False),
]


@pytest.mark.parametrize(("condition", "record", "types", "expected"), CASES)
def test_operator_semantics(
    condition: dict[str, Any], record: dict[str, Any], types: dict[str, str] | None, expected: bool
) -> None:
    assert evaluate(condition, record, types=types) is expected


def test_every_operator_of_the_language_is_covered_by_the_cases() -> None:
    event_only = {"changed", "changed_to", "changed_from"}
    covered = {condition["operator"] for condition, _, _, _ in CASES}
    assert covered | event_only == set(OPERATOR_NAMES)


def test_now_may_be_naive_and_means_utc() -> None:
    naive_now = datetime(2024, 6, 1, 12, 0)
    record = {"created_at": datetime(2024, 6, 1, 10, 0, tzinfo=UTC)}
    assert evaluate(c("created_at", "older_than", "90m"), record, now=naive_now) is True
    assert evaluate(c("created_at", "older_than", "3h"), record, now=naive_now) is False


# Events: changed, changed_to, changed_from
@pytest.mark.parametrize(
    ("condition", "record", "old", "changed", "expected"),
    [
        (c("status", "changed"), {"status": "paid"}, None, {"status"}, True),
        (c("status", "changed"), {"status": "paid"}, None, {"total"}, False),
        (c("status", "changed"), {"status": "paid"}, None, None, False),
        (c("status", "changed"), {"status": "paid"}, {"status": "new"}, None, True),
        (c("status", "changed"), {"status": "paid"}, {"status": "paid"}, None, False),
        (c("status", "changed"), {"status": None}, {"status": "new"}, None, True),
        (c("status", "changed"), {"status": None}, None, {"status"}, True),
        (c("status", "changed_to", "paid"), {"status": "paid"}, {"status": "new"}, {"status"}, True),
        (c("status", "changed_to", "paid"), {"status": "shipped"}, {"status": "new"}, {"status"}, False),
        (c("status", "changed_to", "paid"), {"status": "paid"}, {"status": "paid"}, set(), False),
        (c("status", "changed_to", "paid"), {"status": "paid"}, None, None, False),
        (c("status", "changed_to", "paid"), {"status": None}, None, {"status"}, False),
        (c("status", "changed_to", "paid"), {"status": "paid"}, {"status": "new"}, None, True),
        (c("status", "changed_from", "new"), {"status": "paid"}, {"status": "new"}, {"status"}, True),
        (c("status", "changed_from", "new"), {"status": "paid"}, {"status": "draft"}, {"status"}, False),
        (c("status", "changed_from", "new"), {"status": "paid"}, None, {"status"}, False),
        (c("status", "changed_from", "new"), {"status": "paid"}, {}, {"status"}, False),
        (c("status", "changed_from", "new"), {"status": "new"}, {"status": "new"}, None, False),
        (c("total", "changed_from", 10), {"total": 20}, {"total": Decimal("10.0")}, {"total"}, True),
    ],
)
def test_event_operators(
    condition: dict[str, Any],
    record: dict[str, Any],
    old: dict[str, Any] | None,
    changed: set[str] | None,
    expected: bool,
) -> None:
    assert evaluate(condition, record, old=old, changed=changed) is expected


# The registry
def test_registry_has_exactly_the_operators_of_the_language() -> None:
    assert set(OPERATORS) == set(OPERATOR_NAMES)
    assert {name for name, spec in OPERATORS.items() if spec.event_only} == {
        "changed",
        "changed_to",
        "changed_from",
    }
    catalog_types = {"text", "integer", "numeric", "boolean", "timestamp", "date", "json", "other"}
    for spec in OPERATORS.values():
        assert spec.column_types <= catalog_types and spec.column_types, spec.name
        assert spec.arity in ("none", "one", "two", "list")
        assert (spec.arity == "none") == (spec.operand == "none"), spec.name


def test_arity_of_operators() -> None:
    assert OPERATORS["between"].arity == "two"
    assert {name for name, spec in OPERATORS.items() if spec.arity == "list"} == {
        "in",
        "not_in",
        "contains_any",
        "contains_all",
    }
    assert {name for name, spec in OPERATORS.items() if spec.arity == "none"} == {
        "is_null",
        "is_not_null",
        "is_empty",
        "is_not_empty",
        "changed",
    }


def test_operators_for_column_types() -> None:
    boolean = ("equals", "not_equals", "is_null", "is_not_null", "changed", "changed_to", "changed_from")
    assert operators_for("boolean") == boolean
    assert "gt" in operators_for("numeric") and "matches" not in operators_for("numeric")
    assert "older_than" in operators_for("date") and "older_than" not in operators_for("text")
    assert "contains" in operators_for("json") and "equals" not in operators_for("json")
    assert operators_for("no-such-type") == ()


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(OPERATORS["equals"])


def test_a_registered_operator_is_evaluated_by_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operators_module, "_REGISTRY", dict(operators_module._REGISTRY))
    monkeypatch.setattr(operators_module, "OPERATORS", operators_module._REGISTRY)
    monkeypatch.setattr("rule_compiler.conditions.evaluator.OPERATORS", operators_module._REGISTRY)
    monkeypatch.setattr(
        "rule_compiler.definitions.conditions.OPERATOR_NAMES", (*OPERATOR_NAMES, "divisible_by")
    )
    register(
        OperatorSpec(
            "divisible_by", "one", frozenset({"integer"}), lambda v, o: v % o == 0, "a multiple of the value"
        )
    )
    compiled = compile_condition(node({"field": "n", "operator": "divisible_by", "value": 3}))
    assert compiled.matches({"n": 9}, now=NOW) is True
    assert compiled.matches({"n": 10}, now=NOW) is False
    assert compiled.matches({"n": None}, now=NOW) is False
    assert compiled.matches({"n": "9"}, now=NOW) is False
