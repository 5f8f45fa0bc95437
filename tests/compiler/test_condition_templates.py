"""Condition templates: expansion (parameters, defaults, types, nesting, cycles), errors at the `use`
node, `{param}` refused in rules, template checks, and rules compiled from their expanded form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.condition_templates import MAX_TEMPLATE_DEPTH, expand_conditions, type_problem
from rule_compiler.conditions import compile_condition
from rule_compiler.definitions import (
    AllGroup,
    Condition,
    ConditionTemplateDefinition,
    RuleDefinition,
    UnexpandedTemplateError,
    UseTemplate,
)
from rule_compiler.definitions.conditions import depth_of, iter_leaves
from rule_compiler.errors import RuleValidationError
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import Compiled, CompiledTemplate, compile_document
from rule_compiler.validation import validate_definition
from tests.conftest import DEMO_CATALOG, ROOT

TEMPLATE_FILE = ROOT / "include" / "templates" / "big-order.yaml"
RULE_FILE = ROOT / "include" / "rules-using-templates" / "note-big-vip-orders.yaml"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _template_doc() -> dict[str, Any]:
    return read_definition_file(TEMPLATE_FILE)


def _template(
    doc: dict[str, Any] | None = None, **templates: ConditionTemplateDefinition
) -> ConditionTemplateDefinition:
    result = validate_definition(doc or _template_doc(), None, templates=templates)
    assert isinstance(result, ConditionTemplateDefinition)
    return result


def _rule_doc() -> dict[str, Any]:
    return read_definition_file(RULE_FILE)


def _issues(doc: dict[str, Any], templates: dict[str, ConditionTemplateDefinition]) -> list[tuple[str, str]]:
    with pytest.raises(RuleValidationError) as caught:
        compile_document(doc, _catalog(), templates=templates)
    return [(i.path, i.message) for i in caught.value.issues]


def _use(with_: dict[str, Any] | None = None, name: str = "big-order") -> dict[str, Any]:
    return {"use": name, "with": with_ or {}}


def _expand(node: dict[str, Any], templates: dict[str, ConditionTemplateDefinition]) -> tuple[Any, list[Any]]:
    parsed = RuleDefinition.model_validate({**_rule_doc(), "conditions": node}).conditions
    assert parsed is not None
    return expand_conditions(parsed, templates, "conditions")


# -- expansion ---------------------------------------------------------------------------------------


def test_defaults_fill_missing_parameters() -> None:
    expanded, issues = _expand(_use(), {"big-order": _template()})
    assert issues == []
    assert expanded.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "all": [
            {"field": "status", "operator": "in", "value": ["paid"]},
            {"field": "total", "operator": "gte", "value": 1000},
        ]
    }


def test_with_values_win_over_defaults() -> None:
    expanded, issues = _expand(
        _use({"min_total": 250.5, "statuses": ["paid", "shipped"]}), {"big-order": _template()}
    )
    assert issues == []
    leaves = [leaf.value for _, leaf in iter_leaves(expanded, "conditions")]
    assert leaves == [["paid", "shipped"], 250.5]


def test_list_item_params_are_spliced() -> None:
    doc = _template_doc()
    doc["condition"]["all"][0]["value"] = ["void", {"param": "statuses"}]
    expanded, issues = _expand(_use({"statuses": ["paid", "shipped"]}), {"big-order": _template(doc)})
    assert issues == []
    assert iter_leaves(expanded, "")[0][1].value == ["void", "paid", "shipped"]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", "x", 1),
        ("number", 1.5, True),
        ("number", 3, "3"),
        ("integer", 3, 3.5),
        ("boolean", False, "false"),
        ("list", ["a", 1], []),
        ("list", [True], [["nested"]]),
        ("duration", "3d", "3 days"),
    ],
)
def test_parameter_types(kind: str, good: Any, bad: Any) -> None:
    assert type_problem(kind, good) is None
    assert type_problem(kind, bad)


def test_wrong_type_unknown_and_missing_parameters_are_reported_at_with() -> None:
    doc = _template_doc()
    del doc["parameters"]["min_total"]["default"]
    templates = {"big-order": _template(doc)}
    _, issues = _expand(_use({"statuses": "paid", "colour": "red"}), templates)
    found = {(i.path, i.message.split(" (")[0]) for i in issues}
    assert ("conditions.with.statuses", "parameter 'statuses'") in found
    assert ("conditions.with.colour", "template 'big-order' has no parameter 'colour'") in found
    missing = [i for i in issues if i.path == "conditions.with"]
    assert missing and "missing parameter 'min_total'" in missing[0].message
    assert "template 'big-order' needs: min_total (number)" in missing[0].message


def test_unknown_template_lists_the_organizations_templates() -> None:
    _, issues = _expand(_use(name="small-order"), {"big-order": _template()})
    assert [i.path for i in issues] == ["conditions.use"]
    assert "unknown condition template 'small-order'" in issues[0].message
    assert "big-order" in issues[0].message


def _nested(name: str, uses: str, param: bool = False) -> ConditionTemplateDefinition:
    with_ = {"min_total": {"param": "m"}} if param else {}
    return ConditionTemplateDefinition.model_validate(
        {
            "kind": "condition_template",
            "name": name,
            "organization": "acme",
            "parameters": {"m": {"type": "number"}} if param else {},
            "condition": {"not": {"use": uses, "with": with_}},
        }
    )


def test_nested_templates_pass_parameters_down() -> None:
    templates = {"big-order": _template(), "not-big": _nested("not-big", "big-order", param=True)}
    assert validate_definition(
        {**templates["not-big"].model_dump(mode="json", by_alias=True)}, None, templates=templates
    )
    expanded, issues = _expand(_use({"m": 42}, "not-big"), templates)
    assert issues == []
    assert [leaf.value for _, leaf in iter_leaves(expanded, "")] == [["paid"], 42]


def test_nesting_is_limited() -> None:
    templates = {"big-order": _template()}
    previous = "big-order"
    for level in range(MAX_TEMPLATE_DEPTH):
        name = f"level-{level}"
        templates[name] = _nested(name, previous)
        previous = name
    _, ok = _expand(_use(name="level-1"), templates)
    assert ok == []
    _, issues = _expand(_use(name=previous), templates)
    assert len(issues) == 1 and "nest deeper than 3 levels" in issues[0].message
    assert issues[0].path == "conditions"  # reported at the rule's `use` node


def test_cycles_are_reported() -> None:
    templates = {"ping": _nested("ping", "pong"), "pong": _nested("pong", "ping")}
    _, issues = _expand(_use(name="ping"), templates)
    assert len(issues) == 1 and "cycle: ping -> pong -> ping" in issues[0].message
    with pytest.raises(RuleValidationError, match="cycle: ping -> pong -> ping"):
        validate_definition(
            templates["ping"].model_dump(mode="json", by_alias=True), None, templates=templates
        )


def test_unexpanded_trees_are_refused_by_walkers_and_the_evaluator() -> None:
    node = AllGroup(all=[Condition(field="total", operator="gte", value=1), UseTemplate(use="big-order")])
    for walk in (lambda: iter_leaves(node, ""), lambda: depth_of(node), lambda: compile_condition(node)):
        with pytest.raises(UnexpandedTemplateError, match="'big-order' was not expanded"):
            walk()


# -- rules using templates -------------------------------------------------------------------------


def test_rule_compiles_from_the_expanded_form_and_keeps_use_as_written() -> None:
    compiled = compile_document(_rule_doc(), _catalog(), templates={"big-order": _template()})
    assert isinstance(compiled, Compiled)
    written = compiled.definition.model_dump(mode="json", by_alias=True)
    assert written["conditions"]["all"][0] == {
        "use": "big-order",
        "with": {"min_total": 500, "statuses": ["cancelled"]},
    }
    params = json.loads(compiled.spec_json)["tasks"][0]["params"]
    assert "use" not in json.dumps(params["conditions"])
    assert params["conditions"]["all"][0]["all"][1] == {"field": "total", "operator": "gte", "value": 500}
    assert params["row_source"]["paths"]["customer__tier"]


def test_rule_with_use_and_no_templates_says_what_to_do() -> None:
    issues = _issues(_rule_doc(), {})
    assert issues[0][0] == "conditions.all[0].use"
    assert "apply it first" in issues[0][1] and "none" in issues[0][1]


def test_error_inside_a_template_is_reported_at_the_use_node() -> None:
    doc = _template_doc()
    doc["condition"]["all"][1]["field"] = "totl"
    issues = _issues(_rule_doc(), {"big-order": _template(doc)})
    assert [path for path, _ in issues] == ["conditions.all[0]"]
    assert issues[0][1].startswith("in template 'big-order': field 'totl'")
    assert "(at condition.all[1].field)" in issues[0][1]


def test_operand_problem_from_a_parameter_is_reported_at_the_use_node() -> None:
    doc = _rule_doc()
    doc["conditions"]["all"][0]["with"] = {"statuses": [1, 2]}
    issues = _issues(doc, {"big-order": _template()})
    assert issues and all(path == "conditions.all[0]" for path, _ in issues)
    assert "in template 'big-order'" in issues[0][1]


def test_templates_work_in_action_where() -> None:
    doc = _rule_doc()
    doc["actions"][0]["where"] = {"use": "big-order"}
    compiled = compile_document(doc, _catalog(), templates={"big-order": _template()})
    assert isinstance(compiled, Compiled)
    assert json.loads(compiled.spec_json)["tasks"][1]["params"]["where"]["all"][0]["value"] == ["paid"]
    doc["actions"][0]["where"] = {"use": "big-order", "with": {"min_total": "lots"}}
    assert [p for p, _ in _issues(doc, {"big-order": _template()})] == ["actions[0].where.with.min_total"]


@pytest.mark.parametrize(
    ("value", "where"),
    [({"param": "x"}, "conditions.all[1].value"), (["gold", {"param": "x"}], "conditions.all[1].value[1]")],
)
def test_param_refs_are_refused_in_rules(value: Any, where: str) -> None:
    doc = _rule_doc()
    doc["conditions"]["all"][1] = {"field": "customer__tier", "operator": "in", "value": value}
    issues = _issues(doc, {"big-order": _template()})
    assert (where, "`{param: ...}` is only allowed inside a condition_template") in issues


def test_param_ref_in_a_rules_with_is_refused() -> None:
    doc = _rule_doc()
    doc["conditions"]["all"][0]["with"] = {"min_total": {"param": "x"}}
    issues = _issues(doc, {"big-order": _template()})
    assert (
        "conditions.all[0].with.min_total",
        "`{param: ...}` is only allowed inside a condition_template",
    ) in issues


def test_unknown_key_in_a_use_node() -> None:
    doc = _rule_doc()
    doc["conditions"]["all"][0]["wiht"] = {}
    assert (
        "conditions.all[0].wiht",
        "unknown key 'wiht' is not permitted here (check the spelling)",
    ) in _issues(doc, {"big-order": _template()})


# -- templates ----------------------------------------------------------------------------------------


def test_template_compiles_to_a_storable_document() -> None:
    compiled = compile_document(_template_doc(), None)
    assert isinstance(compiled, CompiledTemplate)
    assert compiled.dag_id == "condition_template__acme__big-order"
    assert json.loads(compiled.spec_json)["parameters"]["min_total"]["default"] == 1000


def test_template_checks() -> None:
    doc = _template_doc()
    doc["parameters"]["min_total"] = {"type": "integer", "default": "many"}
    doc["parameters"]["unused"] = {"type": "string"}
    doc["condition"]["all"][0]["value"] = {"param": "statuss"}
    doc["condition"]["all"].append({"field": "note", "operator": "between", "value": [1]})
    with pytest.raises(RuleValidationError) as caught:
        validate_definition(doc, None)
    found = {i.path: i.message for i in caught.value.issues}
    assert "parameter 'statuss' is not declared" in found["condition.all[0].value"]
    assert "never used" in found["parameters.unused"] and "never used" in found["parameters.statuses"]
    assert "needs an integer" in found["parameters.min_total.default"]
    assert "two values" in found["condition.all[2].value"]


def test_template_structure_errors_have_paths() -> None:
    doc = _template_doc()
    doc["parameters"]["min_total"]["type"] = "money"
    doc["condition"]["all"][1]["value"] = {"parm": "min_total"}
    with pytest.raises(RuleValidationError) as caught:
        validate_definition(doc, None)
    paths = {i.path for i in caught.value.issues}
    assert "parameters.min_total.type" in paths
    assert any(p.startswith("condition.all[1].value") for p in paths)


def test_example_files_exist() -> None:
    assert Path(TEMPLATE_FILE).is_file() and Path(RULE_FILE).is_file()
