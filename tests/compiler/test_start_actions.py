"""Actions that start stored definitions (issue 16, "between definitions"): ``trigger_workflow`` and
``generate_report`` are checked at registration against what the organization has stored — the target
exists there, a workflow's trigger is manual, a report's parameters are declared and typed, and no
workflow starts itself again through others — each problem at its JSON path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.dependents import direct_users
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import KINDS
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document, context_from_store, register
from rule_compiler.store import RuleStore
from rule_compiler.validation import validate_document
from tests.conftest import DEMO_CATALOG, ROOT

RULE = ROOT / "include" / "rules" / "escalate-vip-orders.yaml"
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"
EVENT_RULE = ROOT / "include" / "rules" / "expedite-vip-payments.yaml"


def _catalog(organization: str = "acme") -> Catalog:
    data = yaml.safe_load(DEMO_CATALOG.read_text())
    return Catalog.model_validate({**data, "organization": organization})


def _workflow(name: str, trigger: dict[str, Any], *starts: str) -> dict[str, Any]:
    """A stored workflow's source: its trigger node, then one trigger_workflow node per name."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "trigger", "trigger": trigger}]
    nodes += [
        {
            "id": f"start-{target}",
            "type": "action",
            "action": {"type": "trigger_workflow", "workflow": target},
        }
        for target in starts
    ]
    connections = [{"from": "start", "to": node["id"]} for node in nodes[1:]]
    return {
        "kind": "workflow",
        "name": name,
        "organization": "acme",
        "nodes": nodes,
        "connections": connections,
    }


MANUAL = {"type": "manual"}
STORED: dict[str, Any] = {
    "report": {"weekly-sales": read_definition_file(REPORT)},
    "workflow": {
        "onboard": _workflow("onboard", MANUAL),
        "nightly": _workflow("nightly", {"type": "schedule", "cron": "0 3 * * *"}),
    },
}


def _with(action: dict[str, Any], path: Any = RULE) -> dict[str, Any]:
    data = copy.deepcopy(read_definition_file(path))
    data["actions"].append({"id": "next", **action})
    return data


def _issues(data: dict[str, Any], stored: Any = STORED) -> list[Issue]:
    """Every problem of ``data``; none when it is valid."""
    try:
        validate_document(data, _catalog(), stored=stored)
    except RuleValidationError as exc:
        return list(exc.issues)
    return []


# --- generate_report ---------------------------------------------------------------------------------


def test_generate_report_of_a_stored_report_with_its_parameters_is_valid() -> None:
    data = _with({"type": "generate_report", "report": "weekly-sales", "parameters": {"min_total": 250}})
    assert _issues(data) == []


def test_generate_report_refuses_an_unknown_report_and_names_the_stored_ones() -> None:
    issues = _issues(_with({"type": "generate_report", "report": "monthly"}))
    assert [(i.path, i.code) for i in issues] == [("actions[2].report", "reference")]
    assert (
        "report 'monthly' is not stored in organization 'acme' (its reports: weekly-sales)"
        in issues[0].message
    )


@pytest.mark.parametrize(
    ("parameters", "path", "words"),
    [
        (
            {"region": "eu"},
            "actions[2].parameters.region",
            "has no parameter 'region' (its parameters: min_total)",
        ),
        ({"min_total": "lots"}, "actions[2].parameters.min_total", "is a number; 'lots' is not"),
        ({"min_total": True}, "actions[2].parameters.min_total", "is a number; True is not"),
    ],
)
def test_generate_report_parameters_are_checked_against_the_report(
    parameters: dict[str, Any], path: str, words: str
) -> None:
    issues = _issues(_with({"type": "generate_report", "report": "weekly-sales", "parameters": parameters}))
    assert [i.path for i in issues] == [path] and words in issues[0].message


def test_a_date_parameter_takes_an_iso_date_only() -> None:
    report = read_definition_file(REPORT)
    report["parameters"] = [{"name": "since", "type": "date"}]
    stored = {"report": {"weekly-sales": report}}
    good = _with({"type": "generate_report", "report": "weekly-sales", "parameters": {"since": "2026-01-31"}})
    assert _issues(good, stored) == []
    bad = _with({"type": "generate_report", "report": "weekly-sales", "parameters": {"since": "31.01.2026"}})
    issues = _issues(bad, stored)
    assert [i.path for i in issues] == ["actions[2].parameters.since"] and "YYYY-MM-DD" in issues[0].message


def test_parameters_are_bounded_by_the_model() -> None:
    many = {f"p{i}": i for i in range(51)}
    issues = _issues(_with({"type": "generate_report", "report": "weekly-sales", "parameters": many}))
    assert [i.path for i in issues] == ["actions[2].parameters"]


def test_without_the_stored_sources_parameters_cannot_be_checked_so_they_are_refused() -> None:
    data = _with({"type": "generate_report", "report": "weekly-sales", "parameters": {"min_total": 1}})
    issues = _issues(data, {"report": ["weekly-sales"]})  # names only: fail closed
    assert [i.path for i in issues] == ["actions[2].report"] and "cannot be checked" in issues[0].message
    plain = _with({"type": "generate_report", "report": "weekly-sales"})
    assert _issues(plain, {"report": ["weekly-sales"]}) == []  # no parameters: the name is enough


# --- trigger_workflow --------------------------------------------------------------------------------


def test_trigger_workflow_of_a_stored_manual_workflow_is_valid() -> None:
    data = _with({"type": "trigger_workflow", "workflow": "onboard", "payload": {"by": "{{ rule.id }}"}})
    validated = validate_document(data, _catalog(), stored=STORED)
    assert validated.rule is not None and validated.rule.actions[-1].payload == {"by": "{{ rule.id }}"}


