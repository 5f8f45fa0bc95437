"""The workload of benchmarks/conditions.py: a 10-condition nested rule, the same checks written by
hand as Python lambdas with the engine's NULL semantics, and deterministic rows with ~5 % NULLs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from rule_compiler.definitions.conditions import ConditionNode

NULL_RATE = 0.05
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CUTOFF = timedelta(days=3)  # older_than 3d
OLDER_THAN = NOW - CUTOFF  # what a hand-written check compares with (computed once, as a person would)

# -- the rule ------------------------------------------------------------------------------------------

Row = Mapping[str, Any]

#: The 10 leaves, by label: the condition as a rule author writes it, and the same check by hand.
LEAVES: dict[str, tuple[dict[str, Any], Callable[[Row], bool]]] = {
    "total gte 1000": (
        {"field": "total", "operator": "gte", "value": 1000},
        lambda r: r["total"] is not None and r["total"] >= 1000,
    ),
    "status in [paid, pending]": (
        {"field": "status", "operator": "in", "value": ["paid", "pending"]},
        lambda r: r["status"] in ("paid", "pending"),
    ),
    "customer__tier equals vip": (
        {"field": "customer__tier", "operator": "equals", "value": "vip"},
        lambda r: r["customer__tier"] == "vip",
    ),
    "priority equals high": (
        {"field": "priority", "operator": "equals", "value": "high"},
        lambda r: r["priority"] == "high",
    ),
    "note contains rush": (
        {"field": "note", "operator": "contains", "value": "rush"},
        lambda r: r["note"] is not None and "rush" in r["note"],
    ),
    "region equals EU": (
        {"field": "region", "operator": "equals", "value": "EU"},
        lambda r: r["region"] == "EU",
    ),
    "created_at older_than 3d": (
        {"field": "created_at", "operator": "older_than", "value": "3d"},
        lambda r: r["created_at"] is not None and r["created_at"] < OLDER_THAN,
    ),
    "email endswith .com": (
        {"field": "email", "operator": "endswith", "value": ".com"},
        lambda r: r["email"] is not None and r["email"].endswith(".com"),
    ),
    "credit_limit between [100, 5000]": (
        {"field": "credit_limit", "operator": "between", "value": [100, 5000]},
        lambda r: r["credit_limit"] is not None and 100 <= r["credit_limit"] <= 5000,
    ),
    "account_manager_email is_not_null": (
        {"field": "account_manager_email", "operator": "is_not_null"},
        lambda r: r["account_manager_email"] is not None,
    ),
}


def _leaf(label: str) -> dict[str, Any]:
    return LEAVES[label][0]


NOT_REGION: dict[str, Any] = {"not": _leaf("region equals EU")}
ANY_GROUP: dict[str, Any] = {"any": [_leaf("priority equals high"), _leaf("note contains rush"), NOT_REGION]}
RULE: dict[str, Any] = {
    "all": [
        _leaf("total gte 1000"),
        _leaf("status in [paid, pending]"),
        _leaf("customer__tier equals vip"),
        ANY_GROUP,
        _leaf("created_at older_than 3d"),
        _leaf("email endswith .com"),
        _leaf("credit_limit between [100, 5000]"),
        _leaf("account_manager_email is_not_null"),
    ]
}


def hand_written(now: datetime) -> Callable[[Row], bool]:
    """The whole rule as one lambda, as a person would write it (the cut-off computed once)."""
    cutoff = now - CUTOFF
    return lambda r: (
        (r["total"] is not None and r["total"] >= 1000)
        and r["status"] in ("paid", "pending")
        and r["customer__tier"] == "vip"
        and (
            r["priority"] == "high"
            or (r["note"] is not None and "rush" in r["note"])
            or r["region"] != "EU"  # not (region equals EU): a NULL region is unequal, so true
        )
        and (r["created_at"] is not None and r["created_at"] < cutoff)
        and (r["email"] is not None and r["email"].endswith(".com"))
        and (r["credit_limit"] is not None and 100 <= r["credit_limit"] <= 5000)
        and r["account_manager_email"] is not None
    )


#: The sub-trees checked alone before timing, with their hand-written lambdas.
CHECKED_NODES: list[tuple[str, dict[str, Any], Callable[[Row], bool]]] = [
    *((label, condition, check) for label, (condition, check) in LEAVES.items()),
    ("not {region equals EU}", NOT_REGION, lambda r: r["region"] != "EU"),
    (
        "any [priority, note, not region]",
        ANY_GROUP,
        lambda r: (
            r["priority"] == "high" or (r["note"] is not None and "rush" in r["note"]) or r["region"] != "EU"
        ),
    ),
    ("the whole rule", RULE, hand_written(NOW)),
]

#: Catalog column types: what a rule's compile step passes (field path -> type).
COLUMN_TYPES: dict[str, str] = {
    "total": "numeric",
    "status": "text",
    "customer__tier": "text",
    "priority": "text",
    "note": "text",
    "region": "text",
    "created_at": "timestamp",
    "email": "text",
    "credit_limit": "integer",
    "account_manager_email": "text",
}

METADATA = sa.MetaData()
TABLE = sa.Table(
    "bench_rows",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("total", sa.Numeric(12, 2)),
    sa.Column("status", sa.Text),
    sa.Column("customer__tier", sa.Text),
    sa.Column("priority", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("email", sa.Text),
    sa.Column("credit_limit", sa.Integer),
    sa.Column("account_manager_email", sa.Text),
)


def resolve(field_path: str) -> sa.ColumnElement[Any]:
    return TABLE.c[field_path]


_NODE: TypeAdapter[ConditionNode] = TypeAdapter(ConditionNode)


def parse_rule(data: Mapping[str, Any]) -> ConditionNode:
    return _NODE.validate_python(data)


def count_leaves(node: Mapping[str, Any]) -> int:
    if "all" in node or "any" in node:
        return sum(count_leaves(child) for child in node.get("all", node.get("any", [])))
    if "not" in node:
        return count_leaves(node["not"])
    return 1


# -- the rows ------------------------------------------------------------------------------------------

NOTES = (
    "rush order, ship today",
    "please rush",
    "Rush delivery",  # capital R: contains is case-sensitive
    "call before delivery",
    "gift wrap",
    "leave at the door",
    "",
)
NOTE_WEIGHTS = (10, 8, 4, 20, 20, 28, 10)
DOMAINS = ("example.com", "mail.com", "example.org", "example.de", "example.co.uk", "EXAMPLE.COM")
DOMAIN_WEIGHTS = (55, 20, 10, 7, 6, 2)


def make_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` deterministic rows; each condition column is NULL in ~5% of rows, independently."""
    rng = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rng.random() < NULL_RATE else value

    def pick(options: tuple[str, ...], weights: tuple[int, ...]) -> str:
        return rng.choices(options, weights)[0]

    rows = []
    for index in range(1, count + 1):
        cents = rng.randint(0, 500_000)
        rows.append(
            {
                "id": index,
                "total": maybe(Decimal(cents).scaleb(-2)),
                "status": maybe(pick(("paid", "pending", "cancelled", "refunded"), (50, 30, 10, 10))),
                "customer__tier": maybe(pick(("vip", "gold", "standard"), (60, 25, 15))),
                "priority": maybe(pick(("high", "normal", "low"), (30, 50, 20))),
                "note": maybe(pick(NOTES, NOTE_WEIGHTS)),
                "region": maybe(pick(("EU", "US", "APAC"), (40, 35, 25))),
                "created_at": maybe(NOW - timedelta(seconds=rng.randint(0, 30 * 86_400))),
                "email": maybe(f"customer{index}@{pick(DOMAINS, DOMAIN_WEIGHTS)}"),
                "credit_limit": maybe(rng.randint(0, 6_000)),
                "account_manager_email": maybe(f"manager{rng.randint(1, 40)}@example.com"),
            }
        )
    return rows


def leaf_evaluations(rows: list[dict[str, Any]]) -> float:
    """Leaves evaluated per row with short-circuiting (the work the rule really does), via the lambdas."""
    total = 0
    checks = {id(condition): check for condition, check in LEAVES.values()}

    def walk(node: Mapping[str, Any], row: Row) -> bool:
        nonlocal total
        if "all" in node:
            return all(walk(child, row) for child in node["all"])
        if "any" in node:
            return any(walk(child, row) for child in node["any"])
        if "not" in node:
            return not walk(node["not"], row)
        total += 1
        return checks[id(node)](row)

    for row in rows:
        walk(RULE, row)
    return total / len(rows)
