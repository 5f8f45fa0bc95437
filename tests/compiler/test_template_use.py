"""Rule and workflow templates (rule_compiler/validation/template_use.py): a ``use``/``with`` document
expanded before validation, every problem at its path, the template's own checks, and the compiled rule
equal to the hand-written one."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.definitions.definition_template import RuleTemplateDefinition, WorkflowTemplateDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import KINDS, RULE_TEMPLATE, WORKFLOW_TEMPLATE, workflow_uses
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.validation import validate_document
from rule_compiler.validation.template_use import MAX_EXPANDED_BYTES, expand_use
from tests.conftest import DEMO_CATALOG, ROOT

RULE_TEMPLATE_FILE = ROOT / "include" / "rule-templates" / "notify-on-status.yaml"
USING_FILE = ROOT / "include" / "rules-using-templates" / "deprioritise-shipped-orders.yaml"
WORKFLOW_TEMPLATE_FILE = ROOT / "include" / "templates" / "follow-up-status.yaml"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _template(**changes: Any) -> RuleTemplateDefinition:
    return RuleTemplateDefinition.model_validate({**read_definition_file(RULE_TEMPLATE_FILE), **changes})


def _using(**changes: Any) -> dict[str, Any]:
    return {**read_definition_file(USING_FILE), **changes}


def _compile(data: dict[str, Any], template: RuleTemplateDefinition | None = None) -> Compiled:
    templates = {"notify-on-status": template or _template()}
    compiled = compile_document(data, _catalog(), definition_templates={RULE_TEMPLATE: templates})
    assert isinstance(compiled, Compiled)
    return compiled


def _problems(data: dict[str, Any], template: RuleTemplateDefinition | None = None) -> list[Issue]:
    with pytest.raises(RuleValidationError) as refused:
        _compile(data, template)
    return list(refused.value.issues)


def test_a_rule_from_a_template_compiles_to_the_hand_written_rules_spec() -> None:
    compiled = _compile(_using())
    hand_written = {
        "kind": "rule",
        "name": "deprioritise-shipped-orders",
        "organization": "acme",
        "description": _using()["description"],
        "owner": "sales-ops",
        "trigger": {"type": "event", "connection": "app_db", "table": "orders", "events": ["updated"],
                    "fields": ["status"]},
        "conditions": {"all": [{"field": "status", "operator": "changed_to", "value": "shipped"},
                               {"field": "total", "operator": "gte", "value": 500}]},
        "actions": [{"id": "prioritise", "type": "update_record", "connection": "app_db", "table": "orders",
                     "values": {"priority": "low",
                                "note": "{{ old.status }} -> {{ record.status }} (rule {{ rule.id }})"}}],
    }  # fmt: skip
    expected = compile_document(hand_written, _catalog())
    assert isinstance(expected, Compiled)
    assert compiled.spec == expected.spec and compiled.spec_hash == expected.spec_hash
    # stored as written (use/with kept), listed from the expanded rule
    write = compiled.write("t")
    assert write.source["use"] == "notify-on-status" and "trigger" not in write.source
    assert write.source["with"] == {"status": "shipped", "min_total": 500, "priority": "low"}
    assert write.expanded is not None and write.expanded["trigger"]["type"] == "event"
    assert KINDS["rule"].uses(write.source) == {(RULE_TEMPLATE, "notify-on-status")}


def test_defaults_fill_parameters_left_out_and_own_fields_override_the_body() -> None:
    compiled = _compile(
        _using(**{"with": {"status": "paid"}}, title="Paid orders", active=False, tags=["vip"])
    )
    rule = compiled.definition
    assert rule.actions[0].values["priority"] == "high"  # type: ignore[union-attr]
    assert (rule.title, rule.active, rule.tags) == ("Paid orders", False, ["vip"])  # type: ignore[union-attr]
    assert rule.owner == "sales-ops"  # type: ignore[union-attr] - the body's, not overridden


def test_placeholders_are_replaced_whole_in_mappings_and_lists_never_spliced() -> None:
    template = WorkflowTemplateDefinition.model_validate({
        "kind": "workflow_template", "name": "t", "organization": "acme",
        "parameters": {"tags": {"type": "list"}, "x": {"type": "string"}},
        "body": {"a": [{"param": "tags"}, {"param": "x"}], "b": {"c": {"d": {"param": "x"}}}},
    })  # fmt: skip
    data = {
        "kind": "workflow",
        "name": "w",
        "organization": "acme",
        "use": "t",
        "with": {"tags": [1, 2], "x": "y"},
    }
    document = expand_use(data, WORKFLOW_TEMPLATE, {"t": template}).document
    assert document["a"] == [[1, 2], "y"]
    assert document["b"] == {"c": {"d": "y"}}
    assert (document["kind"], document["name"], document["organization"]) == ("workflow", "w", "acme")


@pytest.mark.parametrize(
    ("changes", "path", "code", "words"),
    [
        ({"use": "nope"}, "use", "unknown_template", "unknown rule template 'nope'"),
        ({"with": {"min_total": 5}}, "with", "missing", "missing parameter 'status'"),
        (
            {"with": {"status": "paid", "colour": 1}},
            "with.colour",
            "unknown_parameter",
            "no parameter 'colour'",
        ),
        ({"with": {"status": "paid", "min_total": "big"}}, "with.min_total", "parameter", "needs a number"),
        ({"with": {"status": 3}}, "with.status", "parameter", "needs a string"),
        ({"name": "Bad Name"}, "name", "slug", "not a valid name"),
        ({"trigger": {"type": "manual"}}, "trigger", "unknown_key", "put 'trigger' in the template's body"),
    ],
)
def test_every_problem_of_the_use_is_at_its_path(
    changes: dict[str, Any], path: str, code: str, words: str
) -> None:
    issues = _problems(_using(**changes))
    assert [(i.path, i.code) for i in issues] == [(path, code)], issues
    assert words in issues[0].message


def test_a_template_of_another_organization_is_refused_at_use() -> None:
    issues = _problems(_using(), _template(organization="globex"))
    assert [(i.path, i.code) for i in issues] == [("use", "organization")]
    assert "belongs to organization 'globex'" in issues[0].message


def test_problems_inside_the_expanded_body_are_at_use_naming_the_body_path() -> None:
    body = copy.deepcopy(_template().body)
    body["trigger"]["table"] = "no_such_table"  # type: ignore[index,call-overload]
    issues = _problems(_using(), _template(body=body))
    assert {i.path for i in issues} == {"use"}
    assert any(i.message.startswith("in template 'notify-on-status', trigger.table: ") for i in issues), (
        issues
    )
    # a parameter's value the checks refuse is found the same way
    issues = _problems(_using(**{"with": {"status": "paid", "min_total": 5, "priority": "{{ nope(1) }}"}}))
    assert [i.path for i in issues] == ["use"]
    assert "in template 'notify-on-status', actions[0].values.priority: " in issues[0].message


def test_the_expanded_size_is_bounded_before_expanding() -> None:
    big = "x" * (MAX_EXPANDED_BYTES // 4)
    body = copy.deepcopy(_template().body)
    body["actions"][0]["values"]["note"] = [{"param": "priority"}] * 8  # type: ignore[index,call-overload]
    issues = _problems(_using(**{"with": {"status": "paid", "priority": big}}), _template(body=body))
    assert [(i.path, i.code) for i in issues] == [("use", "too_large")]


def _template_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RuleValidationError) as refused:
        compile_document(data, None)
    return [(i.path, i.code) for i in refused.value.issues]


def test_a_rule_templates_own_problems() -> None:
    data = read_definition_file(RULE_TEMPLATE_FILE)
    undeclared = copy.deepcopy(data)
    undeclared["body"]["conditions"]["all"][0]["value"] = {"param": "state"}
    assert ("body.conditions.all[0].value", "unknown_parameter") in _template_problems(undeclared)
    assert ("parameters.status", "unused_parameter") in _template_problems(undeclared)
    named = copy.deepcopy(data)
    named["body"]["kind"] = "rule"
    assert _template_problems(named) == [("body.kind", "body")]
    bad_default = copy.deepcopy(data)
    bad_default["parameters"]["min_total"]["default"] = "lots"
    assert _template_problems(bad_default) == [("parameters.min_total.default", "parameter")]
    typo = copy.deepcopy(data)
    typo["body"]["actions"][0]["tabel"] = "orders"
    assert ("body.actions[0].tabel", "unknown_key") in _template_problems(typo)


def test_a_placeholder_may_stand_for_what_the_model_decides_on() -> None:
    """A parameter choosing the trigger's type is checked where the template is used, not refused here."""
    data = read_definition_file(RULE_TEMPLATE_FILE)
    data["parameters"]["kind"] = {"type": "string"}
    data["body"]["trigger"]["type"] = {"param": "kind"}
    assert isinstance(compile_document(data, None).spec_json, str)


