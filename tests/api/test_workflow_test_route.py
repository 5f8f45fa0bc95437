"""``POST /workflows/{name}/test``: the path an event takes through a stored workflow, acting on nothing.

The workflow is created through ``POST /workflows``; one its catalog no longer allows is written
around validation, through the store's API (``RuleStore.apply``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.canonical import content_hash
from rule_compiler.compiler import COMPILER_VERSION
from rule_compiler.loading import read_definition_file
from rule_compiler.store import DefinitionWrite, RuleStore
from tests.api.conftest import Api
from tests.conftest import ROOT
from tests.demo_db import demo_db_module

EXAMPLE = ROOT / "include" / "workflows-waiting" / "vip-order-follow-up.yaml"
NAME = "vip-order-follow-up"
ORDER = {"id": 7, "customer_id": 2, "total": 1500}


def _store_workflow(store: RuleStore, source: dict[str, Any]) -> None:
    store.apply(
        DefinitionWrite(
            organization="acme",
            kind="workflow",
            name=source["name"],
            dag_id=f"acme__{source['name']}",
            source=source,
            source_hash=content_hash(source),
            spec_json="{}",
            spec_hash="0" * 64,
            active=True,
            actor="setup",
            compiler_version=COMPILER_VERSION,
        )
    )


@pytest.fixture
def stored(api: Api, store: RuleStore) -> dict[str, Any]:
    store.put_membership(organization="acme", username="admin", role="viewer", actor="setup")  # its assignee
    source = read_definition_file(EXAMPLE)
    body = {key: value for key, value in source.items() if key != "organization"}
    created = api.as_("ed").post("/workflows", json=body)
    assert created.status_code == 201, created.text
    return source


def _created(**new: Any) -> dict[str, Any]:
    return {"event": {"table": "orders", "operation": "created", "new": {**ORDER, **new}}}


def _test(api: Api, body: dict[str, Any], name: str = NAME, user: str = "vera") -> Any:
    return api.as_(user).post(f"/workflows/{name}/test", json=body)


@pytest.mark.usefixtures("stored")
def test_a_viewer_sees_the_branch_each_event_takes(api: Api, store: RuleStore) -> None:
    vip = _test(api, _created(customer__tier="vip", customer__email="a@example.com", customer__name="Ann"))
    assert vip.status_code == 200, vip.text
    result = vip.json()
    assert result["workflow"] == "acme/vip-order-follow-up" and result["started"] is True
    assert result["acted"] == ["thank", "discount"]
    assert [(n["id"], n["status"], n["branch"]) for n in result["nodes"]] == [
        ("start", "passed", None),
        ("is-vip", "passed", "true"),
        ("thank", "passed", None),
        ("tag-standard", "skipped", None),
        ("two-days", "passed", None),
        ("manager-ok", "passed", "approved"),
        ("discount", "passed", None),
    ]
    assert result["nodes"][2]["action"]["subject"] == "Thank you for order 7"
    standard = _test(api, _created(customer__tier="standard")).json()
    assert standard["acted"] == ["tag-standard"] and standard["nodes"][1]["branch"] == "false"
    updated = {"event": {"table": "orders", "operation": "updated", "new": ORDER}}
    not_started = _test(api, updated).json()
    assert not_started["started"] is False and not_started["acted"] == []
    assert not_started["reason"] == "not triggered: the workflow fires on created; the event is 'updated'"
    assert store.get(organization="acme", kind="workflow", name=NAME).version == 1  # nothing written


@pytest.mark.usefixtures("stored")
def test_unknown_workflows_bad_events_and_outsiders_are_refused(api: Api) -> None:
    assert _test(api, _created(), name="no-such-workflow").status_code == 404
    assert _test(api, _created(), user="gus").status_code == 404  # globex has no such workflow
    assert _test(api, _created(), user="nomad").status_code == 403
    bad = _test(api, {"event": {"table": "orders"}})
    assert bad.status_code == 422
    assert ("event.operation", "missing") in {(e["path"], e["code"]) for e in bad.json()["errors"]}
    no_row = _test(api, {"event": {"table": "orders", "operation": "created"}})
    assert no_row.status_code == 422 and "the event has no row to test" in no_row.json()["detail"]


def test_a_stored_workflow_its_catalog_no_longer_allows_answers_422_with_paths(
    api: Api, store: RuleStore
) -> None:
    store.put_membership(organization="acme", username="admin", role="viewer", actor="setup")  # its assignee
    source = read_definition_file(EXAMPLE)
    source["nodes"][3]["action"]["table"] = "no_such_table"
    _store_workflow(store, source)
    response = _test(api, _created(customer__tier="vip"))
    assert response.status_code == 422, response.text
    assert {e["path"] for e in response.json()["errors"]} == {"nodes[3].action.table"}


@pytest.mark.usefixtures("stored")
def test_read_related_reads_foreign_key_paths_through_the_connection_seam(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.db"
    demo_db_module().create_demo_db(
        sa.create_engine(f"sqlite:///{path}"), dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    )
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    response = _test(api, {**_created(), "read_related": True})  # customer 2 is vip in the demo data
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["record"]["customer__tier"] == "vip" and result["acted"] == ["thank", "discount"]
    assert result["nodes"][2]["action"]["to"] == [result["record"]["customer__email"]]
    assert _test(api, _created()).json()["acted"] == ["tag-standard"]  # without it: NULL, so false
