"""Condition and notification templates through the real app: CRUD, validation paths, ETags, roles and
organizations, and the stored rules recompiled (or protected) when a template they use changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from rule_compiler.errors import NotFoundError
from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore, StaleWriteError
from tests.api.conftest import Api, Recorder
from tests.conftest import ROOT

TEMPLATES = ROOT / "include" / "templates"
RULES_USING_TEMPLATES = ROOT / "include" / "rules-using-templates"
CONDITION, NOTIFICATION = "/condition-templates", "/notification-templates"
#: route → (example template, its stored kind, a change to its description-free content)
KINDS = {
    CONDITION: ("big-order", "condition_template"),
    NOTIFICATION: ("vip-order", "notification_template"),
}


def _body(path: Any, **changes: Any) -> dict[str, Any]:
    data = read_definition_file(path)
    data.pop("organization")
    return {**data, **changes}


def template_body(route: str, **changes: Any) -> dict[str, Any]:
    return _body(TEMPLATES / f"{KINDS[route][0]}.yaml", **changes)


def using_rule_body(name: str) -> dict[str, Any]:
    return _body(RULES_USING_TEMPLATES / f"{name}.yaml")


def create_template(api: Api, route: str, user: str = "ed", **changes: Any) -> Any:
    response = api.as_(user).post(route, json=template_body(route, **changes))
    assert response.status_code == 201, response.text
    return response


def _issues(response: Any) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


@pytest.mark.parametrize("route", [CONDITION, NOTIFICATION])
def test_create_read_list_replace_patch_and_versions(api: Api, store: RuleStore, route: str) -> None:
    name, kind = KINDS[route]
    created = create_template(api, route)
    body = created.json()
    assert (body["name"], body["organization"], body["kind"], body["version"]) == (name, "acme", kind, 1)
    assert body["updated_by"] == "ed" and body["used_by"] == {
        "rules": [],
        "condition_templates": [],
        "workflows": [],
        "rule_templates": [],
        "workflow_templates": [],
    }
    assert created.headers["ETag"] == body["etag"]
    assert created.headers["Location"].endswith(f"/api/v1{route}/{name}")
    assert store.get(organization="acme", kind=kind, name=name).source == body["definition"]

    ed = api.as_("ed")
    create_template(api, route, name="another-one")
    listing = ed.get(route).json()
    assert [t["name"] for t in listing["items"]] == ["another-one", name] and listing["total"] == 2
    assert [t["name"] for t in ed.get(route, params={"sort": "-name"}).json()["items"]] == [
        name,
        "another-one",
    ]
    page = ed.get(route, params={"limit": 1, "offset": 1}).json()
    assert [t["name"] for t in page["items"]] == [name] and page["has_more"] is False
    assert [t["name"] for t in ed.get(route, params={"name_prefix": "an"}).json()["items"]] == ["another-one"]
    newest = ed.get(route, params={"sort": "-created_at"}).json()["items"]
    assert newest[0]["name"] == "another-one"

    etag = ed.get(f"{route}/{name}").headers["ETag"]
    replaced = ed.put(
        f"{route}/{name}", json=template_body(route, description="replaced"), headers={"If-Match": etag}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2 and replaced.json()["definition"]["description"] == "replaced"
    patched = ed.patch(
        f"{route}/{name}",
        content=json.dumps({"description": None}),
        headers={"If-Match": replaced.headers["ETag"], "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 3
    assert store.get(organization="acme", kind=kind, name=name).source["description"] == ""  # the default

    versions = ed.get(f"{route}/{name}/versions").json()
    assert [(v["version"], v["actor"]) for v in versions] == [(1, "ed"), (2, "ed"), (3, "ed")]
    diff = ed.get(f"{route}/{name}/versions/2/diff/3").json()
    assert [(c["path"], c["before"]) for c in diff["changes"]] == [("description", "replaced")]
    audit = [(e.action, e.actor, e.version) for e in store.audit_entries(kind=kind, name=name)]
    assert audit == [("update", "ed", 3), ("update", "ed", 2), ("create", "ed", 1)]


@pytest.mark.parametrize("route", [CONDITION, NOTIFICATION])
def test_delete_is_soft_and_a_new_post_revives(api: Api, store: RuleStore, route: str) -> None:
    name, kind = KINDS[route]
    etag = create_template(api, route).headers["ETag"]
    ed = api.as_("ed")
    assert ed.delete(f"{route}/{name}").status_code == 428
    assert ed.delete(f"{route}/{name}", headers={"If-Match": '"stale"'}).status_code == 412
    assert ed.delete(f"{route}/{name}", headers={"If-Match": etag}).status_code == 204
    assert ed.get(f"{route}/{name}").status_code == 404
    assert ed.get(route).json()["total"] == 0
    [summary] = store.list(kind=kind, include_deleted=True)
    assert summary.deleted_at is not None
    latest = store.audit_entries(kind=kind)[0]
    assert (latest.action, latest.actor) == ("delete", "ed")
    revived = ed.post(route, json=template_body(route))
    assert revived.status_code == 201 and revived.json()["version"] == 2


@pytest.mark.parametrize("route", [CONDITION, NOTIFICATION])
def test_hard_delete_is_for_admins(api: Api, store: RuleStore, route: str) -> None:
    name, kind = KINDS[route]
    etag = create_template(api, route).headers["ETag"]
    hard = f"{route}/{name}?hard=true"
    assert api.as_("ed").delete(hard, headers={"If-Match": etag}).status_code == 403
    assert api.as_("ada").delete(hard, headers={"If-Match": etag}).status_code == 204
    assert store.list(kind=kind, include_deleted=True) == []
    assert store.audit_entries(kind=kind)[0].detail.get("hard") is True
    etag = create_template(api, route).headers["ETag"]
    assert api.as_("ed").delete(f"{route}/{name}", headers={"If-Match": etag}).status_code == 204
    assert api.as_("ada").delete(hard, headers={"If-Match": etag}).status_code == 404  # soft-deleted
    assert api.as_("ada").delete(hard, headers={"If-Match": "*"}).status_code == 204
    assert store.list(kind=kind, include_deleted=True) == []


def test_condition_template_errors_carry_json_paths(api: Api, store: RuleStore) -> None:
    body = template_body(CONDITION)
    body["condition"]["all"][0]["value"] = {"param": "nope"}
    body["parameters"]["min_total"]["default"] = "a lot"
    body["colour"] = "red"
    shape = api.as_("ed").post(CONDITION, json=body)
    assert shape.status_code == 422
    assert ("colour", "unknown_key") in _issues(shape)
    del body["colour"]
    meaning = api.as_("ed").post(CONDITION, json=body)
    assert meaning.status_code == 422
    assert set(_issues(meaning)) >= {
        ("condition.all[0].value", "unknown_parameter"),
        ("parameters.statuses", "unused_parameter"),
        ("parameters.min_total.default", "parameter"),
    }
    assert store.list() == []


def test_notification_template_errors_carry_json_paths(api: Api, store: RuleStore) -> None:
    body = template_body(NOTIFICATION)
    body["channels"]["email"]["body"] = "{{ record.id "
    body["channels"]["slack"] = {"subject": "Slack has no subject", "text": "x"}
    shape = api.as_("ed").post(NOTIFICATION, json=body)
    assert shape.status_code == 422
    assert _issues(shape) == [("channels.slack.subject", "unknown_key")]
    del body["channels"]["slack"]["subject"]
    meaning = api.as_("ed").post(NOTIFICATION, json=body)
    assert meaning.status_code == 422
    assert _issues(meaning) == [("channels.email.body", "template")]
    assert store.list() == []


def test_the_body_cannot_choose_kind_organization_or_another_name(api: Api) -> None:
    ed = api.as_("ed")
    wrong_kind = ed.post(CONDITION, json=template_body(NOTIFICATION))
    assert wrong_kind.status_code == 422 and ("kind", "kind") in _issues(wrong_kind)
    other_org = ed.post(NOTIFICATION, json={**template_body(NOTIFICATION), "organization": "globex"})
    assert other_org.status_code == 422 and _issues(other_org) == [("organization", "organization")]
    etag = create_template(api, NOTIFICATION).headers["ETag"]
    renamed = ed.put(
        f"{NOTIFICATION}/vip-order",
        json=template_body(NOTIFICATION, name="other"),
        headers={"If-Match": etag},
    )
    assert renamed.status_code == 422 and _issues(renamed) == [("name", "invalid")]
    again = ed.post(NOTIFICATION, json=template_body(NOTIFICATION))
    assert again.status_code == 409 and "PUT" in again.json()["detail"]


@pytest.mark.parametrize("route", [CONDITION, NOTIFICATION])
def test_validate_is_a_dry_run_with_paths(api: Api, store: RuleStore, route: str) -> None:
    ok = api.as_("vera").post(f"{route}/validate", json=template_body(route))
    assert ok.status_code == 200
    assert ok.json()["valid"] is True and ok.json()["errors"] == [] and ok.json()["spec_hash"]
    bad = api.as_("vera").post(f"{route}/validate", json=template_body(route, name="Not A Slug"))
    assert bad.status_code == 200 and bad.json()["valid"] is False
    assert [e["path"] for e in bad.json()["errors"]] == ["name"]
    assert store.list() == []


@pytest.mark.parametrize("route", [CONDITION, NOTIFICATION])
def test_put_and_patch_need_the_current_etag(api: Api, store: RuleStore, route: str) -> None:
    name, kind = KINDS[route]
    etag = create_template(api, route).headers["ETag"]
    ed = api.as_("ed")
    changed = template_body(route, description="changed")
    assert ed.put(f"{route}/{name}", json=changed).status_code == 428
    assert ed.patch(f"{route}/{name}", json={"description": "x"}).status_code == 428
    first = ed.put(f"{route}/{name}", json=changed, headers={"If-Match": etag})
    assert first.status_code == 200 and first.headers["ETag"] != etag
    stale = ed.patch(f"{route}/{name}", json={"description": "y"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["ETag"] == first.headers["ETag"]
    same = ed.put(f"{route}/{name}", json=changed, headers={"If-Match": first.headers["ETag"]})
    assert same.status_code == 200 and same.json()["version"] == 2  # identical: nothing written
    assert store.get(organization="acme", kind=kind, name=name).version == 2


@pytest.mark.parametrize("route", [CONDITION, NOTIFICATION])
def test_roles_and_organizations(api: Api, route: str) -> None:
    name, _ = KINDS[route]
    etag = create_template(api, route).headers["ETag"]
    one = f"{route}/{name}"
    body = template_body(route, description="x")
    vera, gus = api.as_("vera"), api.as_("gus")
    assert vera.get(route).status_code == 200 and vera.get(one).status_code == 200
    assert vera.get(f"{one}/versions").status_code == 200
    assert vera.post(route, json=template_body(route, name="mine")).status_code == 403
    assert vera.put(one, json=body, headers={"If-Match": etag}).status_code == 403
    assert vera.patch(one, json={"description": "x"}, headers={"If-Match": etag}).status_code == 403
    assert vera.delete(one, headers={"If-Match": etag}).status_code == 403
    for method, kwargs in (("get", {}), ("put", {"json": body}), ("delete", {})):
        response = getattr(gus, method)(one, headers={"If-Match": etag}, **kwargs)
        assert response.status_code == 404, (method, response.text)
    assert gus.get(f"{one}/versions").status_code == 404
    assert gus.get(route).json()["items"] == []
    assert api.as_("gina").post(route, json=template_body(route)).status_code == 201  # globex's own
    for method, path in (
        ("GET", route),
        ("POST", route),
        ("GET", one),
        ("DELETE", one),
        ("POST", f"{route}/validate"),
    ):
        assert api.as_(None).request(method, path, json={}).status_code == 401, (method, path)


def _rule_spec(store: RuleStore, name: str) -> Any:
    return store.get(organization="acme", kind="rule", name=name)


def test_changing_a_notification_template_recompiles_the_rules_using_it(
    api: Api, store: RuleStore, recorder: Recorder
) -> None:
    etag = create_template(api, NOTIFICATION).headers["ETag"]
    ed = api.as_("ed")
    rule = ed.post("/rules", json=using_rule_body("tell-vip-account-managers"))
    assert rule.status_code == 201, rule.text
    before = _rule_spec(store, "tell-vip-account-managers")
    assert ed.get(f"{NOTIFICATION}/vip-order").json()["used_by"]["rules"] == ["tell-vip-account-managers"]

    new_subject = "Big VIP order {{ record.id }}"
    patch = {"channels": {"email": {"subject": new_subject}}}
    whole = template_body(NOTIFICATION)
    whole["channels"]["email"]["subject"] = new_subject
    preview = ed.post(f"{NOTIFICATION}/validate", json=whole)
    assert preview.json()["recompiles"] == ["tell-vip-account-managers"]
    assert _rule_spec(store, "tell-vip-account-managers").version == before.version  # a dry run
    changed = ed.patch(f"{NOTIFICATION}/vip-order", json=patch, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    after = _rule_spec(store, "tell-vip-account-managers")
    assert after.spec_hash != before.spec_hash and after.version == before.version + 1
    assert after.source == before.source  # stored as written; only the compiled spec changed
    assert new_subject in after.spec_json and new_subject not in before.spec_json
    [recompiled] = changed.json()["recompiled"]
    assert (recompiled["name"], recompiled["version"], recompiled["spec_hash"]) == (
        "tell-vip-account-managers",
        after.version,
        after.spec_hash,
    )
    assert recorder.changes[-1].dag_id == after.dag_id and recorder.changes[-1].active == after.active
    rule_audit = store.audit_entries(kind="rule", name="tell-vip-account-managers")[0]
    assert (rule_audit.action, rule_audit.actor, rule_audit.version) == ("update", "ed", after.version)
    assert rule_audit.detail["spec_hash_after"] == after.spec_hash
    template_audit = store.audit_entries(kind="notification_template")[0]
    assert (template_audit.action, template_audit.actor) == ("update", "ed")


def test_changing_a_condition_template_recompiles_rules_using_it_through_another(
    api: Api, store: RuleStore
) -> None:
    etag = create_template(api, CONDITION).headers["ETag"]
    ed = api.as_("ed")
    wrapper = {
        "kind": "condition_template",
        "name": "big-paid-order",
        "condition": {"all": [{"use": "big-order", "with": {"statuses": ["paid"]}}]},
    }
    assert ed.post(CONDITION, json=wrapper).status_code == 201
    direct = ed.post("/rules", json=using_rule_body("note-big-vip-orders"))
    assert direct.status_code == 201, direct.text
    indirect_body = using_rule_body("note-big-vip-orders") | {"name": "note-big-paid-orders"}
    indirect_body["conditions"] = {"all": [{"use": "big-paid-order"}]}
    assert ed.post("/rules", json=indirect_body).status_code == 201
    before = {n: _rule_spec(store, n).spec_hash for n in ("note-big-vip-orders", "note-big-paid-orders")}
    patch = {"parameters": {"min_total": {"default": 5000}}}
    changed = ed.patch(f"{CONDITION}/big-order", json=patch, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    after = {n: _rule_spec(store, n).spec_hash for n in before}
    # note-big-vip-orders gives min_total itself: its spec stays; the other one takes the default
    assert after["note-big-vip-orders"] == before["note-big-vip-orders"]
    assert after["note-big-paid-orders"] != before["note-big-paid-orders"]
    assert [(r["name"], r["uses"]) for r in changed.json()["recompiled"]] == [
        ("note-big-paid-orders", ["big-paid-order"])
    ]
    assert "5000" in _rule_spec(store, "note-big-paid-orders").spec_json


def test_a_change_that_breaks_a_stored_rule_stores_nothing(api: Api, store: RuleStore) -> None:
    etag = create_template(api, NOTIFICATION).headers["ETag"]
    ed = api.as_("ed")
    assert ed.post("/rules", json=using_rule_body("tell-vip-account-managers")).status_code == 201
    slack_only = template_body(NOTIFICATION)
    slack_only["channels"] = {"slack": slack_only["channels"]["slack"]}
    del slack_only["default"]
    dry = ed.post(f"{NOTIFICATION}/validate", json=slack_only).json()
    assert dry["valid"] is False and dry["errors"] == []
    [broken] = dry["broken_rules"]
    assert broken["name"] == "tell-vip-account-managers" and broken["uses"] == ["vip-order"]
    assert [(e["path"], e["code"]) for e in broken["errors"]] == [("actions[0].template", "template_channel")]
    refused = ed.put(f"{NOTIFICATION}/vip-order", json=slack_only, headers={"If-Match": etag})
    assert refused.status_code == 409
    assert "tell-vip-account-managers" in refused.json()["detail"]
    [issue] = refused.json()["errors"]
    assert issue["path"] == "actions[0].template" and "tell-vip-account-managers" in issue["message"]
    assert store.get(organization="acme", kind="notification_template", name="vip-order").version == 1
    assert _rule_spec(store, "tell-vip-account-managers").version == 1


def test_a_template_in_use_cannot_be_deleted(api: Api, store: RuleStore) -> None:
    etag = create_template(api, NOTIFICATION).headers["ETag"]
    ed = api.as_("ed")
    rule = ed.post("/rules", json=using_rule_body("tell-vip-account-managers"))
    refused = ed.delete(f"{NOTIFICATION}/vip-order", headers={"If-Match": etag})
    assert refused.status_code == 409 and "rule 'tell-vip-account-managers'" in refused.json()["detail"]
    purge = api.as_("ada").delete(f"{NOTIFICATION}/vip-order?hard=true", headers={"If-Match": etag})
    assert purge.status_code == 409
    assert (
        ed.delete("/rules/tell-vip-account-managers", headers={"If-Match": rule.headers["ETag"]}).status_code
        == 204
    )
    assert ed.delete(f"{NOTIFICATION}/vip-order", headers={"If-Match": etag}).status_code == 204

    big = create_template(api, CONDITION).headers["ETag"]
    wrapper = {"name": "big-paid-order", "condition": {"use": "big-order"}}
    assert ed.post(CONDITION, json=wrapper).status_code == 201
    used = ed.delete(f"{CONDITION}/big-order", headers={"If-Match": big})
    assert used.status_code == 409 and "condition template 'big-paid-order'" in used.json()["detail"]
    assert store.get(organization="acme", kind="condition_template", name="big-order").version == 1


def test_the_template_and_its_recompiled_rules_are_written_in_one_transaction(store: RuleStore) -> None:
    """A stale rule in the batch rolls back the template written before it."""
    from rule_engine.api import definition_ops

    compiled = definition_ops.compile_for(
        store, "acme", {**template_body(NOTIFICATION), "organization": "acme"}
    )
    rule = definition_ops.compile_for(
        store,
        "acme",
        {**using_rule_body("tell-vip-account-managers"), "organization": "acme"},
        overrides={"notification_template": {"vip-order": compiled.definition}},
    )
    store.apply(rule.write("setup"))
    writes: list[tuple[Any, Any]] = [(None, compiled.write("ed")), ((7, True), rule.write("ed"))]
    with pytest.raises(StaleWriteError):
        store.apply_all(writes)
    with pytest.raises(NotFoundError):
        store.get(organization="acme", kind="notification_template", name="vip-order")
    [result] = store.apply_all(writes[:1])
    assert result.status == "created"


def test_a_template_change_recompiles_its_rules_on_postgres(
    postgres_url: str, issue_token: Callable[[str], str]
) -> None:
    from fastapi.testclient import TestClient
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
    headers = {"Authorization": f"Bearer {issue_token('ed')}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        created = client.post(f"/api/v1{NOTIFICATION}", json=template_body(NOTIFICATION), headers=headers)
        assert created.status_code == 201, created.text
        rule = client.post(
            "/api/v1/rules", json=using_rule_body("tell-vip-account-managers"), headers=headers
        )
        assert rule.status_code == 201, rule.text
        changed = client.patch(
            f"/api/v1{NOTIFICATION}/vip-order",
            json={"default": {"subject": "VIP order", "body": "changed"}},
            headers={**headers, "If-Match": created.headers["ETag"]},
        )
        assert changed.status_code == 200, changed.text
        assert [r["name"] for r in changed.json()["recompiled"]] == ["tell-vip-account-managers"]
    rule_row = store.get(organization="acme", kind="rule", name="tell-vip-account-managers")
    assert rule_row.version == 2 and rule_row.spec_hash == changed.json()["recompiled"][0]["spec_hash"]
    assert [(e.kind, e.action, e.actor) for e in store.audit_entries(organization="acme")][:2] == [
        ("rule", "update", "ed"),
        ("notification_template", "update", "ed"),
    ]
    store.close()
