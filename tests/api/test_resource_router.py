"""The one resource router: every row of the kinds table served alike, guarded creates, and restore."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rule_engine.api import definition_ops
from rule_engine.api.resource_kinds import API_KINDS

from rule_compiler.kinds import KINDS
from rule_compiler.store import RuleStore
from tests.api.conftest import Api, Recorder, create, rule_body


def test_every_kind_of_the_kinds_table_has_its_resource(api: Api) -> None:
    """Each kind of ``rule_compiler.kinds.KINDS`` is a row of the REST table, served at its path."""
    assert sorted(row.kind for row in API_KINDS) == sorted(KINDS)
    paths = api.as_("vera").get("/openapi.json").json()["paths"]
    for row in API_KINDS:
        base = f"/api/v1{row.path}"
        expected = {"", "/validate", "/{name}", "/{name}/versions", "/{name}/versions/{version}/restore"}
        expected.add("/{name}/versions/{from_version}/diff/{to_version}")
        if row.definition_kind.has_dag:
            expected.add("/{name}/spec")
        assert {p.removeprefix(base) for p in paths if p.startswith(base + "/") or p == base} >= expected, row
        listing = api.as_("vera").get(row.path)
        assert listing.status_code == 200 and listing.json()["items"] == [], listing.text


def _versions(api: Api, name: str) -> list[int]:
    return [v["version"] for v in api.as_("vera").get(f"/rules/{name}/versions").json()]


def test_restore_makes_an_old_version_current_as_a_new_version(
    api: Api, store: RuleStore, recorder: Recorder
) -> None:
    created = create(api)
    first_priority = created.json()["definition"]["actions"][0]["values"]["priority"]
    changed = api.as_("ed").patch(
        "/rules/flag-big-paid-orders",
        json={"description": "changed"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    assert _versions(api, "flag-big-paid-orders") == [1, 2]

    without = api.as_("ed").post("/rules/flag-big-paid-orders/versions/1/restore")
    assert without.status_code == 428
    stale = api.as_("ed").post(
        "/rules/flag-big-paid-orders/versions/1/restore", headers={"If-Match": created.headers["ETag"]}
    )
    assert stale.status_code == 412
    assert (
        api.as_("vera")
        .post("/rules/flag-big-paid-orders/versions/1/restore", headers={"If-Match": "*"})
        .status_code
        == 403
    )

    restored = api.as_("ed").post(
        "/rules/flag-big-paid-orders/versions/1/restore", headers={"If-Match": changed.headers["ETag"]}
    )
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["version"] == 3 and body["description"] == created.json()["description"]
    assert body["definition"]["actions"][0]["values"]["priority"] == first_priority
    assert body["source_hash"] == created.json()["source_hash"]
    assert _versions(api, "flag-big-paid-orders") == [1, 2, 3]
    [entry, *_] = store.audit_entries(organization="acme", kind="rule", name="flag-big-paid-orders")
    assert (entry.action, entry.actor, entry.version, entry.detail["restored_from"]) == ("update", "ed", 3, 1)
    assert recorder.changes[-1].dag_id == body["dag_id"]  # Airflow is told, like any write

    same = api.as_("ed").post(
        "/rules/flag-big-paid-orders/versions/3/restore", headers={"If-Match": restored.headers["ETag"]}
    )
    assert same.status_code == 200 and same.json()["version"] == 3  # the current content: nothing written
    missing = api.as_("ed").post(
        "/rules/flag-big-paid-orders/versions/9/restore", headers={"If-Match": restored.headers["ETag"]}
    )
    assert missing.status_code == 404


def test_restore_validates_the_old_version_as_today(api: Api, store: RuleStore) -> None:
    """A version that today's catalog refuses is not restored: 422 with its problems, nothing written."""
    created = create(api)
    changed = api.as_("ed").patch(
        "/rules/flag-big-paid-orders",
        json={"description": "changed"},
        headers={"If-Match": created.headers["ETag"]},
    )
    catalog = store.get_catalog("acme")
    assert catalog is not None
    del catalog["connections"]["app_db"]["tables"]["orders"]["columns"]["priority"]
    store.put_catalog(organization="acme", catalog=catalog, actor="setup")
    refused = api.as_("ed").post(
        "/rules/flag-big-paid-orders/versions/1/restore", headers={"If-Match": changed.headers["ETag"]}
    )
    assert refused.status_code == 422, refused.text
    assert any("priority" in e["message"] for e in refused.json()["errors"])
    assert _versions(api, "flag-big-paid-orders") == [1, 2]


def test_a_create_of_an_existing_name_is_409_and_names_the_way_to_change_it(api: Api) -> None:
    create(api)
    again = api.as_("ed").post("/rules", json=rule_body())
    assert again.status_code == 409
    assert again.json()["detail"] == (
        "rule 'flag-big-paid-orders' exists; change it with PUT or PATCH /rules/flag-big-paid-orders"
    )


def test_two_concurrent_creates_of_one_name_give_one_201_and_one_409(
    postgres_url: str, issue_token: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both requests pass the early existence check before either writes (a barrier holds them in
    compiling); the guarded write lets exactly one in."""
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    from tests.api.conftest import catalog_for

    store = RuleStore(postgres_url)
    store.upgrade()
    store.put_catalog(organization="acme", catalog=catalog_for("acme"), actor="setup")
    store.put_membership(organization="acme", username="ed", role="editor", actor="setup")
    app = create_app(
        store, settings=ApiSettings(rate_limit=""), on_change=None, render_errors_of=lambda _: {}
    )
    barrier = threading.Barrier(2, timeout=30)
    plan = definition_ops.plan_write

    def plan_together(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()  # both creates are past the existence check here
        return plan(*args, **kwargs)

    monkeypatch.setattr(definition_ops, "plan_write", plan_together)
    headers = {"Authorization": f"Bearer {issue_token('ed')}"}
    statuses: list[int] = []
    details: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:

        def post() -> None:
            response = client.post("/api/v1/rules", json=rule_body(), headers=headers)
            statuses.append(response.status_code)
            details.append(response.json().get("detail", "") if response.status_code != 201 else "")

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(statuses) == [201, 409], details
    assert any("exists" in detail for detail in details), details
    assert [
        v.version for v in store.versions(organization="acme", kind="rule", name="flag-big-paid-orders")
    ] == [1]
    assert [e.action for e in store.audit_entries(organization="acme", kind="rule")] == ["create"]
    store.close()