def test_trigger_workflow_refuses_an_unknown_workflow_and_one_not_started_by_hand() -> None:
    unknown = _issues(_with({"type": "trigger_workflow", "workflow": "offboard"}))
    assert [(i.path, i.code) for i in unknown] == [("actions[2].workflow", "reference")]
    assert "workflow 'offboard' is not stored in organization 'acme'" in unknown[0].message
    scheduled = _issues(_with({"type": "trigger_workflow", "workflow": "nightly"}))
    assert [i.path for i in scheduled] == ["actions[2].workflow"]
    assert "starts on its schedule trigger" in scheduled[0].message
    assert "`trigger: {type: manual}`" in scheduled[0].message
    names_only = _issues(
        _with({"type": "trigger_workflow", "workflow": "onboard"}), {"workflow": ["onboard"]}
    )
    assert [i.path for i in names_only] == ["actions[2].workflow"] and "cannot be checked" in names_only[
        0
    ].message


def test_a_payload_is_checked_as_a_sandbox_template_and_bounded() -> None:
    broken = _issues(
        _with({"type": "trigger_workflow", "workflow": "onboard", "payload": {"x": "{{ rule.id"}})
    )
    assert [i.path for i in broken] == ["actions[2].payload.x"]
    many = {f"k{i}": i for i in range(51)}
    assert [
        i.path for i in _issues(_with({"type": "trigger_workflow", "workflow": "onboard", "payload": many}))
    ] == ["actions[2].payload"]


def test_a_payload_reads_the_row_only_when_a_run_has_one_row() -> None:
    reads_row = {"type": "trigger_workflow", "workflow": "onboard", "payload": {"order": "{{ record.id }}"}}
    issues = _issues(_with(reads_row))  # a scheduled rule's run starts one child for every matched row
    assert [i.path for i in issues] == ["actions[2].payload.order"] and "conf `keys`" in issues[0].message
    event_rule = _with(reads_row, EVENT_RULE)  # one event, one row, one child run
    assert validate_document(event_rule, _catalog(), stored=STORED).rule is not None


# --- between definitions: uses, other organizations, cycles ----------------------------------------


def test_the_rule_row_names_what_its_actions_start() -> None:
    data = _with({"type": "trigger_workflow", "workflow": "onboard"})
    data["actions"].append({"id": "report", "type": "generate_report", "report": "weekly-sales"})
    uses = KINDS["rule"].uses(data)
    assert {("workflow", "onboard"), ("report", "weekly-sales")} <= uses
    assert "workflow" in KINDS["rule"].uses_kinds


def test_a_workflows_action_nodes_are_found_by_started_uses() -> None:
    from rule_compiler.kinds import started_uses

    source = _workflow("a", MANUAL, "b", "c")
    source["nodes"].append({"id": "r", "type": "report", "report": "weekly-sales"})  # a node, not an action
    assert started_uses(source) == {("workflow", "b"), ("workflow", "c")}


def test_a_target_of_another_organization_is_unknown_and_a_stored_user_is_found(tmp_path: Any) -> None:
    store = RuleStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    try:
        register(store, compile_document(read_definition_file(REPORT), _catalog()), actor="test")
        other = _with({"type": "generate_report", "report": "weekly-sales"}) | {"organization": "globex"}
        context = context_from_store(store, "globex", other, catalog=_catalog("globex"))
        with pytest.raises(RuleValidationError) as caught:
            compile_document(other, _catalog("globex"), stored=context.stored)
        [missing] = [i for i in caught.value.issues if i.path == "actions[2].report"]
        assert "not stored in organization 'globex' (its reports: none)" in missing.message

        own = _with({"type": "trigger_workflow", "workflow": "onboard"})
        stored = {**dict(context_from_store(store, "acme", own, catalog=_catalog()).stored or {}), **STORED}
        register(store, compile_document(own, _catalog(), stored=stored), actor="test")
        rows = store.definitions_of_kind("acme", "rule")
        assert direct_users(rows, ("workflow", "onboard")) == {"rule": ["escalate-vip-orders"]}
    finally:
        store.close()


def _workflow_issues(data: dict[str, Any], stored: dict[str, Any]) -> list[Issue]:
    with pytest.raises(RuleValidationError) as caught:
        validate_document(data, _catalog(), stored=stored)
    return list(caught.value.issues)


def test_a_cycle_across_workflows_is_refused_and_named() -> None:
    stored = {
        "workflow": {
            "b": _workflow("b", MANUAL, "c"),
            "c": _workflow("c", MANUAL, "a", "b"),
            "a": _workflow("a", MANUAL),  # a's stored version starts nothing: the new one is checked
        }
    }
    issues = _workflow_issues(_workflow("a", MANUAL, "b"), stored)
    assert [(i.path, i.code) for i in issues] == [("nodes[1].action.workflow", "cycle")]
    assert "a -> b -> c -> a (each starts the next)" in issues[0].message

    two = _workflow_issues(_workflow("c", MANUAL, "a"), {"workflow": {"a": _workflow("a", MANUAL, "c")}})
    assert "c -> a -> c" in two[0].message
    itself = _workflow_issues(_workflow("a", MANUAL, "a"), {"workflow": {"a": _workflow("a", MANUAL)}})
    assert [i.path for i in itself] == ["nodes[1].action.workflow"] and "a -> a" in itself[0].message


def test_a_chain_without_a_way_back_is_no_cycle() -> None:
    stored = {"workflow": {"b": _workflow("b", MANUAL, "c"), "c": _workflow("c", MANUAL)}}
    validated = validate_document(_workflow("a", MANUAL, "b"), _catalog(), stored=stored)
    assert validated.workflow is not None
