"""`rule-compiler test-workflow` and the workflow tester: the path an event takes, acting on nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.cli import main
from rule_compiler.definitions.workflow import WorkflowDefinition
from rule_compiler.loading import read_definition_file
from rule_compiler.rule_tester import RelatedRequest, RelatedRows, load_event
from rule_compiler.validation import validate_document
from rule_compiler.workflow_tester import WorkflowTestResult, format_workflow_text, test_workflow
from tests.conftest import DEMO_CATALOG, ROOT

EXAMPLE = ROOT / "include" / "workflows-waiting" / "vip-order-follow-up.yaml"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
ORDER = {"id": 7, "customer_id": 2, "total": 1500, "status": "pending"}
VIP = {**ORDER, "customer__tier": "vip", "customer__email": "ann@example.com", "customer__name": "Ann"}
STANDARD = {
    **ORDER,
    "customer__tier": "standard",
    "customer__email": "bob@example.com",
    "customer__name": "Bob",
}
ORDER_PATH = ["start", "is-vip", "thank", "tag-standard", "two-days", "manager-ok", "discount"]


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _example() -> dict[str, Any]:
    return copy.deepcopy(read_definition_file(EXAMPLE))


def _workflow(data: dict[str, Any] | None = None) -> WorkflowDefinition:
    workflow = validate_document(data or _example(), _catalog(), stored={"report": ["weekly-sales"]}).workflow
    assert workflow is not None
    return workflow


def _created(new: dict[str, Any]) -> dict[str, Any]:
    return {"table": "orders", "operation": "created", "new": new}


def _test(event: dict[str, Any], data: dict[str, Any] | None = None, **kwargs: Any) -> WorkflowTestResult:
    return test_workflow(_workflow(data), load_event(event), catalog=_catalog(), now=NOW, **kwargs)


def _statuses(result: WorkflowTestResult) -> dict[str, str]:
    return {step.id: step.status for step in result.steps}


# --- the tester --------------------------------------------------------------------------------------


def test_a_vip_order_takes_the_true_branch_to_the_discount() -> None:
    result = _test(_created(VIP))
    assert result.started and result.reason == "the event fits the trigger: created on orders"
    assert [step.id for step in result.steps] == ORDER_PATH  # topological, ties in the listed order
    assert _statuses(result) == {
        "start": "passed", "is-vip": "passed", "thank": "passed", "tag-standard": "skipped",
        "two-days": "passed", "manager-ok": "passed", "discount": "passed",
    }  # fmt: skip
    steps = {step.id: step for step in result.steps}
    assert steps["is-vip"].branch == "true" and steps["is-vip"].next == ("thank",)
    assert steps["is-vip"].trace is not None and steps["is-vip"].trace["result"] is True
    assert steps["thank"].action is not None
    assert steps["thank"].action["to"] == ["ann@example.com"]  # rendered in the sandbox
    assert steps["thank"].action["subject"] == "Thank you for order 7"
    assert steps["two-days"].summary == "waits (delay 2d)"
    assert steps["manager-ok"].branch == "approved" and steps["manager-ok"].next == ("discount",)
    assert '"Offer a discount on order 7?"' in steps["manager-ok"].summary
    assert "this test follows `approved`" in steps["manager-ok"].summary
    assert steps["discount"].summary == (
        'would update_record: connection "app_db", table "orders", '
        'values {"priority": "high", "note": "discount offered"}'
    )
    assert result.acted == ["thank", "discount"]


def test_a_standard_order_takes_the_false_branch_only() -> None:
    result = _test(_created(STANDARD))
    assert _statuses(result) == {
        "start": "passed", "is-vip": "failed", "thank": "skipped", "tag-standard": "passed",
        "two-days": "skipped", "manager-ok": "skipped", "discount": "skipped",
    }  # fmt: skip
    steps = {step.id: step for step in result.steps}
    assert steps["is-vip"].branch == "false" and steps["is-vip"].next == ("tag-standard",)
    assert steps["thank"].summary == "skipped: receives nothing"
    assert result.acted == ["tag-standard"]


def test_an_event_the_trigger_does_not_take_starts_nothing() -> None:
    result = _test({"table": "orders", "operation": "updated", "new": VIP, "old": ORDER})
    assert not result.started
    assert result.reason == "not triggered: the workflow fires on created; the event is 'updated'"
    assert _statuses(result)["start"] == "failed"
    assert {status for node, status in _statuses(result).items() if node != "start"} == {"skipped"}
    assert result.acted == []
    text = format_workflow_text(result)
    assert text.splitlines()[-1] == f"NOT STARTED: {result.reason}"
    other_table = _test({"table": "customers", "operation": "created", "new": {"id": 1}})
    assert (
        other_table.reason
        == "not triggered: the workflow watches table 'orders'; the event is for 'customers'"
    )


def test_related_paths_are_read_once_for_conditions_and_templates() -> None:
    requests: list[tuple[str, ...]] = []

    def related(request: RelatedRequest) -> RelatedRows:
        requests.append(request.paths)
        found = {"customer__tier": "vip", "customer__email": "cy@example.com", "customer__name": "Cy"}
        return RelatedRows({path: found[path] for path in request.paths}, [])

    result = _test(_created(ORDER), related=related)
    assert requests == [("customer__tier",), ("customer__email", "customer__name")]
    assert result.acted == ["thank", "discount"]
    thank = next(step for step in result.steps if step.id == "thank")
    assert thank.action is not None and thank.action["body"] == "Dear Cy, thank you for your order of 1500."
    assert "customer__tier: read from the database: 'vip'" in result.notes


def test_without_related_rows_paths_are_null_and_the_notes_say_so() -> None:
    result = _test(_created(ORDER))
    assert _statuses(result)["is-vip"] == "failed"
    assert any(
        note.startswith("customer__tier: not in the event's row, so it is NULL") for note in result.notes
    )


def test_a_template_that_cannot_render_fails_the_action_and_stops_the_item() -> None:
    data = _example()
    data["nodes"][2]["action"]["subject"] = "{{ record.total // 0 }}"
    result = _test(_created(VIP), data)
    thank = next(step for step in result.steps if step.id == "thank")
    assert thank.status == "failed" and thank.summary.startswith(
        "would fail: a template could not be rendered"
    )
    assert thank.next == () and _statuses(result)["two-days"] == "skipped"
    data["nodes"][2]["action"]["on_failure"] = "continue"
    result = _test(_created(VIP), data)
    assert _statuses(result)["thank"] == "failed" and _statuses(result)["discount"] == "passed"


def test_a_join_goes_on_when_any_input_delivered() -> None:
    data = _example()
    data["nodes"].append({"id": "merge", "type": "join"})
    data["nodes"].append({"id": "tally", "type": "report", "report": "weekly-sales"})
    data["connections"] += [
        {"from": "tag-standard", "to": "merge"},
        {"from": "discount", "to": "merge"},
        {"from": "merge", "to": "tally"},
    ]
    for row, acted in ((VIP, ["thank", "discount"]), (STANDARD, ["tag-standard"])):
        result = _test(_created(row), data)
        assert [step.id for step in result.steps][-2:] == ["merge", "tally"]
        assert _statuses(result)["merge"] == "passed" and result.acted == acted
        assert result.steps[-1].summary == "would run report weekly-sales"


def test_the_json_shape() -> None:
    out = _test(_created(VIP)).as_dict()
    assert set(out) == {"workflow", "started", "reason", "event", "record", "nodes", "acted", "notes"}
    assert out["workflow"] == "acme/vip-order-follow-up" and out["event"] == {
        "table": "orders",
        "operation": "created",
    }
    assert set(out["nodes"][0]) == {"id", "type", "status", "branch", "next", "summary", "trace", "action"}
    assert json.loads(json.dumps(out)) == out


# --- the command -------------------------------------------------------------------------------------


def _run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], event: Any, *extra: str, workflow: Any = None
) -> Any:
    workflow_path, event_path = tmp_path / "wf.yaml", tmp_path / "event.json"
    workflow_path.write_text(yaml.safe_dump(workflow) if workflow is not None else EXAMPLE.read_text())
    event_path.write_text(event if isinstance(event, str) else json.dumps(event))
    args = ["test-workflow", str(workflow_path), "--event", str(event_path), "--catalog", str(DEMO_CATALOG)]
    code = main([*args, "--now", "2026-11-20T12:00:00Z", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_one_line_per_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, _created(STANDARD))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "workflow acme/vip-order-follow-up, event created on orders"
    assert lines[1] == "✓ start (trigger): the event fits the trigger: created on orders"
    assert lines[2] == "✗ is-vip (condition) → false: the conditions do not hold"
    assert "- thank (action): skipped: receives nothing" in lines
    assert lines[-1] == "WOULD ACT: tag-standard (a test: nothing was done)"


def test_the_command_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, capsys, _created(VIP), "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["acted"] == ["thank", "discount"] and [n["id"] for n in result["nodes"]] == ORDER_PATH
    code, out, _ = _run(
        tmp_path, capsys, {"table": "orders", "operation": "deleted", "old": ORDER}, "--format", "json"
    )
    assert code == 0 and json.loads(out)["started"] is False


def test_an_invalid_workflow_exits_1_with_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _example()
    data["connections"].append({"from": "discount", "to": "nowhere"})
    data["nodes"][3]["action"]["table"] = "secrets"
    code, out, err = _run(tmp_path, capsys, _created(VIP), workflow=data)
    assert code == 1 and "nothing was tested" in err
    assert "    connections[6].to: unknown node 'nowhere'" in out
    assert any(line.startswith("    nodes[3].action.table: ") for line in out.splitlines())
    code, out, _ = _run(tmp_path, capsys, _created(VIP), "--format", "json", workflow=data)
    errors = json.loads(out)["errors"]
    assert code == 1 and {e["path"] for e in errors} == {"connections[6].to", "nodes[3].action.table"}
    code, out, _ = _run(tmp_path, capsys, _created(VIP), workflow={"kind": "rule", "name": "x"})
    assert code == 1 and "kind: test-workflow tests workflows; this is a rule" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(tmp_path, capsys, "{not json")
    assert code == 2 and "the event is not valid JSON" in err
    code, _, err = _run(tmp_path, capsys, {"table": "orders"})
    assert code == 2 and "operation" in err
    code, _, err = _run(tmp_path, capsys, _created(VIP), "--connection", "app_db")
    assert code == 2 and "--connection app_db: connections are Airflow's" in err
    code, _, err = _run(tmp_path, capsys, _created(VIP), "--now", "soon")
    assert code == 2 and "--now 'soon'" in err
    assert main(["test-workflow", str(tmp_path / "missing.yaml"), "--event", str(tmp_path / "e.json")]) == 2
    with pytest.raises(SystemExit) as exited:  # argparse: --event is required
        main(["test-workflow", str(EXAMPLE)])
    assert exited.value.code == 2


def test_condition_templates_come_from_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """route-new-orders' `is-big` uses the `big-order` condition template: --templates gives it."""
    workflow = read_definition_file(ROOT / "include" / "workflows" / "route-new-orders.yaml")
    templates = ["--templates", str(ROOT / "include" / "templates")]
    paid = {**ORDER, "total": 5000, "status": "paid"}
    code, out, _ = _run(tmp_path, capsys, _created(paid), "--format", "json", *templates, workflow=workflow)
    assert code == 0, out
    result = json.loads(out)
    assert result["acted"] == ["make-high", "stamp"]
    assert [n["id"] for n in result["nodes"] if n["status"] == "skipped"] == ["make-normal"]
    stamp = result["nodes"][-1]
    assert stamp["id"] == "stamp" and stamp["action"]["values"] == {"note": "routed: order 7 (paid)"}


def test_a_workflow_built_from_a_workflow_template_is_tested_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """note-big-shipped-orders is `use: follow-up-status`: --templates gives the template, and the test
    walks the expanded nodes, as `apply` would check it."""
    workflow = read_definition_file(ROOT / "include" / "workflows" / "note-big-shipped-orders.yaml")
    templates = ["--templates", str(ROOT / "include" / "templates")]
    shipped = {"table": "orders", "operation": "updated", "old": {**ORDER, "status": "paid", "total": 2500},
               "new": {**ORDER, "status": "shipped", "total": 2500}}  # fmt: skip
    code, out, _ = _run(tmp_path, capsys, shipped, "--format", "json", *templates, workflow=workflow)
    assert code == 0, out
    result = json.loads(out)
    assert result["started"] is True and result["acted"] == ["tag"]
    assert result["nodes"][-1]["action"]["values"] == {"note": "big order shipped"}
