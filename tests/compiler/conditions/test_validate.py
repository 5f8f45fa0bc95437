"""validate_operand: (path suffix, message) pairs with actionable messages."""

from __future__ import annotations

from typing import Any

import pytest

from rule_compiler.conditions import validate_operand
from rule_compiler.conditions.validate import MAX_LIST_LENGTH
from rule_compiler.definitions.conditions import Condition


def check(
    data: dict[str, Any], column_type: str | None = None, trigger: str = "event"
) -> list[tuple[str, str]]:
    return validate_operand(Condition.model_validate(data), column_type=column_type, trigger_type=trigger)


def one(data: dict[str, Any], column_type: str | None = None, trigger: str = "event") -> tuple[str, str]:
    problems = check(data, column_type, trigger)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(
    ("data", "column_type", "trigger"),
    [
        ({"field": "total", "operator": "gte", "value": 1000}, "numeric", "event"),
        ({"field": "total", "operator": "gte", "value": 10.5}, "integer", "schedule"),
        ({"field": "tier", "operator": "equals", "value": "vip"}, "text", "event"),
        ({"field": "status", "operator": "changed_to", "value": "paid"}, "text", "event"),
        ({"field": "status", "operator": "changed"}, "text", "event"),
        ({"field": "status", "operator": "in", "value": ["cancelled", "void"]}, "text", "manual"),
        ({"field": "created_at", "operator": "older_than", "value": "3d"}, "timestamp", "schedule"),
        ({"field": "created_at", "operator": "newer_than", "value": "90m"}, "date", "schedule"),
        ({"field": "created_at", "operator": "gt", "value": "2024-05-01T09:00:00Z"}, "timestamp", "event"),
        ({"field": "created_at", "operator": "gt", "value": "2024-05-01"}, "timestamp", "event"),
        ({"field": "day", "operator": "between", "value": ["2024-05-01", "2024-05-31"]}, "date", "event"),
        ({"field": "total", "operator": "between", "value": [10, 10]}, "numeric", "event"),
        ({"field": "email", "operator": "is_not_null"}, "text", "schedule"),
        ({"field": "tags", "operator": "contains", "value": 5}, "json", "event"),
        ({"field": "tags", "operator": "contains_all", "value": ["a", 1, True]}, "json", "event"),
        ({"field": "note", "operator": "matches", "value": r"^INV-\d+$"}, "text", "event"),
        ({"field": "note", "operator": "icontains", "value": "Rush"}, "text", "event"),
        ({"field": "deleted", "operator": "equals", "value": False}, "boolean", "event"),
        (
            {"field": "total", "operator": "lte", "value": {"field_ref": "customer__credit_limit"}},
            "numeric",
            "event",
        ),
        ({"field": "ref", "operator": "equals", "value": "a1b2"}, "other", "event"),
        ({"field": "x", "operator": "equals", "value": 5}, None, "event"),
    ],
)
def test_good_operands_have_no_problems(data: dict[str, Any], column_type: str | None, trigger: str) -> None:
    assert check(data, column_type, trigger) == []


# The shared bad fixtures (fixtures/definitions/bad) and the words their messages must contain.
def test_between_with_one_value_says_two() -> None:
    suffix, message = one({"field": "total", "operator": "between", "value": [10]}, "numeric")
    assert suffix == "value" and "two" in message and "[10, 100]" in message


def test_in_with_an_empty_list_says_empty() -> None:
    suffix, message = one({"field": "status", "operator": "in", "value": []}, "text")
    assert suffix == "value" and "empty" in message


def test_bad_regex_says_regular_expression() -> None:
    suffix, message = one({"field": "note", "operator": "matches", "value": "([a-z"}, "text")
    assert suffix == "value" and "regular expression" in message


def test_bad_duration_says_duration() -> None:
    suffix, message = one(
        {"field": "created_at", "operator": "older_than", "value": "3 parsecs"}, "timestamp"
    )
    assert suffix == "value" and "duration" in message and "'3d'" in message


@pytest.mark.parametrize("operator", ["changed", "changed_to", "changed_from"])
@pytest.mark.parametrize("trigger", ["schedule", "manual", "data"])
def test_changed_operators_need_an_event_trigger(operator: str, trigger: str) -> None:
    data = {"field": "status", "operator": operator}
    if operator != "changed":
        data["value"] = "paid"
    suffix, message = one(data, "text", trigger)
    assert suffix == "operator" and "event" in message and f"'{trigger}'" in message


