"""``POST /rules/{name}/trigger`` through the real app against Airflow's real metadata DB.

Airflow learns of the rules the way ``dag.test()`` makes it (``sync_bag_to_db`` of a ``BundleDagBag``
over ``dags/``, whose loader reads the test store), so the route's ``trigger_dag`` creates real
``dag_run`` rows; no scheduler runs them here (test_standalone_e2e.py covers a run end to end).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rule_compiler.store import RuleStore
from tests.api.airflow_dags import dag_run, dag_syncer, set_paused
from tests.api.conftest import Api, Recorder, create, rule_body

pytestmark = pytest.mark.airflow
RULE = "flag-big-paid-orders"
DAG_ID = f"rule__acme__{RULE}"


@pytest.fixture
def sync_dags(store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], None]:
    return dag_syncer(store, monkeypatch, tmp_path)


def create_named(api: Api, name: str) -> None:
    """The example rule under another name (a DAG no other test makes)."""
    response = api.as_("ed").post("/rules", json={**rule_body(RULE), "name": name})
    assert response.status_code == 201, response.text


def test_trigger_starts_an_airflow_run_with_the_payload_and_the_user(
    api: Api, store: RuleStore, sync_dags: Callable[[], None]
) -> None:
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    create(api, RULE)
    sync_dags()
    response = api.as_("ed").post(
        f"/rules/{RULE}/trigger", json={"payload": {"order_ids": [7, 8]}, "note": "re-run after the fix"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rule"], body["dag_id"], body["version"], body["state"]) == (RULE, DAG_ID, 1, "queued")
    assert body["conf"] == {"order_ids": [7, 8]} and body["triggered_by"] == "ed"
    assert body["logical_date"] is None
    assert body["url"].endswith(f"dags/{DAG_ID}/runs/{body['run_id']}")
    run = dag_run(body["run_id"])
    assert run.dag_id == DAG_ID and run.conf == {"order_ids": [7, 8]}
    assert run.triggering_user_name == "ed"
    assert run.triggered_by == DagRunTriggeredByType.REST_API and run.run_type == DagRunType.MANUAL
    [audit] = store.audit_entries(organization="acme", kind="run")
    assert (audit.action, audit.actor, audit.name, audit.version) == ("create", "ed", RULE, 1)
    assert audit.detail["run_id"] == body["run_id"] and audit.detail["dag_id"] == DAG_ID

    second = api.as_("ed").post(f"/rules/{RULE}/trigger")  # no body: an empty conf, a new run id
    assert second.status_code == 201, second.text
    assert second.json()["run_id"] != body["run_id"] and dag_run(second.json()["run_id"]).conf == {}


def test_an_event_rule_reprocesses_the_outbox_events_it_is_given(
    api: Api, sync_dags: Callable[[], None]
) -> None:
    create(api, "expedite-vip-payments")
    sync_dags()
    ed = api.as_("ed")
    path = "/rules/expedite-vip-payments/trigger"
    started = ed.post(path, json={"payload": {"event_ids": ["17", 18, "17"]}})
    assert started.status_code == 201, started.text
    assert dag_run(started.json()["run_id"]).conf == {"event_ids": ["17", "18"]}
    cases: list[tuple[dict[str, Any] | None, str]] = [
        (None, "payload.event_ids"),
        ({"event_ids": []}, "payload.event_ids"),
        ({"event_ids": ["17", "x"]}, "payload.event_ids[1]"),
        ({"event_ids": [0]}, "payload.event_ids[0]"),
        ({"event_ids": ["1"], "table": "orders"}, "payload.table"),
    ]
    for payload, where in cases:
        refused = ed.post(path, json={"payload": payload})
        assert refused.status_code == 422, (payload, refused.text)
        assert [e["path"] for e in refused.json()["errors"]] == [where], payload


def test_an_oversized_payload_is_refused_before_anything_happens(api: Api, store: RuleStore) -> None:
    create(api, RULE)
    huge = {"blob": "x" * (64 * 1024)}
    response = api.as_("ed").post(f"/rules/{RULE}/trigger", json={"payload": huge})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "payload"
    assert store.audit_entries(kind="run") == []


def test_an_inactive_rule_must_be_activated_first(api: Api, store: RuleStore) -> None:
    create(api, RULE, active=False)
    response = api.as_("ed").post(f"/rules/{RULE}/trigger")
    assert response.status_code == 409
    assert "activate it" in response.json()["detail"]
    assert store.audit_entries(kind="run") == []


def test_a_dag_airflow_has_not_parsed_yet_answers_409_with_retry_after(api: Api, store: RuleStore) -> None:
    create_named(api, "never-parsed-rule")
    response = api.as_("ed").post("/rules/never-parsed-rule/trigger")
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "30"
    assert "has not loaded" in response.json()["detail"]
    assert store.audit_entries(kind="run") == []


def test_a_version_airflow_has_not_loaded_yet_waits_for_the_parse(
    api: Api, sync_dags: Callable[[], None]
) -> None:
    etag = create(api, RULE).headers["ETag"]
    sync_dags()
    changed = api.as_("ed").patch(f"/rules/{RULE}", json={"description": "v2"}, headers={"If-Match": etag})
    assert changed.status_code == 200
    stale = api.as_("ed").post(f"/rules/{RULE}/trigger")
    assert stale.status_code == 409 and stale.headers["Retry-After"] == "30"
    assert "older version" in stale.json()["detail"]
    sync_dags()
    fresh = api.as_("ed").post(f"/rules/{RULE}/trigger")
    assert fresh.status_code == 201 and fresh.json()["version"] == 2


def test_a_render_error_or_a_pause_in_airflow_is_explained(
    api: Api, recorder: Recorder, sync_dags: Callable[[], None]
) -> None:
    create_named(api, "paused-in-ui")
    sync_dags()
    dag_id = "rule__acme__paused-in-ui"
    set_paused(dag_id, True)
    paused = api.as_("ed").post("/rules/paused-in-ui/trigger")
    assert paused.status_code == 409 and "paused in Airflow" in paused.json()["detail"]
    set_paused(dag_id, False)
    recorder.render_errors[dag_id] = "the stored spec could not be rendered: ValueError: boom"
    broken = api.as_("ed").post("/rules/paused-in-ui/trigger")
    assert broken.status_code == 409 and "ValueError: boom" in broken.json()["detail"]


@pytest.mark.parametrize(
    ("user", "path", "expected"),
    [
        (None, f"/rules/{RULE}/trigger", 401),
        ("nomad", f"/rules/{RULE}/trigger", 403),
        ("vera", f"/rules/{RULE}/trigger", 403),
        ("ed", f"/rules/{RULE}/trigger", 201),
        ("ada", f"/rules/{RULE}/trigger", 201),
        ("gus", f"/rules/{RULE}/trigger", 404),  # another organization's admin
        ("gina", f"/rules/{RULE}/trigger", 404),  # another organization's editor
        ("root", f"/rules/{RULE}/trigger?organization=acme", 201),
        ("ed", "/rules/no-such-rule/trigger", 404),
    ],
)
def test_trigger_auth_matrix(
    *, api: Api, store: RuleStore, sync_dags: Callable[[], None], user: str | None, path: str, expected: int
) -> None:
    create(api, RULE)
    sync_dags()
    response = api.as_(user).post(path, json={"payload": {"why": "matrix"}})
    assert response.status_code == expected, response.text
    runs = store.audit_entries(kind="run")
    assert [r.actor for r in runs] == ([user] if expected == 201 else [])
    if expected == 201:
        assert dag_run(response.json()["run_id"]).triggering_user_name == user


def test_unknown_fields_in_the_body_are_refused(api: Api) -> None:
    create(api, RULE)
    response = api.as_("ed").post(f"/rules/{RULE}/trigger", json={"conf": {"a": 1}})
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["conf"]


def test_the_body_may_not_be_other_json(api: Api) -> None:
    create(api, RULE)
    for body in ([1, 2], "text", {"payload": [1]}):
        response = api.as_("ed").post(f"/rules/{RULE}/trigger", json=body)
        assert response.status_code == 422, (body, response.text)
