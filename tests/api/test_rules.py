"""Rules through the real app: CRUD with nested conditions and actions, validation errors with JSON
paths, optimistic concurrency, versions and diffs, the audit log, the rule tester, next runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from rule_compiler.store import RuleStore
from tests.api.conftest import Api, Recorder, create, rule_body


def test_create_stores_nested_conditions_and_actions_with_the_acting_user(
    api: Api, store: RuleStore, recorder: Recorder
) -> None:
    response = create(api, "escalate-vip-orders")
    body = response.json()
    assert body["organization"] == "acme"
    assert body["dag_id"] == "rule__acme__escalate-vip-orders"
    assert body["version"] == 1 and body["updated_by"] == "ed"
    assert response.headers["ETag"] == body["etag"]
    assert response.headers["Location"].endswith("/api/v1/rules/escalate-vip-orders")
    stored = store.get(organization="acme", kind="rule", name="escalate-vip-orders")
    conditions = stored.source["conditions"]["all"]
    assert conditions[2]["any"][1] == {"field": "status", "operator": "equals", "value": "payment_failed"}
    assert [a["id"] for a in stored.source["actions"]] == ["escalate", "annotate"]
    assert stored.source["actions"][1]["depends_on"] == ["escalate"]
    [entry] = store.audit_entries(organization="acme", kind="rule")
    assert (entry.action, entry.actor, entry.name, entry.version) == (
        "create",
        "ed",
        "escalate-vip-orders",
        1,
    )
    assert [(c.dag_id, c.active) for c in recorder.changes] == [("rule__acme__escalate-vip-orders", True)]


def test_read_list_filter_sort_and_page(api: Api) -> None:
    for name in ("escalate-vip-orders", "flag-big-paid-orders", "archive-void-orders"):
        create(api, name)
    ed = api.as_("ed")
    listing = ed.get("/rules").json()
    assert [r["name"] for r in listing["items"]] == [
        "archive-void-orders",
        "escalate-vip-orders",
        "flag-big-paid-orders",
    ]
    assert listing["total"] == 3 and listing["has_more"] is False
    manual = ed.get("/rules", params={"trigger_type": "manual", "sort": "-name"}).json()
    assert [r["name"] for r in manual["items"]] == ["flag-big-paid-orders", "archive-void-orders"]
    for sort in ("created_at", "-created_at", "updated_at", "-updated_at"):
        assert ed.get("/rules", params={"sort": sort}).json()["total"] == 3, sort
    newest = ed.get("/rules", params={"sort": "-created_at"}).json()["items"]
    assert newest[0]["name"] == "archive-void-orders"  # created last
    page = ed.get("/rules", params={"limit": 1, "offset": 1}).json()
    assert [r["name"] for r in page["items"]] == ["escalate-vip-orders"] and page["has_more"] is True
    assert [r["name"] for r in ed.get("/rules", params={"name_prefix": "fl"}).json()["items"]] == [
        "flag-big-paid-orders"
    ]
    one = ed.get("/rules/flag-big-paid-orders")
    assert one.status_code == 200
    assert one.json()["definition"]["actions"][0]["values"] == {"priority": "high"}
    assert one.headers["ETag"] == one.json()["etag"]


def _issues(response: Any) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


def test_invalid_rule_answers_422_with_every_problem_at_its_json_path(api: Api, store: RuleStore) -> None:
    body = rule_body(
        "escalate-vip-orders",
        trigger={
            "type": "schedule",
            "cron": "61 * * * *",
            "target": {"connection": "app_db", "table": "orders"},
        },
    )
    body["actions"][0]["values"] = {"no_such_column": 1}
    body["actions"][1]["colour"] = "red"
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422
    paths = [path for path, _ in _issues(response)]
    assert "trigger.cron" in paths
    assert "actions[1].colour" in paths
    assert store.list() == []


def test_semantic_errors_carry_paths_too(api: Api, store: RuleStore) -> None:
    body = rule_body("flag-big-paid-orders")
    body["actions"][0]["values"] = {"no_such_column": 1}
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422
    [(path, _)] = _issues(response)
    assert path.startswith("actions[0].values")
    assert store.list() == []


def test_organization_in_the_body_must_be_the_callers(api: Api, store: RuleStore) -> None:
    response = api.as_("ed").post("/rules", json={**rule_body(), "organization": "globex"})
    assert response.status_code == 422
    assert _issues(response) == [("organization", "organization")]
    assert store.list() == []
    assert api.as_("ed").post("/rules", json={**rule_body(), "organization": "acme"}).status_code == 201


def test_create_twice_is_a_conflict(api: Api) -> None:
    create(api)
    again = api.as_("ed").post("/rules", json=rule_body())
    assert again.status_code == 409
    assert "PUT" in again.json()["detail"]


def test_validate_is_a_dry_run(api: Api, store: RuleStore) -> None:
    ok = api.as_("vera").post("/rules/validate", json=rule_body())
    assert ok.status_code == 200
    assert ok.json() == {
        "valid": True,
        "errors": [],
        "warnings": [],
        "dag_id": "rule__acme__flag-big-paid-orders",
        "spec_hash": ok.json()["spec_hash"],
    }
    bad = api.as_("vera").post("/rules/validate", json=rule_body(actions=[]))
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert [e["path"] for e in bad.json()["errors"]] == ["actions"]
    assert store.list() == []


def test_put_needs_if_match_and_refuses_a_stale_etag(api: Api, store: RuleStore) -> None:
    etag = create(api).headers["ETag"]
    ed = api.as_("ed")
    changed = rule_body(description="only paid orders of 1,000 or more")
    missing = ed.put("/rules/flag-big-paid-orders", json=changed)
    assert missing.status_code == 428
    updated = ed.put("/rules/flag-big-paid-orders", json=changed, headers={"If-Match": etag})
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.headers["ETag"] != etag
    stale = ed.put("/rules/flag-big-paid-orders", json=rule_body(), headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == updated.headers["ETag"]
    assert store.get(organization="acme", kind="rule", name="flag-big-paid-orders").version == 2
    actions = [(e.action, e.actor, e.version) for e in store.audit_entries(kind="rule")]
    assert actions == [("update", "ed", 2), ("create", "ed", 1)]


def test_put_with_the_same_definition_writes_nothing(api: Api, store: RuleStore, recorder: Recorder) -> None:
    etag = create(api).headers["ETag"]
    same = api.as_("ed").put("/rules/flag-big-paid-orders", json=rule_body(), headers={"If-Match": etag})
    assert same.status_code == 200
    assert same.headers["ETag"] == etag and same.json()["version"] == 1
    assert len(store.audit_entries(kind="rule")) == 1 and len(recorder.changes) == 1


def test_put_cannot_rename_or_move_a_rule(api: Api) -> None:
    etag = create(api).headers["ETag"]
    ed = api.as_("ed")
    renamed = ed.put(
        "/rules/flag-big-paid-orders", json={**rule_body(), "name": "other"}, headers={"If-Match": etag}
    )
    assert renamed.status_code == 422 and _issues(renamed) == [("name", "invalid")]
    moved = ed.put(
        "/rules/flag-big-paid-orders",
        json={**rule_body(), "organization": "globex"},
        headers={"If-Match": etag},
    )
    assert moved.status_code == 422 and _issues(moved) == [("organization", "organization")]


def test_patch_is_a_json_merge_patch(api: Api, store: RuleStore, recorder: Recorder) -> None:
    etag = create(api).headers["ETag"]
    patch = {"active": False, "owner": None, "description": "patched"}
    response = api.as_("ed").patch(
        "/rules/flag-big-paid-orders",
        content=__import__("json").dumps(patch),
        headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    stored = store.get(organization="acme", kind="rule", name="flag-big-paid-orders")
    assert stored.active is False and stored.version == 2
    assert stored.source["description"] == "patched"
    assert stored.source.get("owner") is None
    assert stored.source["actions"][0]["values"] == {"priority": "high"}  # untouched parts stay
    assert recorder.changes[-1].active is False


def test_patch_that_breaks_the_rule_is_refused_with_paths(api: Api, store: RuleStore) -> None:
    etag = create(api).headers["ETag"]
    response = api.as_("ed").patch(
        "/rules/flag-big-paid-orders", json={"trigger": {"type": "sometimes"}}, headers={"If-Match": etag}
    )
    assert response.status_code == 422
    assert _issues(response) == [("trigger.type", "unknown_type")]
    assert store.get(organization="acme", kind="rule", name="flag-big-paid-orders").version == 1


def test_delete_deactivates_and_hides_but_keeps_history(
    api: Api, store: RuleStore, recorder: Recorder
) -> None:
    etag = create(api).headers["ETag"]
    ed = api.as_("ed")
    assert ed.delete("/rules/flag-big-paid-orders").status_code == 428
    assert ed.delete("/rules/flag-big-paid-orders", headers={"If-Match": '"nope"'}).status_code == 412
    assert ed.delete("/rules/flag-big-paid-orders", headers={"If-Match": etag}).status_code == 204
    assert ed.get("/rules/flag-big-paid-orders").status_code == 404
    assert recorder.changes[-1].active is None
    [summary] = store.list(include_deleted=True)
    assert summary.deleted_at is not None and summary.active is False
    assert (
        store.audit_entries(kind="rule")[0].action == "delete"
        and store.audit_entries(kind="rule")[0].actor == "ed"
    )
    revived = ed.post("/rules", json=rule_body())
    assert revived.status_code == 201 and revived.json()["version"] == 2


def test_hard_delete_is_for_admins_and_keeps_the_audit_rows(api: Api, store: RuleStore) -> None:
    etag = create(api).headers["ETag"]
    refused = api.as_("ed").delete("/rules/flag-big-paid-orders?hard=true", headers={"If-Match": etag})
    assert refused.status_code == 403
    purged = api.as_("ada").delete("/rules/flag-big-paid-orders?hard=true", headers={"If-Match": etag})
    assert purged.status_code == 204
    assert store.list(include_deleted=True) == []
    entries = store.audit_entries(kind="rule")
    assert [(e.action, e.actor, e.detail.get("hard")) for e in entries] == [
        ("delete", "ada", True),
        ("create", "ed", None),
    ]


def test_a_soft_deleted_rule_is_purged_with_if_match_star(api: Api, store: RuleStore) -> None:
    etag = create(api).headers["ETag"]
    ada = api.as_("ada")
    assert ada.delete("/rules/flag-big-paid-orders", headers={"If-Match": etag}).status_code == 204
    assert ada.delete("/rules/flag-big-paid-orders?hard=true", headers={"If-Match": etag}).status_code == 404
    assert ada.delete("/rules/flag-big-paid-orders?hard=true", headers={"If-Match": "*"}).status_code == 204
    assert store.list(include_deleted=True) == []


def test_spec_versions_and_diff(api: Api) -> None:
    etag = create(api).headers["ETag"]
    ed = api.as_("ed")
    changed = rule_body()
    changed["conditions"]["all"][1]["value"] = 2000
    changed["actions"][0]["values"] = {"priority": "urgent"}
    assert ed.put("/rules/flag-big-paid-orders", json=changed, headers={"If-Match": etag}).status_code == 200
    spec = ed.get("/rules/flag-big-paid-orders/spec").json()
    assert spec["dag_id"] == "rule__acme__flag-big-paid-orders" and spec["version"] == 2
    assert spec["spec"]["dag_id"] == spec["dag_id"]
    versions = ed.get("/rules/flag-big-paid-orders/versions").json()
    assert [(v["version"], v["actor"]) for v in versions] == [(1, "ed"), (2, "ed")]
    diff = ed.get("/rules/flag-big-paid-orders/versions/1/diff/2").json()
    assert {(c["path"], c["op"], c["before"], c["after"]) for c in diff["changes"]} == {
        ("conditions.all[1].value", "changed", 1000, 2000),
        ("actions[0].values.priority", "changed", "high", "urgent"),
    }
    assert ed.get("/rules/flag-big-paid-orders/versions/1/diff/9").status_code == 404


def test_the_rule_tester_returns_the_trace(api: Api) -> None:
    create(api)
    event = {"table": "orders", "operation": "updated", "new": {"id": 7, "status": "paid", "total": 1500}}
    response = api.as_("vera").post("/rules/flag-big-paid-orders/test", json={"event": event})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["matched"] is True and result["rule"] == "acme/flag-big-paid-orders"
    assert [c["result"] for c in result["trace"]["children"]] == [True, True]
    cheap = {**event, "new": {"id": 8, "status": "paid", "total": 10}}
    assert (
        api.as_("vera").post("/rules/flag-big-paid-orders/test", json={"event": cheap}).json()["matched"]
        is False
    )
    bad = api.as_("vera").post("/rules/flag-big-paid-orders/test", json={"event": {"table": "orders"}})
    assert bad.status_code == 422
    assert ("event.operation", "missing") in _issues(bad)


def test_the_rule_tester_reading_related_rows_through_an_undefined_connection_answers_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # escalate-vip-orders reads customer__tier through app_db, which this Airflow does not define
    monkeypatch.delenv("AIRFLOW_CONN_APP_DB", raising=False)
    create(api, "escalate-vip-orders")
    new = {"id": 7, "status": "pending", "total": 900, "priority": "normal", "customer_id": 3}
    body = {"event": {"table": "orders", "operation": "updated", "new": new}, "read_related": True}
    response = api.as_("vera").post("/rules/escalate-vip-orders/test", json=body)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail.startswith("Airflow connection 'app_db' is not defined"), detail
    assert "Retry-After" not in response.headers
    # without read_related the path reads as NULL, with a note: the same request otherwise works
    plain = api.as_("vera").post("/rules/escalate-vip-orders/test", json={**body, "read_related": False})
    assert plain.status_code == 200, plain.text


def test_next_runs_follow_the_cron_in_its_time_zone(api: Api) -> None:
    create(api, "escalate-vip-orders")
    create(api, "flag-big-paid-orders")
    ed = api.as_("ed")
    response = ed.get("/rules/escalate-vip-orders/next-runs", params={"count": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["cron"] == "*/15 * * * *" and body["timezone"] == "Europe/Berlin"
    import datetime as dt

    runs = [dt.datetime.fromisoformat(r) for r in body["runs"]]
    assert [r.minute % 15 for r in runs] == [0, 0, 0]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(runs)] == [900, 900]
    assert ed.get("/rules/flag-big-paid-orders/next-runs").status_code == 409


def test_unknown_rule_names_answer_404(api: Api) -> None:
    ed = api.as_("ed")
    for path in ("/rules/nope", "/rules/nope/spec", "/rules/nope/versions", "/rules/nope/next-runs"):
        assert ed.get(path).status_code == 404, path
    assert ed.put("/rules/nope", json=rule_body(), headers={"If-Match": "*"}).status_code == 404


def test_the_whole_lifecycle_on_postgres(postgres_url: str, issue_token: Callable[[str], str]) -> None:
    from fastapi.testclient import TestClient
    from rule_engine.api import create_app
    from rule_engine.api.settings import ApiSettings

    from tests.api.conftest import catalog_for

    store = RuleStore(postgres_url)
    store.upgrade()
    store.put_catalog(organization="acme", catalog=catalog_for("acme"), actor="setup")
    store.put_membership(organization="acme", username="ada", role="admin", actor="setup")
    app = create_app(
        store, settings=ApiSettings(rate_limit=""), on_change=None, render_errors_of=lambda _: {}
    )
    headers = {"Authorization": f"Bearer {issue_token('ada')}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        created = client.post("/api/v1/rules", json=rule_body("escalate-vip-orders"), headers=headers)
        assert created.status_code == 201, created.text
        etag = created.headers["ETag"]
        changed = client.patch(
            "/api/v1/rules/escalate-vip-orders",
            json={"description": "x"},
            headers={**headers, "If-Match": etag},
        )
        assert changed.status_code == 200 and changed.json()["version"] == 2
        stale = client.patch(
            "/api/v1/rules/escalate-vip-orders",
            json={"description": "y"},
            headers={**headers, "If-Match": etag},
        )
        assert stale.status_code == 412
        diff = client.get("/api/v1/rules/escalate-vip-orders/versions/1/diff/2", headers=headers).json()
        assert [c["path"] for c in diff["changes"]] == ["description"]
        purge = client.delete(
            "/api/v1/rules/escalate-vip-orders?hard=true",
            headers={**headers, "If-Match": changed.headers["ETag"]},
        )
        assert purge.status_code == 204
    assert store.list(include_deleted=True) == []
    assert [(e.action, e.actor) for e in store.audit_entries(kind="rule")] == [
        ("delete", "ada"),
        ("update", "ada"),
        ("create", "ada"),
    ]
    store.close()