@pytest.mark.parametrize(
    ("data", "column_type", "words"),
    [
        (
            {"field": "note", "operator": "gt", "value": "a"},
            "text",
            ["'gt'", "text columns accept", "startswith"],
        ),
        (
            {"field": "total", "operator": "contains", "value": "1"},
            "numeric",
            ["numeric columns accept", "between"],
        ),
        ({"field": "flag", "operator": "gt", "value": True}, "boolean", ["boolean columns accept", "equals"]),
        ({"field": "meta", "operator": "equals", "value": "x"}, "json", ["json columns accept", "contains"]),
        ({"field": "at", "operator": "older_than", "value": "3d"}, "text", ["text columns accept"]),
        (
            {"field": "at", "operator": "matches", "value": "x"},
            "timestamp",
            ["timestamp columns accept", "older"],
        ),
    ],
)
def test_operator_that_does_not_fit_the_column_type(
    data: dict[str, Any], column_type: str, words: list[str]
) -> None:
    suffix, message = one(data, column_type)
    assert suffix == "operator"
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("data", "column_type", "words"),
    [
        ({"field": "n", "operator": "is_null", "value": 1}, "text", ["takes no value", "remove"]),
        ({"field": "n", "operator": "is_empty", "value": ""}, "text", ["takes no value"]),
        ({"field": "n", "operator": "changed", "value": "x"}, "text", ["takes no value"]),
        ({"field": "n", "operator": "equals"}, "text", ["needs a value", "'paid'"]),
        ({"field": "n", "operator": "changed_to"}, "text", ["needs a value"]),
        ({"field": "n", "operator": "older_than"}, "timestamp", ["needs a value", "'3d'"]),
        ({"field": "n", "operator": "equals", "value": ["a", "b"]}, "text", ["not a list", "use 'in'"]),
        ({"field": "n", "operator": "gt", "value": [1]}, "numeric", ["not a list"]),
        ({"field": "n", "operator": "in", "value": "paid"}, "text", ["needs a list"]),
        ({"field": "n", "operator": "contains_any", "value": "x"}, "text", ["needs a list"]),
        ({"field": "n", "operator": "contains_all", "value": []}, "json", ["empty"]),
        ({"field": "n", "operator": "not_in", "value": []}, None, ["empty"]),
        ({"field": "n", "operator": "in", "value": ["a", 2]}, "text", ["item 2", "needs text"]),
        ({"field": "n", "operator": "between", "value": [1, 2, 3]}, "numeric", ["two"]),
        ({"field": "n", "operator": "between", "value": 5}, "numeric", ["two"]),
        (
            {"field": "n", "operator": "between", "value": [10, 1]},
            "numeric",
            ["in order", "low first", "[1, 10]"],
        ),
        (
            {"field": "n", "operator": "between", "value": ["2024-06-01", "2024-05-01T00:00:00Z"]},
            "timestamp",
            ["in order"],
        ),
        ({"field": "n", "operator": "between", "value": ["a", 1]}, None, ["same type"]),
        ({"field": "n", "operator": "between", "value": ["a", 1]}, "numeric", ["needs a number"]),
        ({"field": "n", "operator": "gt", "value": "abc"}, "numeric", ["needs a number", "'abc'"]),
        ({"field": "n", "operator": "gt", "value": True}, "integer", ["needs a number", "true"]),
        ({"field": "n", "operator": "gt", "value": float("nan")}, "numeric", ["finite"]),
        ({"field": "n", "operator": "equals", "value": 5}, "text", ["needs text", "quote it: '5'"]),
        ({"field": "n", "operator": "equals", "value": "yes"}, "boolean", ["true or false"]),
        (
            {"field": "n", "operator": "gt", "value": "3d"},
            "timestamp",
            ["ISO 8601", "older_than or newer_than"],
        ),
        ({"field": "n", "operator": "gt", "value": "2024-13-01"}, "timestamp", ["ISO 8601"]),
        ({"field": "n", "operator": "gt", "value": 1714550400}, "timestamp", ["ISO 8601"]),
        ({"field": "n", "operator": "equals", "value": "2024-05-01T10:00:00"}, "date", ["ISO 8601 date"]),
        ({"field": "n", "operator": "equals", "value": "2024-02-30"}, "date", ["ISO 8601 date"]),
        ({"field": "n", "operator": "icontains", "value": 5}, "text", ["needs text"]),
        ({"field": "n", "operator": "startswith", "value": 5}, None, ["needs text"]),
        (
            {"field": "n", "operator": "matches", "value": "(a)\\1"},
            "text",
            ["regular expression", "backreferences"],
        ),
        ({"field": "n", "operator": "matches", "value": 5}, "text", ["regular expression", "as text"]),
        ({"field": "n", "operator": "newer_than", "value": "-2h"}, "timestamp", ["duration", "negative"]),
        ({"field": "n", "operator": "newer_than", "value": 3}, "timestamp", ["duration"]),
        (
            {"field": "n", "operator": "contains", "value": {"field_ref": "m"}},
            "text",
            ["cannot compare with another field", "equals", "lte"],
        ),
        (
            {"field": "n", "operator": "in", "value": {"field_ref": "m"}},
            "text",
            ["cannot compare with another"],
        ),
    ],
)
def test_value_problems(data: dict[str, Any], column_type: str | None, words: list[str]) -> None:
    suffix, message = one(data, column_type)
    assert suffix == "value"
    for word in words:
        assert word in message, message


def test_lists_are_capped() -> None:
    suffix, message = one(
        {"field": "n", "operator": "in", "value": list(range(MAX_LIST_LENGTH + 1))}, "integer"
    )
    assert suffix == "value" and "at most" in message
    assert check({"field": "n", "operator": "in", "value": list(range(MAX_LIST_LENGTH))}, "integer") == []


def test_unknown_column_type_skips_only_the_type_checks() -> None:
    assert check({"field": "n", "operator": "gt", "value": "abc"}, None) == []
    assert one({"field": "n", "operator": "between", "value": [1]}, None)[0] == "value"


def test_unknown_operator() -> None:
    bogus = Condition.model_construct(field="n", operator="nope", value=1)
    assert validate_operand(bogus, column_type="text", trigger_type="event") == [
        ("operator", validate_operand(bogus, column_type=None, trigger_type="event")[0][1])
    ]
    assert "unknown operator 'nope'" in validate_operand(bogus, column_type=None, trigger_type="event")[0][1]
