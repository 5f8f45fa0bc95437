"""Groups, NULL through ``not``, field references, ``fields``, the trace format and compile errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rule_compiler.conditions import CompiledCondition, ConditionCompileError, compile_condition
from rule_compiler.definitions.conditions import Condition
from rule_compiler.errors import CompileError

from ._support import NOW, evaluate, explain, node

BIG = {"field": "total", "operator": "gte", "value": 1000}
VIP = {"field": "customer__tier", "operator": "equals", "value": "vip"}
HIGH = {"field": "priority", "operator": "equals", "value": "high"}
ESCALATE = {
    "all": [
        BIG,
        VIP,
        {"any": [{"field": "status", "operator": "changed_to", "value": "paid"}, {"not": HIGH}]},
    ]
}


def test_no_conditions_always_match() -> None:
    compiled = compile_condition(None)
    assert compiled.matches({}, now=NOW) is True
    assert compiled.fields == frozenset()
    assert compiled.explain({"x": 1}, now=NOW) == {"matched": True, "node": None}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"total": 1200, "customer__tier": "vip", "priority": "low"}, True),
        ({"total": 1200, "customer__tier": "vip", "priority": "high"}, False),
        ({"total": 1200, "customer__tier": "vip", "priority": None}, True),
        ({"total": 1200, "customer__tier": "vip"}, True),
        ({"total": 999, "customer__tier": "vip", "priority": "low"}, False),
        ({"total": 1200, "priority": "low"}, False),
        ({"total": None, "customer__tier": "vip"}, False),
    ],
)
def test_nested_groups(record: dict[str, Any], expected: bool) -> None:
    assert evaluate(ESCALATE, record) is expected


def test_changed_to_inside_any_uses_the_event() -> None:
    record = {"total": 1200, "customer__tier": "vip", "priority": "high", "status": "paid"}
    assert evaluate(ESCALATE, record) is False
    assert evaluate(ESCALATE, record, old={"status": "new"}, changed={"status"}) is True


@pytest.mark.parametrize("record", [{"priority": None}, {}, {"priority": 3}])
def test_not_of_a_comparison_with_null_or_a_bad_type_is_true(record: dict[str, Any]) -> None:
    assert evaluate({"not": HIGH}, record) is True
    assert evaluate({"not": {"not": HIGH}}, record) is False
    assert evaluate({"not": {"all": [HIGH]}}, record) is True


@pytest.mark.parametrize(
    "operator_value",
    [("gt", 5), ("gte", 5), ("lt", 5), ("lte", 5), ("not_equals", 5), ("equals", 5), ("in", [5])],
)
@pytest.mark.parametrize("value", [None, "x", 4, 5, 6, Decimal("5.0"), 5.5])
def test_not_is_the_complement_of_every_comparison(operator_value: tuple[str, Any], value: Any) -> None:
    operator, operand = operator_value
    condition = {"field": "n", "operator": operator, "value": operand}
    plain = evaluate(condition, {"n": value}, types={"n": "numeric"})
    assert evaluate({"not": condition}, {"n": value}, types={"n": "numeric"}) is (not plain)


TEXT_EXPECTED = {
    "equals": lambda v: v == "paid",
    "not_equals": lambda v: isinstance(v, str) and v != "paid",
    "in": lambda v: v == "paid",
    "not_in": lambda v: isinstance(v, str) and v != "paid",
    "contains": lambda v: isinstance(v, str) and "paid" in v,
    "startswith": lambda v: isinstance(v, str) and v.startswith("paid"),
}


@pytest.mark.parametrize("operator", list(TEXT_EXPECTED))
@pytest.mark.parametrize("value", [None, "paid", "Paid", "", "paid!", 5, ["paid"]])
def test_not_is_the_complement_on_text_columns(operator: str, value: Any) -> None:
    operand: Any = ["paid"] if operator in ("in", "not_in") else "paid"
    condition = {"field": "s", "operator": operator, "value": operand}
    plain = evaluate(condition, {"s": value}, types={"s": "text"})
    assert plain is TEXT_EXPECTED[operator](value)
    assert evaluate({"not": condition}, {"s": value}, types={"s": "text"}) is (not plain)
    # Without column types a list is a JSON array: it contains its element.
    untyped = evaluate(condition, {"s": value})
    assert untyped is (plain or (operator == "contains" and value == ["paid"]))
    assert evaluate({"not": condition}, {"s": value}) is (not untyped)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_groups_of_every_size(size: int) -> None:
    members = [{"field": f"f{i}", "operator": "equals", "value": i} for i in range(size)]
    everything = {f"f{i}": i for i in range(size)}
    last_wrong = {**everything, f"f{size - 1}": -1}
    assert evaluate({"all": members}, everything) is True
    assert evaluate({"all": members}, last_wrong) is False
    assert evaluate({"any": members}, last_wrong) is (size > 1)
    assert evaluate({"any": members}, {}) is False
    # inside another group, where the members are not the root
    assert evaluate({"not": {"all": members}}, last_wrong) is True
    assert evaluate({"not": {"any": members}}, {}) is True


def test_fields_lists_every_field_read_including_field_ref_targets() -> None:
    compiled = compile_condition(
        node(
            {
                "all": [
                    ESCALATE,
                    {"field": "total", "operator": "lte", "value": {"field_ref": "customer__credit_limit"}},
                    {"field": "note", "operator": "is_null"},
                ]
            }
        )
    )
    assert compiled.fields == frozenset(
        {"total", "customer__tier", "status", "priority", "customer__credit_limit", "note"}
    )
    assert "fields=" in repr(compiled)
    assert isinstance(compiled, CompiledCondition)


@pytest.mark.parametrize(
    ("record", "types", "expected"),
    [
        ({"total": 500, "limit": 1000}, None, True),
        ({"total": 1500, "limit": 1000}, None, False),
        ({"total": Decimal("1000"), "limit": 1000.0}, None, True),
        ({"total": 500, "limit": None}, None, False),
        ({"total": 500}, None, False),
        ({"total": None, "limit": 1}, None, False),
        ({"total": 500, "limit": "1000"}, {"total": "numeric"}, False),
        ({"total": "apple", "limit": "banana"}, None, True),
        ({"total": 500, "limit": "1000"}, None, False),
    ],
)
def test_field_ref(record: dict[str, Any], types: dict[str, str] | None, expected: bool) -> None:
    condition = {"field": "total", "operator": "lte", "value": {"field_ref": "limit"}}
    assert evaluate(condition, record, types=types) is expected


def test_field_ref_between_timestamps_compares_instants() -> None:
    condition = {"field": "shipped_at", "operator": "gt", "value": {"field_ref": "created_at"}}
    record = {"shipped_at": "2024-05-01T10:00:00+02:00", "created_at": datetime(2024, 5, 1, 7, 30)}
    assert evaluate(condition, record, types={"shipped_at": "timestamp"}) is True


def test_trace_format_and_short_circuit_marks() -> None:
    trace = explain(ESCALATE, {"total": 10, "customer__tier": "vip"})
    assert trace["matched"] is False
    root = trace["node"]
    assert (root["kind"], root["path"], root["result"], root["skipped"]) == ("all", "", False, False)
    first, second, third = root["children"]
    assert first == {
        "kind": "condition",
        "path": "all[0]",
        "result": False,
        "skipped": False,
        "children": [],
        "field": "total",
        "operator": "gte",
        "expected": 1000,
        "actual": 10,
        "reason": "'total' is 10: gte 1000 is false",
    }
    assert second["skipped"] is True and second["result"] is None and second["path"] == "all[1]"
    assert second["actual"] is None and "not evaluated" in second["reason"]
    assert third["kind"] == "any" and third["skipped"] is True and third["result"] is None
    nested = third["children"]
    assert [child["path"] for child in nested] == ["all[2].any[0]", "all[2].any[1]"]
    assert all(child["skipped"] for child in nested)
    assert nested[1]["children"][0]["path"] == "all[2].any[1].not"


def test_any_stops_at_the_first_true_member() -> None:
    trace = explain({"any": [VIP, BIG, HIGH]}, {"customer__tier": "std", "total": 5000})
    assert trace["matched"] is True
    results = [(child["result"], child["skipped"]) for child in trace["node"]["children"]]
    assert results == [(False, False), (True, False), (None, True)]


def test_trace_of_not_with_null() -> None:
    trace = explain({"not": HIGH}, {})
    assert trace["matched"] is True
    root = trace["node"]
    assert (root["kind"], root["result"]) == ("not", True)
    leaf = root["children"][0]
    assert (leaf["path"], leaf["result"], leaf["actual"]) == ("not", False, None)
    assert "no value" in leaf["reason"] and "'priority'" in leaf["reason"]


@pytest.mark.parametrize(
    ("condition", "record", "words"),
    [
        (VIP, {}, ["no related row", "customer__tier"]),
        (BIG, {}, ["no value", "'total'"]),
        (BIG, {"total": None}, ["NULL", "false"]),
        (BIG, {"total": "abc"}, ["'abc'", "str", "number"]),
        ({"field": "n", "operator": "is_null"}, {"n": None}, ["is NULL", "true"]),
        ({"field": "n", "operator": "is_not_empty"}, {"n": "x"}, ["'x'", "true"]),
        ({"field": "t", "operator": "older_than", "value": "3d"}, {"t": NOW - timedelta(days=4)}, ["before"]),
        ({"field": "t", "operator": "older_than", "value": "3d"}, {"t": "soon"}, ["not a date"]),
        ({"field": "t", "operator": "newer_than", "value": "3d"}, {"t": NOW}, ["after", "true"]),
        ({"field": "a", "operator": "lt", "value": {"field_ref": "b"}}, {"a": 1}, ["referenced", "'b'"]),
        ({"field": "a", "operator": "lt", "value": {"field_ref": "b"}}, {"a": 1, "b": None}, ["'b' is NULL"]),
        (
            {"field": "a", "operator": "lt", "value": {"field_ref": "b"}},
            {"a": 1, "b": 2},
            ["'b' (2)", "true"],
        ),
        (
            {"field": "a", "operator": "lt", "value": {"field_ref": "b"}},
            {"a": 1, "b": []},
            ["cannot compare"],
        ),
        ({"field": "a", "operator": "gt", "value": 1}, {"a": [1]}, ["[1] (list)", "cannot be compared"]),
        ({"field": "s", "operator": "changed"}, {"s": 1}, ["no change information"]),
    ],
)
def test_trace_reasons(condition: dict[str, Any], record: dict[str, Any], words: list[str]) -> None:
    reason = explain(condition, record)["node"]["reason"]
    for word in words:
        assert word in reason


def test_trace_of_a_field_ref_shows_the_referenced_value() -> None:
    condition = {"field": "total", "operator": "lte", "value": {"field_ref": "limit"}}
    leaf = explain(condition, {"total": 5, "limit": Decimal("7.5")})["node"]
    assert leaf["expected"] == {"field_ref": "limit", "value": "7.5"}
    assert leaf["actual"] == 5 and leaf["result"] is True
    skipped = explain({"all": [{"field": "x", "operator": "is_null"}, condition]}, {"x": 1})["node"][
        "children"
    ][1]
    assert skipped["skipped"] is True and skipped["expected"] == {"field_ref": "limit"}


def test_trace_reasons_for_events() -> None:
    changed_to = {"field": "status", "operator": "changed_to", "value": "paid"}
    changed_from = {"field": "status", "operator": "changed_from", "value": "new"}
    assert "did not change" in explain(changed_to, {"status": "paid"}, changed=set())["node"]["reason"]
    reason = explain(changed_to, {"status": "void"}, changed={"status"})["node"]["reason"]
    assert "changed" in reason and "new value" in reason and "'void'" in reason
    reason = explain(changed_from, {"status": "paid"}, changed={"status"})["node"]["reason"]
    assert "no previous values" in reason
    node_ = explain(changed_from, {"status": "paid"}, old={"status": "new"})["node"]
    assert node_["result"] is True and node_["actual"] == "new" and "old value" in node_["reason"]
    assert explain({"field": "status", "operator": "changed"}, {}, changed={"status"})["node"]["reason"] == (
        "'status' changed"
    )


def test_trace_values_are_json_safe() -> None:
    record = {
        "when": datetime(2024, 5, 1, 8, tzinfo=UTC),
        "amount": Decimal("12.50"),
        "blob": b"\x00\x01",
        "note": "x" * 2000,
        "tags": {"b", "a"},
        "ratio": float("inf"),
    }
    condition = {
        "all": [
            {"field": "when", "operator": "is_not_null"},
            {"field": "amount", "operator": "is_not_null"},
            {"field": "blob", "operator": "is_not_null"},
            {"field": "note", "operator": "is_not_null"},
            {"field": "tags", "operator": "is_not_null"},
            {"field": "ratio", "operator": "is_not_null"},
            {"field": "when", "operator": "older_than", "value": "1d"},
        ]
    }
    children = explain(condition, record)["node"]["children"]
    actual = [child["actual"] for child in children]
    assert actual[0] == "2024-05-01T08:00:00+00:00"
    assert actual[1] == "12.50"
    assert actual[2] == "b'\\x00\\x01'"
    assert actual[3].startswith("x" * 500) and actual[3].endswith("(2000 characters)")
    assert actual[4] == ["a", "b"]
    assert actual[5] == "inf"
    assert children[6]["expected"] == "1d"


def test_explain_agrees_with_matches_on_many_records() -> None:
    compiled = compile_condition(node(ESCALATE))
    tiers = ["vip", "std", None]
    priorities = ["high", "low", None]
    for total in (None, 999, 1000, "big"):
        for tier in tiers:
            for priority in priorities:
                record = {"total": total, "customer__tier": tier, "priority": priority}
                assert compiled.explain(record, now=NOW)["matched"] is compiled.matches(record, now=NOW)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "n", "operator": "matches", "value": "([a-z"}, "regular expression"),
        ({"field": "n", "operator": "matches", "value": "(a)\\1"}, "backreferences"),
        ({"field": "n", "operator": "matches", "value": 5}, "as text"),
        ({"field": "n", "operator": "older_than", "value": "3 parsecs"}, "duration"),
        ({"field": "n", "operator": "between", "value": [1]}, "two values"),
        ({"field": "n", "operator": "in", "value": []}, "a list"),
        ({"field": "n", "operator": "in", "value": "x"}, "a list"),
        ({"field": "n", "operator": "equals"}, "does not fit"),
        ({"field": "n", "operator": "equals", "value": [1]}, "does not fit"),
        ({"field": "n", "operator": "icontains", "value": 5}, "needs text"),
        ({"field": "n", "operator": "contains", "value": {"field_ref": "m"}}, "field_ref"),
    ],
)
def test_compile_errors_for_operands_validation_rejects(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ConditionCompileError, match=message) as caught:
        compile_condition(node(condition))
    assert isinstance(caught.value, CompileError)


def test_compile_error_for_operand_that_does_not_fit_the_column_type() -> None:
    with pytest.raises(ConditionCompileError, match="does not fit"):
        compile_condition(
            node({"field": "n", "operator": "gt", "value": "abc"}), column_types={"n": "numeric"}
        )


def test_unknown_operator_in_a_constructed_condition_is_a_compile_error() -> None:
    bogus = Condition.model_construct(field="n", operator="nope", value=1)
    with pytest.raises(ConditionCompileError, match="unknown operator"):
        compile_condition(bogus)


def test_compiled_condition_is_reusable_and_pure() -> None:
    compiled = compile_condition(node(BIG))
    record = {"total": 2000}
    assert [compiled.matches(record, now=NOW) for _ in range(3)] == [True, True, True]
    assert record == {"total": 2000}
    json.dumps(compiled.explain(record, now=NOW))
