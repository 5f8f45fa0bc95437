"""``/workflows`` through the real app: a workflow is a row of the kinds table like any other, with the
run routes rules have (next runs, trigger against Airflow's real metadata DB)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore
from tests.api.airflow_dags import dag_run, dag_syncer
from tests.api.conftest import Api
from tests.conftest import ROOT

INCLUDE = ROOT / "include"


def _body(folder: str, name: str, **changes: Any) -> dict[str, Any]:
    data = read_definition_file(INCLUDE / folder / f"{name}.yaml")
    data.pop("organization")
    return {**data, **changes}


def _create_route_new_orders(api: Api) -> Any:
    template = api.as_("ed").post("/condition-templates", json=_body("templates", "big-order"))
    assert template.status_code == 201, template.text
    created = api.as_("ed").post("/workflows", json=_body("workflows", "route-new-orders"))
    assert created.status_code == 201, created.text
    return created


def test_a_workflow_is_created_listed_compiled_and_versioned(api: Api) -> None:
    created = _create_route_new_orders(api).json()
    assert created["dag_id"] == "workflow__acme__route-new-orders" and created["trigger_type"] == "event"
    vera = api.as_("vera")
    listing = vera.get("/workflows", params={"trigger_type": "event"}).json()["items"]
    assert [item["name"] for item in listing] == ["route-new-orders"]
    spec = vera.get("/workflows/route-new-orders/spec").json()["spec"]
    tasks = {task["task_id"]: task for task in spec["tasks"]}
    assert tasks["is-big"]["kind"] == "workflow_condition"
    assert tasks["is-big"]["params"]["branches"] == {"false": ["make-normal"], "true": ["make-high"]}
    assert tasks["routed"]["trigger_rule"] == "none_failed_min_one_success"
    assert tasks["stamp"]["upstream"] == ["routed"]
    changed = api.as_("ed").patch(
        "/workflows/route-new-orders", json={"description": "changed"}, headers={"If-Match": "*"}
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert [v["version"] for v in vera.get("/workflows/route-new-orders/versions").json()] == [1, 2]
    # one version's definition as stored (what the designer's visual diff compares)
    first = vera.get("/workflows/route-new-orders/versions/1").json()
    second = vera.get("/workflows/route-new-orders/versions/2").json()
    assert (first["version"], first["actor"]) == (1, "ed")
    assert first["definition"]["description"] != "changed"
    assert second["definition"]["description"] == "changed"
    assert [n["id"] for n in first["definition"]["nodes"]][:2] == ["start", "is-big"]
    assert vera.get("/workflows/route-new-orders/versions/9").status_code == 404
    assert api.as_("gus").get("/workflows/route-new-orders/versions/1").status_code == 404
    assert vera.get("/rules/route-new-orders").status_code == 404  # a workflow is not a rule
    used = vera.get("/condition-templates/big-order").json()["used_by"]
    assert used["workflows"] == ["route-new-orders"] and used["rules"] == []


def test_a_workflow_built_from_a_workflow_template_is_one_of_its_users(api: Api) -> None:
    template = api.as_("ed").post("/workflow-templates", json=_body("templates", "follow-up-status"))
    assert template.status_code == 201, template.text
    created = api.as_("ed").post("/workflows", json=_body("workflows", "note-big-shipped-orders"))
    assert created.status_code == 201, created.text
    assert created.json()["trigger_type"] == "event"  # read from the expanded template
    vera = api.as_("vera")
    assert vera.get("/workflow-templates/follow-up-status").json()["used_by"]["workflows"] == [
        "note-big-shipped-orders"
    ]
    spec = vera.get("/workflows/note-big-shipped-orders/spec").json()["spec"]
    tag = next(task for task in spec["tasks"] if task["task_id"] == "tag")
    assert tag["params"]["values"] == {"note": "big order shipped"}


def test_a_bad_workflow_is_refused_with_every_problem_at_its_path(api: Api) -> None:
    body = _body("workflows", "route-new-orders")
    body["nodes"].append({"id": "start-again", "type": "trigger", "trigger": {"type": "manual"}})
    body["connections"] += [
        {"from": "stamp", "to": "is-big"},  # a cycle
        {"from": "make-high", "to": "nowhere"},
        {"from": "make-high", "to": "routed", "when": "true"},
    ]
    api.as_("ed").post("/condition-templates", json=_body("templates", "big-order"))
    refused = api.as_("ed").post("/workflows", json=body)
    assert refused.status_code == 422, refused.text
    paths = {issue["path"] for issue in refused.json()["errors"]}
    assert {"nodes[6].type", "connections[7].to", "connections[8].when", "connections"} <= paths, paths
    assert api.as_("vera").get("/workflows").json()["items"] == []


def test_a_waiting_workflow_assigns_members_of_its_organization_only(api: Api, store: RuleStore) -> None:
    """Its approval's assignee (`admin`) must be a member of acme: refused at its path until it is."""
    body = _body("workflows-waiting", "vip-order-follow-up")
    refused = api.as_("ed").post("/workflows", json=body)
    assert refused.status_code == 422, refused.text
    [issue] = refused.json()["errors"]
    assert (
        issue["path"] == "nodes[5].assignees[0]"
        and "'admin' is not a member of organization 'acme'" in issue["message"]
    )
    store.put_membership(organization="acme", username="admin", role="viewer", actor="test")
    created = api.as_("ed").post("/workflows", json=body)
    assert created.status_code == 201, created.text
    spec = api.as_("vera").get("/workflows/vip-order-follow-up/spec").json()["spec"]
    kinds = {task["task_id"]: task["kind"] for task in spec["tasks"]}
    assert (kinds["two-days"], kinds["manager-ok"]) == ("workflow_delay", "workflow_approval")


@pytest.mark.airflow
def test_next_runs_and_trigger(
    api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _create_route_new_orders(api)
    scheduled = api.as_("ed").post("/reports", json=_body("reports", "weekly-sales"))
    assert scheduled.status_code == 201, scheduled.text
    monday = api.as_("ed").post("/workflows", json=_body("workflows", "monday-sales-review"))
    assert monday.status_code == 201, monday.text
    vera = api.as_("vera")
    runs = vera.get("/workflows/monday-sales-review/next-runs", params={"count": 2}).json()
    assert runs["cron"] == "0 7 * * 1" and len(runs["runs"]) == 2
    assert vera.get("/workflows/route-new-orders/next-runs").status_code == 409

    sync: Callable[[], None] = dag_syncer(store, monkeypatch, tmp_path)
    sync()
    path = "/workflows/route-new-orders/trigger"
    started = api.as_("ed").post(path, json={"payload": {"event_ids": ["5"]}})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["dag_id"] == "workflow__acme__route-new-orders"
    assert dag_run(body["run_id"]).conf == {"event_ids": ["5"]}
    missing = api.as_("ed").post(path)
    assert missing.status_code == 422 and missing.json()["errors"][0]["path"] == "payload.event_ids"
    assert api.as_("vera").post(path).status_code == 403
