"""Workflows: the model and every validation rule of docs/definitions.md ("Workflows"), each problem at
its JSON path, all at once (the checks called directly; the kinds table routes ``kind: workflow``
documents to them)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import Condition, ConditionTemplateDefinition, NotificationTemplateDefinition
from rule_compiler.definitions.action_steps import ACTION_MODELS, STEP_MODELS, as_action, as_step
from rule_compiler.definitions.action_types import ACTION_TYPES, SendNotification, UpdateRecord
from rule_compiler.definitions.workflow import MAX_NODES, ActionNode, ConditionStep, WorkflowDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import KINDS, PLANNED_KINDS
from rule_compiler.loading import read_definition_file
from rule_compiler.validation import validate_document
from rule_compiler.validation.kind_checks import CheckContext
from rule_compiler.validation.partial import WHOLE
from rule_compiler.validation.workflow_checks import check_workflow_kind
from tests.conftest import DEMO_CATALOG, ROOT

EXAMPLE = ROOT / "include" / "workflows-waiting" / "vip-order-follow-up.yaml"
STORED = {"report": ["weekly-sales"]}
#: The members of acme the example's approval may assign.
MEMBERS = {"admin", "ann"}


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _example() -> dict[str, Any]:
    return copy.deepcopy(read_definition_file(EXAMPLE))


def _issues(data: dict[str, Any]) -> list[Issue]:
    with pytest.raises(RuleValidationError) as caught:
        validate_document(data, _catalog(), stored=STORED, members=MEMBERS)
    return list(caught.value.issues)


def _found(data: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(issue.path, issue.code) for issue in _issues(data)]


def _node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(node for node in data["nodes"] if node["id"] == node_id)


def _connect(data: dict[str, Any], source: str, target: str, when: str | None = None) -> None:
    connection = {"from": source, "to": target} | ({"when": when} if when is not None else {})
    data["connections"].append(connection)


# --- the example -------------------------------------------------------------------------------------


def test_the_example_workflow_validates_against_the_demo_catalog() -> None:
    validated = validate_document(_example(), _catalog(), stored=STORED)
    workflow = validated.definition
    assert isinstance(workflow, WorkflowDefinition)
    assert [node.type for node in workflow.nodes] == [
        "trigger", "condition", "action", "action", "delay", "approval", "action",
    ]  # fmt: skip
    assert validated.workflow == workflow  # no template to expand
    assert WorkflowDefinition.model_validate(workflow.model_dump(mode="json", by_alias=True)) == workflow


def test_the_kind_is_a_row_of_the_kinds_table() -> None:
    assert "workflow" not in PLANNED_KINDS and KINDS["workflow"].has_dag


def test_a_step_is_every_registry_action_without_id_and_depends_on() -> None:
    assert list(STEP_MODELS) == list(ACTION_TYPES) == list(ACTION_MODELS)
    for kind, step in STEP_MODELS.items():
        assert set(ACTION_MODELS[kind].model_fields) - set(step.model_fields) == {"id", "depends_on"}
    data = _example()
    node = WorkflowDefinition.model_validate(data).nodes[3]
    assert isinstance(node, ActionNode)
    action = as_action(node.action, node.id)
    assert isinstance(action, UpdateRecord) and action.id == "tag-standard" and action.depends_on == []
    assert as_step(action) == node.action


def test_a_condition_template_in_a_condition_node_is_expanded() -> None:
    data = _example()
    _node(data, "is-vip")["conditions"] = {"use": "vip", "with": {}}
    template = {
        "kind": "condition_template",
        "name": "vip",
        "organization": "acme",
        "condition": {"field": "customer__tier", "operator": "equals", "value": "vip"},
    }
    templates = {"vip": ConditionTemplateDefinition.model_validate(template)}
    validated = validate_document(data, _catalog(), templates=templates, stored=STORED)
    assert validated.workflow is not None
    node = validated.workflow.nodes[1]
    assert isinstance(node, ConditionStep) and isinstance(node.conditions, Condition)
    assert node.conditions.field == "customer__tier"


def test_a_notification_template_of_an_action_node_is_resolved_and_named_by_node_id() -> None:
    data = _example()
    action = _node(data, "thank")["action"]
    del action["subject"], action["body"]
    action["template"] = "vip-order"
    template = NotificationTemplateDefinition.model_validate(
        read_definition_file(ROOT / "include" / "templates" / "vip-order.yaml")
    )
    validated = validate_document(
        data, _catalog(), notification_templates={"vip-order": template}, stored=STORED
    )
    assert validated.notification_refs["thank"].name == "vip-order"
    assert validated.workflow is not None
    node = validated.workflow.nodes[2]
    assert isinstance(node, ActionNode)
    sent = as_action(node.action, node.id)
    assert isinstance(sent, SendNotification)
    assert sent.template is None and sent.subject is not None and "VIP order" in sent.subject
    with pytest.raises(RuleValidationError) as caught:
        validate_document(data, _catalog(), stored=STORED)
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("nodes[2].action.template", "unknown_template")
    ]


def test_a_report_node_naming_a_stored_report_validates() -> None:
    data = _example()
    data["nodes"].append({"id": "sales", "type": "report", "report": "weekly-sales"})
    _connect(data, "discount", "sales")
    validate_document(data, _catalog(), stored=STORED)


# --- the graph ---------------------------------------------------------------------------------------


def test_a_second_trigger() -> None:
    data = _example()
    data["nodes"].append(copy.deepcopy(data["nodes"][0]) | {"id": "again"})
    _connect(data, "again", "is-vip")
    assert _found(data) == [("nodes[7].type", "duplicate_trigger")]


def test_no_trigger() -> None:
    data = _example()
    data["nodes"][0] = {"id": "start", "type": "join"}
    assert ("nodes", "missing_trigger") in _found(data)


def test_a_duplicate_node_id() -> None:
    data = _example()
    data["nodes"].append({"id": "thank", "type": "join"})
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("nodes[7].id", "duplicate")]
    assert "already used by nodes[2]" in issues[0].message


def test_a_dangling_connection_to_an_unknown_node() -> None:
    data = _example()
    _connect(data, "discount", "nowhere")
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("connections[6].to", "unknown_node")]
    assert "unknown node 'nowhere'" in issues[0].message


def test_a_dangling_connection_from_an_unknown_node() -> None:
    data = _example()
    _connect(data, "nowhere", "discount")
    assert _found(data) == [("connections[6].from", "unknown_node")]


def test_a_self_connection() -> None:
    data = _example()
    _connect(data, "thank", "thank")
    assert _found(data) == [("connections[6].to", "self_connection")]


def test_a_duplicate_connection() -> None:
    data = _example()
    _connect(data, "thank", "two-days")
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("connections[6]", "duplicate")]
    assert "already connections[3]" in issues[0].message


def test_a_cycle_is_named() -> None:
    data = _example()
    _connect(data, "manager-ok", "thank", "rejected")
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("connections", "cycle")]
    assert "cycle: thank -> two-days -> manager-ok -> thank" in issues[0].message


def test_an_unreachable_node() -> None:
    data = _example()
    data["nodes"].append({"id": "orphan", "type": "join"})
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("nodes[7]", "unreachable")]
    assert "'orphan' cannot be reached from the trigger 'start'" in issues[0].message


def test_when_missing_on_a_condition_connection() -> None:
    data = _example()
    del data["connections"][1]["when"]
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("connections[1].when", "missing")]
    assert "condition node 'is-vip' needs `when`" in issues[0].message


def test_when_missing_on_an_approval_connection() -> None:
    data = _example()
    del data["connections"][5]["when"]
    assert _found(data) == [("connections[5].when", "missing")]


def test_when_on_a_plain_connection() -> None:
    data = _example()
    data["connections"][3]["when"] = "true"
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("connections[3].when", "when")]
    assert "'thank' is an action node" in issues[0].message


def test_a_wrong_when_value_for_the_node() -> None:
    data = _example()
    data["connections"][1]["when"] = "approved"
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("connections[1].when", "when")]
    assert 'takes `when` "true" or "false", not "approved"' in issues[0].message


def test_a_when_value_no_node_takes() -> None:
    data = _example()
    data["connections"][1]["when"] = "maybe"
    assert _found(data) == [("connections[1].when", "literal_error")]


# --- limits and positions ----------------------------------------------------------------------------


def test_201_nodes() -> None:
    data = _example()
    data["nodes"] += [{"id": f"join-{i}", "type": "join"} for i in range(MAX_NODES + 1 - len(data["nodes"]))]
    assert len(data["nodes"]) == 201
    assert _found(data) == [("nodes", "too_long")]


def test_200_nodes_are_allowed() -> None:
    data = _example()
    extra = MAX_NODES - len(data["nodes"])
    data["nodes"] += [{"id": f"join-{i}", "type": "join"} for i in range(extra)]
    data["connections"] += [{"from": "discount", "to": f"join-{i}"} for i in range(extra)]
    validate_document(data, _catalog(), stored=STORED)


def test_1001_connections() -> None:
    data = _example()
    data["connections"] += [{"from": "start", "to": "is-vip"}] * (1_001 - len(data["connections"]))
    assert ("connections", "too_long") in _found(data)


@pytest.mark.parametrize(
    ("position", "path", "code"),
    [
        ({"x": 100_001, "y": 0}, "nodes[2].position.x", "less_than_equal"),
        ({"x": 0, "y": -100_000.5}, "nodes[2].position.y", "greater_than_equal"),
        ({"x": math.inf, "y": 0}, "nodes[2].position.x", "not_finite"),
        ({"x": math.nan, "y": 0}, "nodes[2].position.x", "not_finite"),
        ({"x": "240", "y": 0}, "nodes[2].position.x", "float_type"),
        ({"x": True, "y": 0}, "nodes[2].position.x", "float_type"),
    ],
)
def test_a_position_out_of_range_or_not_finite(position: dict[str, Any], path: str, code: str) -> None:
    data = _example()
    data["nodes"][2]["position"] = position
    assert _found(data) == [(path, code)]


def test_a_position_at_the_limit_is_allowed() -> None:
    data = _example()
    data["nodes"][2]["position"] = {"x": -100_000, "y": 100_000.0}
    validate_document(data, _catalog(), stored=STORED)


def test_a_non_finite_position_on_the_model_itself() -> None:
    """The model refuses it too, without the raw-document pass."""
    data = _example()
    data["nodes"][2]["position"] = {"x": math.inf, "y": 0}
    with pytest.raises(ValueError, match="finite"):
        WorkflowDefinition.model_validate(data)


# --- node configs ------------------------------------------------------------------------------------


def test_an_action_node_naming_a_table_not_in_the_catalog() -> None:
    data = _example()
    _node(data, "tag-standard")["action"]["table"] = "invoices"
    issues = _issues(data)
    assert {i.path for i in issues} == {"nodes[3].action.table"}  # and why, as for a rule's action:
    assert [i.code for i in issues if "table 'invoices' is not in the catalog" in i.message] == ["catalog"]
    assert any("this workflow's rows come from table 'orders'" in i.message for i in issues)


def test_an_action_node_naming_an_unknown_column() -> None:
    data = _example()
    _node(data, "discount")["action"]["values"] = {"discount": 10}
    assert _found(data) == [("nodes[6].action.values", "unknown_column")]


def test_an_action_node_reading_an_unknown_record_field() -> None:
    data = _example()
    _node(data, "thank")["action"]["to"] = ["{{ record.customer__phone }}"]
    assert _found(data) == [("nodes[2].action.to[0]", "template")]


def test_an_action_node_with_id_or_depends_on() -> None:
    data = _example()
    _node(data, "thank")["action"] |= {"id": "thank", "depends_on": ["start"]}
    assert _found(data) == [
        ("nodes[2].action.depends_on", "unknown_key"),
        ("nodes[2].action.id", "unknown_key"),
    ]


def test_a_condition_node_naming_an_unknown_field() -> None:
    data = _example()
    _node(data, "is-vip")["conditions"]["all"][0]["field"] = "customer__rank"
    assert _found(data) == [("nodes[1].conditions.all[0].field", "unknown_field")]


def test_the_trigger_node_is_checked_like_a_rule_trigger_once() -> None:
    data = _example()
    data["nodes"][0]["trigger"]["fields"] = ["discount"]
    assert _found(data) == [("nodes[0].trigger.fields[0]", "invalid")]


def test_the_trigger_warns_once_at_its_node_of_a_table_without_change_capture() -> None:
    catalog = _catalog().model_dump()
    catalog["connections"]["app_db"]["tables"]["orders"]["capture_installed"] = False
    validated = validate_document(_example(), Catalog.model_validate(catalog), stored=STORED, members=MEMBERS)
    assert [(w.path, w.code) for w in validated.warnings] == [
        ("nodes[0].trigger.table", "capture_not_installed")
    ]
    assert "so this workflow will never fire" in validated.warnings[0].message


def test_a_report_node_naming_an_unknown_report() -> None:
    data = _example()
    data["nodes"].append({"id": "sales", "type": "report", "report": "monthly-sales"})
    _connect(data, "discount", "sales")
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [("nodes[7].report", "reference")]
    assert "report 'monthly-sales' is not stored in organization 'acme'" in issues[0].message


def test_a_delay_needs_a_duration_or_a_moment() -> None:
    data = _example()
    _node(data, "two-days")["duration"] = "2 days"
    assert _found(data) == [("nodes[4].duration", "duration")]
    _node(data, "two-days")["until"] = "{{ record.updated_at }}"
    assert ("nodes[4]", "delay") in _found(data)


def test_an_approval_subject_reading_an_unknown_field() -> None:
    data = _example()
    _node(data, "manager-ok")["subject"] = "Discount on {{ record.discount }}?"
    assert _found(data) == [("nodes[5].subject", "template")]


# --- every problem at once ---------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    data = _example()
    data["nodes"].append(copy.deepcopy(data["nodes"][0]) | {"id": "again"})  # a second trigger
    _connect(data, "again", "is-vip")
    _connect(data, "thank", "thank")  # a self connection
    data["connections"][3]["when"] = "true"  # `when` on a plain connection
    assert _found(data) == [  # sorted by path
        ("connections[3].when", "when"),
        ("connections[7].to", "self_connection"),
        ("nodes[7].type", "duplicate_trigger"),
    ]


def test_structural_and_meaning_problems_are_reported_at_once() -> None:
    data = _example()
    _node(data, "two-days")["position"] = {"x": 1e6, "y": 0}  # refused by the model
    _node(data, "tag-standard")["action"]["values"] = {"discount": 10}  # found by the node checks
    _connect(data, "thank", "thank")  # found by the graph checks
    assert _found(data) == [
        ("connections[6].to", "self_connection"),
        ("nodes[3].action.values", "unknown_column"),
        ("nodes[4].position.x", "less_than_equal"),
    ]


def test_a_node_that_did_not_parse_is_not_dangling_nor_unreachable_downstream() -> None:
    data = _example()
    _node(data, "two-days")["type"] = "sleep"
    _node(data, "discount")["action"]["values"] = {"discount": 10}  # after it: its index is the document's
    assert _found(data) == [("nodes[4].type", "unknown_type"), ("nodes[6].action.values", "unknown_column")]


def test_a_trigger_that_did_not_parse_is_not_missing() -> None:
    data = _example()
    data["nodes"][0]["trigger"]["events"] = ["inserted"]
    assert _found(data) == [("nodes[0].trigger.events[0]", "literal_error")]


def test_check_workflow_kind_has_the_kinds_table_signature() -> None:
    definition = WorkflowDefinition.model_validate(_example())
    issues, validated = check_workflow_kind(definition, CheckContext(_catalog(), stored=STORED), WHOLE)
    assert issues == [] and validated.definition is definition
    other = Catalog(organization="globex")
    issues, _ = check_workflow_kind(definition, CheckContext(other, stored=STORED), WHOLE)
    assert [i.path for i in issues] == ["organization"]
    assert "the catalog given is for 'globex', not 'acme'" in issues[0].message


def test_approval_assignees_are_members_of_the_organization_each_once() -> None:
    data = _example()
    _node(data, "manager-ok")["assignees"] = ["admin", "mallory", "admin", "not a name"]
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [
        ("nodes[5].assignees[1]", "assignee"),
        ("nodes[5].assignees[2]", "assignee"),
        ("nodes[5].assignees[3]", "assignee"),
    ]
    assert "'mallory' is not a member of organization 'acme'" in issues[0].message
    assert "assigned twice" in issues[1].message and "is not a user name" in issues[2].message


def test_assignees_checked_offline_only_warn_that_registration_checks_them() -> None:
    validated = validate_document(_example(), _catalog(), stored=STORED)
    assert [(w.path, w.code) for w in validated.warnings] == [("nodes[5].assignees", "assignee")]
    assert "registration does" in validated.warnings[0].message


def test_an_approval_body_is_a_checked_template() -> None:
    data = _example()
    _node(data, "manager-ok")["body"] = "Total {{ record.no_such_column }} {{ record.__class__ }}"
    messages = [issue.message for issue in _issues(data) if issue.path == "nodes[5].body"]
    assert any("has no column 'no_such_column'" in message for message in messages)
    assert any("unsafe attribute access '__class__'" in message for message in messages)