def test_a_workflow_from_a_workflow_template_validates_like_a_hand_written_one() -> None:
    raw = read_definition_file(WORKFLOW_TEMPLATE_FILE)
    compile_document(raw, None)  # the template itself is valid
    template = WorkflowTemplateDefinition.model_validate(raw)
    data = {"kind": "workflow", "name": "paid-follow-up", "organization": "acme", "use": "follow-up-status",
            "with": {"status": "paid"}}  # fmt: skip
    assert workflow_uses(data) == {(WORKFLOW_TEMPLATE, "follow-up-status")}
    document = expand_use(data, WORKFLOW_TEMPLATE, {"follow-up-status": template}).document
    validated = validate_document(document, _catalog())
    assert validated.workflow is not None and validated.workflow.name == "paid-follow-up"
    condition = document["nodes"][1]["conditions"]["all"]
    assert condition[0]["value"] == "paid" and condition[1]["value"] == 1000
    data["with"] = {"status": "paid", "note": 7}
    with pytest.raises(RuleValidationError) as refused:
        expand_use(data, WORKFLOW_TEMPLATE, {"follow-up-status": template})
    assert [(i.path, i.code) for i in refused.value.issues] == [("with.note", "parameter")]


def test_template_kinds_use_what_their_bodies_name() -> None:
    data = read_definition_file(RULE_TEMPLATE_FILE)
    data["body"]["conditions"] = {"use": "big-order"}
    assert KINDS[RULE_TEMPLATE].uses(data) == {("condition_template", "big-order")}
    workflow = read_definition_file(WORKFLOW_TEMPLATE_FILE)
    workflow["body"]["nodes"].append({"id": "r", "type": "report", "report": "weekly-sales"})
    assert KINDS[WORKFLOW_TEMPLATE].uses(workflow) == {("report", "weekly-sales")}
