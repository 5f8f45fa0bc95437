"""The demo rules tell one story: no two of them undo each other's changes.

For every pair of demo rules (``include/rules`` and ``include/rules-using-templates``, condition
templates expanded, as ``make run`` stores them) that write the same column of the same table, either
they write the same value or their conditions can never hold on the same row. The check is
deliberately small: a condition tree is reduced to what it says about each field at its top level
(``equals``/``in``/``changed_to`` and their ``not``, ``any`` of those on one field, numeric bounds);
two rules exclude each other when some field can satisfy both. Anything it cannot read counts as
"may overlap", so it can only miss an exclusion, never invent one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rule_compiler.condition_templates import expand_conditions
from rule_compiler.definitions import ConditionTemplateDefinition, RuleDefinition
from rule_compiler.definitions.definition_template import RuleTemplateDefinition
from rule_compiler.loading import read_definition_file
from rule_compiler.validation import validate_definition
from rule_compiler.validation.template_use import expand_use
from tests.conftest import ROOT

RULE_FOLDERS = (ROOT / "include" / "rules", ROOT / "include" / "rules-using-templates")
TEMPLATES = ROOT / "include" / "templates"


@dataclass(frozen=True)
class Values:
    """The values a field may take: ``values`` (or every value but them when ``excluded``)."""

    values: frozenset[Any]
    excluded: bool = False

    def meet(self, other: Values) -> Values:
        if not self.excluded and not other.excluded:
            return Values(self.values & other.values)
        if self.excluded and other.excluded:
            return Values(self.values | other.values, excluded=True)
        kept, removed = (self, other) if not self.excluded else (other, self)
        return Values(kept.values - removed.values)

    def join(self, other: Values) -> Values | None:
        if not self.excluded and not other.excluded:
            return Values(self.values | other.values)
        return None  # a union with a complement: not worth reading

    @property
    def empty(self) -> bool:
        return not self.excluded and not self.values


@dataclass(frozen=True)
class Bounds:
    """A numeric interval; ``closed_low``/``closed_high`` say whether its ends belong to it."""

    low: float = -math.inf
    high: float = math.inf
    closed_low: bool = False
    closed_high: bool = False

    def meet(self, other: Bounds) -> Bounds:
        low, closed_low = max((self.low, self.closed_low), (other.low, other.closed_low), key=_low_key)
        high, closed_high = min((self.high, self.closed_high), (other.high, other.closed_high), key=_high_key)
        return Bounds(low, high, closed_low, closed_high)

    @property
    def empty(self) -> bool:
        return self.low > self.high or (self.low == self.high and not (self.closed_low and self.closed_high))


def _low_key(end: tuple[float, bool]) -> tuple[float, bool]:
    return end[0], not end[1]  # at the same number an open lower end is the tighter one


def _high_key(end: tuple[float, bool]) -> tuple[float, bool]:
    return end[0], end[1]


Constraint = Values | Bounds
_NUMERIC = {
    "gt": lambda v: Bounds(low=v),
    "gte": lambda v: Bounds(low=v, closed_low=True),
    "lt": lambda v: Bounds(high=v),
    "lte": lambda v: Bounds(high=v, closed_high=True),
}


def _leaf(node: dict[str, Any]) -> tuple[str, Constraint] | None:
    operator, value = node["operator"], node.get("value")
    if operator in ("equals", "changed_to") and not isinstance(value, dict | list):
        return node["field"], Values(frozenset([value]))
    if operator == "in" and isinstance(value, list):
        return node["field"], Values(frozenset(value))
    if operator == "not_in" and isinstance(value, list):
        return node["field"], Values(frozenset([*value, None]), excluded=True)
    if operator in _NUMERIC and isinstance(value, int | float) and not isinstance(value, bool):
        return node["field"], _NUMERIC[operator](float(value))
    return None


def constraints(node: dict[str, Any]) -> dict[str, Constraint]:
    """What ``node`` (a condition tree as JSON) says about single fields; nothing for what it cannot read."""
    if "all" in node:
        found: dict[str, Constraint] = {}
        for member in node["all"]:
            for field, constraint in constraints(member).items():
                found[field] = _meet(found[field], constraint) if field in found else constraint
        return found
    if "any" in node:
        members = [_leaf(member) if "field" in member else None for member in node["any"]]
        if not members or any(m is None or not isinstance(m[1], Values) for m in members):
            return {}
        fields = {m[0] for m in members if m is not None}
        if len(fields) != 1:
            return {}
        union: Values | None = None
        for member in members:
            assert member is not None and isinstance(member[1], Values)
            union = member[1] if union is None else union.join(member[1])
            if union is None:
                return {}
        return {fields.pop(): union} if union is not None else {}
    if "not" in node:
        inner = node["not"]
        leaf = _leaf(inner) if "field" in inner and inner["operator"] in ("equals", "in") else None
        if leaf is not None and isinstance(leaf[1], Values):
            return {leaf[0]: Values(leaf[1].values, excluded=True)}  # NULL = x is false: NULL is allowed
        return {}
    leaf = _leaf(node) if "field" in node else None
    return dict([leaf]) if leaf is not None else {}


def _meet(a: Constraint, b: Constraint) -> Constraint:
    if isinstance(a, Values) and isinstance(b, Values):
        return a.meet(b)
    if isinstance(a, Bounds) and isinstance(b, Bounds):
        return a.meet(b)
    return a  # a text set and a numeric range on one field: keep one, never claim emptiness


def exclusive(a: dict[str, Constraint], b: dict[str, Constraint]) -> str | None:
    """A field on which no row can satisfy both, or None."""
    for field in sorted(a.keys() & b.keys()):
        if type(a[field]) is type(b[field]) and _meet(a[field], b[field]).empty:
            return field
    return None


@dataclass(frozen=True)
class DemoRule:
    name: str
    table: tuple[str, str]  # (connection, table) whose rows the conditions select
    conditions: dict[str, Any]
    writes: dict[tuple[str, str, str], Any]  # (connection, table, column) -> value written


def _templates() -> dict[str, ConditionTemplateDefinition]:
    templates = {}
    for path in sorted(TEMPLATES.glob("*.yaml")):
        document = read_definition_file(path)
        if document["kind"] == "condition_template":
            parsed = validate_definition(document, None, templates={})
            assert isinstance(parsed, ConditionTemplateDefinition)
            templates[parsed.name] = parsed
    return templates


def _rule_templates() -> dict[str, RuleTemplateDefinition]:
    found = [read_definition_file(p) for p in sorted((ROOT / "include" / "rule-templates").glob("*.yaml"))]
    return {data["name"]: RuleTemplateDefinition.model_validate(data) for data in found}


def _demo_rules() -> list[DemoRule]:
    templates = _templates()
    rules = []
    for path in sorted(p for folder in RULE_FOLDERS for p in folder.glob("*.yaml")):
        document = read_definition_file(path)
        if "use" in document:
            document = expand_use(document, "rule_template", _rule_templates()).document
        rule = RuleDefinition.model_validate(document)
        assert rule.conditions is not None, path
        expanded, issues = expand_conditions(rule.conditions, templates, "conditions")
        assert issues == [], (path, issues)
        trigger = rule.trigger.model_dump(mode="json")
        target = trigger.get("target") or trigger
        table = (str(target["connection"]), str(target["table"]))
        writes: dict[tuple[str, str, str], Any] = {}
        for action in rule.actions:
            dumped = action.model_dump(mode="json")
            where = (str(dumped.get("connection")), str(dumped.get("table")))
            if dumped["type"] in ("update_record", "create_record"):
                writes.update({(*where, column): value for column, value in dumped["values"].items()})
            elif dumped["type"] == "delete_record":
                writes[(*where, "deleted" if dumped["soft"] else "*row*")] = True
        rules.append(
            DemoRule(
                rule.name, table, expanded.model_dump(mode="json", by_alias=True, exclude_none=True), writes
            )
        )
    return rules


def conflicts(rules: list[DemoRule]) -> list[str]:
    """Each pair of rules that write different values into one column of rows both may select."""
    found = []
    for first, second in itertools.combinations(rules, 2):
        for column in sorted(first.writes.keys() & second.writes.keys()):
            if first.writes[column] == second.writes[column]:
                continue
            same_rows = first.table == second.table == column[:2]
            field = (
                exclusive(constraints(first.conditions), constraints(second.conditions))
                if same_rows
                else None
            )
            if field is None:
                found.append(
                    f"{first.name} writes {column[2]}={first.writes[column]!r} and {second.name} writes "
                    f"{column[2]}={second.writes[column]!r} on rows both may select"
                )
    return found


def test_no_two_demo_rules_undo_each_other() -> None:
    rules = _demo_rules()
    assert len(rules) == 8
    writers = {column for rule in rules for column in rule.writes}
    assert ("app_db", "orders", "priority") in writers and ("app_db", "orders", "note") in writers
    assert conflicts(rules) == []


def test_the_story_the_demo_tells() -> None:
    """Who writes priority: open VIP orders become urgent, paid ones high (and both high-writers agree),
    shipped ones low (a rule built from a rule template)."""
    rules = {rule.name: rule for rule in _demo_rules()}
    priority = ("app_db", "orders", "priority")
    assert {name: rule.writes[priority] for name, rule in rules.items() if priority in rule.writes} == {
        "escalate-vip-orders": "urgent",
        "expedite-vip-payments": "high",
        "flag-big-paid-orders": "high",
        "deprioritise-shipped-orders": "low",
    }
    escalate = constraints(rules["escalate-vip-orders"].conditions)
    assert escalate["status"] == Values(frozenset({"pending", "payment_failed"}))
    assert exclusive(escalate, constraints(rules["flag-big-paid-orders"].conditions)) == "status"
    assert exclusive(escalate, constraints(rules["nudge-stale-pending"].conditions)) == "customer__tier"


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        # the fight issue 14 found: big paid VIP orders set to high on demand, back to urgent every 15 min
        (
            {"all": [{"field": "status", "operator": "equals", "value": "paid"},
                     {"field": "total", "operator": "gte", "value": 1000}]},
            {"all": [{"field": "customer__tier", "operator": "equals", "value": "vip"},
                     {"field": "total", "operator": "gt", "value": 500},
                     {"any": [{"field": "status", "operator": "equals", "value": "pending"},
                              {"field": "status", "operator": "equals", "value": "paid"}]}]},
            True,
        ),
        (
            {"all": [{"field": "total", "operator": "gt", "value": 500}]},
            {"all": [{"field": "total", "operator": "lte", "value": 500}]},
            False,
        ),
        (
            {"all": [{"field": "total", "operator": "gte", "value": 500}]},
            {"all": [{"field": "total", "operator": "lte", "value": 500}]},
            True,
        ),
        (  # what the check cannot read never counts as an exclusion
            {"any": [{"field": "status", "operator": "equals", "value": "paid"},
                     {"field": "total", "operator": "gt", "value": 5}]},
            {"all": [{"field": "status", "operator": "equals", "value": "pending"}]},
            True,
        ),
        (
            {"not": {"field": "tier", "operator": "in", "value": ["vip", "gold"]}},
            {"field": "tier", "operator": "equals", "value": "gold"},
            False,
        ),
    ],
)  # fmt: skip
def test_the_check_finds_overlaps_and_exclusions(
    first: dict[str, Any], second: dict[str, Any], overlap: bool
) -> None:
    rules = [
        DemoRule("a", ("db", "orders"), first, {("db", "orders", "priority"): "high"}),
        DemoRule("b", ("db", "orders"), second, {("db", "orders", "priority"): "urgent"}),
    ]
    assert bool(conflicts(rules)) is overlap
    agreeing = [rules[0], DemoRule("c", ("db", "orders"), second, {("db", "orders", "priority"): "high"})]
    assert conflicts(agreeing) == []


def test_every_demo_rule_file_is_read() -> None:
    files = [p for folder in RULE_FOLDERS for p in folder.glob("*.yaml")]
    assert {Path(p).stem for p in files} == {rule.name for rule in _demo_rules()}
