"""Rule and workflow templates through the real app: CRUD from the resource router, a rule written with
``use`` (listed with its template's trigger type), and its recompilation (or protection) when the
template changes."""

from __future__ import annotations

from typing import Any

import pytest

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore
from tests.api.conftest import Api
from tests.conftest import ROOT

RULE_TEMPLATES, WORKFLOW_TEMPLATES = "/rule-templates", "/workflow-templates"
EXAMPLES = {
    RULE_TEMPLATES: ROOT / "include" / "rule-templates" / "notify-on-status.yaml",
    WORKFLOW_TEMPLATES: ROOT / "include" / "templates" / "follow-up-status.yaml",
}
USING = ROOT / "include" / "rules-using-templates" / "deprioritise-shipped-orders.yaml"


def _body(path: Any, **changes: Any) -> dict[str, Any]:
    data = read_definition_file(path)
    data.pop("organization")
    return {**data, **changes}


@pytest.mark.parametrize("route", [RULE_TEMPLATES, WORKFLOW_TEMPLATES])
def test_create_read_list_patch_versions_diff_restore_and_delete(api: Api, route: str) -> None:
    ed = api.as_("ed")
    body = _body(EXAMPLES[route])
    name, kind = body["name"], body["kind"]
    created = ed.post(route, json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["version"], created.json()["used_by"]["rules"]) == (
        kind,
        1,
        [],
    )
    assert ed.post(route, json=body).status_code == 409
    listed = ed.get(route).json()
    assert [(item["name"], item["kind"]) for item in listed["items"]] == [(name, kind)]
    patched = ed.patch(
        f"{route}/{name}", json={"description": "changed"}, headers={"If-Match": created.headers["ETag"]}
    )
    assert patched.status_code == 200, patched.text
    assert ed.get(f"{route}/{name}").json()["definition"]["description"] == "changed"
    assert [v["version"] for v in ed.get(f"{route}/{name}/versions").json()] == [1, 2]
    changes = ed.get(f"{route}/{name}/versions/1/diff/2").json()["changes"]
    assert [c["path"] for c in changes] == ["description"]
    restored = ed.post(f"{route}/{name}/versions/1/restore", headers={"If-Match": patched.headers["ETag"]})
    assert restored.status_code == 200, restored.text
    assert (
        restored.json()["version"] == 3
        and restored.json()["definition"]["description"] == body["description"]
    )
    bad = ed.post(f"{route}/validate", json={**body, "parameters": {}})
    assert bad.json()["valid"] is False and "unknown_parameter" in {e["code"] for e in bad.json()["errors"]}
    assert ed.get(f"{route}/{name}/spec").status_code == 404  # no DAG
    etag = ed.get(f"{route}/{name}").headers["ETag"]
    assert ed.delete(f"{route}/{name}", headers={"If-Match": etag}).status_code == 204
    assert ed.get(f"{route}/{name}").status_code == 404


def _spec(store: RuleStore, name: str) -> Any:
    return store.get(organization="acme", kind="rule", name=name)


def test_a_rule_using_a_template_is_listed_and_recompiled_with_it(api: Api, store: RuleStore) -> None:
    ed = api.as_("ed")
    template = ed.post(RULE_TEMPLATES, json=_body(EXAMPLES[RULE_TEMPLATES]))
    assert template.status_code == 201, template.text
    missing = ed.post("/rules", json=_body(USING, use="nope"))
    assert missing.status_code == 422 and [e["path"] for e in missing.json()["errors"]] == ["use"]
    rule = ed.post("/rules", json=_body(USING))
    assert rule.status_code == 201, rule.text
    assert rule.json()["definition"]["use"] == "notify-on-status"  # stored as written
    assert rule.json()["trigger_type"] == "event"  # from the expanded rule
    listed = ed.get("/rules", params={"trigger_type": "event"}).json()["items"]
    assert [(r["name"], r["trigger_type"]) for r in listed] == [("deprioritise-shipped-orders", "event")]
    used = ed.get(f"{RULE_TEMPLATES}/notify-on-status").json()
    assert used["used_by"]["rules"] == ["deprioritise-shipped-orders"]
    before = _spec(store, "deprioritise-shipped-orders")

    # a change its rule still fits: the rule is recompiled in the same write
    changed_body = _body(EXAMPLES[RULE_TEMPLATES])
    changed_body["body"]["actions"][0]["values"]["note"] = "changed by the template"
    preview = ed.post(f"{RULE_TEMPLATES}/validate", json=changed_body)
    assert preview.json()["recompiles"] == ["deprioritise-shipped-orders"]
    changed = ed.put(
        f"{RULE_TEMPLATES}/notify-on-status", json=changed_body, headers={"If-Match": used["etag"]}
    )
    assert changed.status_code == 200, changed.text
    assert [r["name"] for r in changed.json()["recompiled"]] == ["deprioritise-shipped-orders"]
    after = _spec(store, "deprioritise-shipped-orders")
    assert after.version == before.version + 1 and after.source == before.source
    assert "changed by the template" in after.spec_json and "changed by the template" not in before.spec_json

    # a change that breaks it is refused, and nothing is stored
    broken_body = _body(EXAMPLES[RULE_TEMPLATES])
    broken_body["body"]["trigger"]["table"] = "no_such_table"
    refused = ed.put(
        f"{RULE_TEMPLATES}/notify-on-status", json=broken_body, headers={"If-Match": changed.headers["ETag"]}
    )
    assert refused.status_code == 409, refused.text
    assert _spec(store, "deprioritise-shipped-orders").version == after.version
    # in use: not deleted
    gone = ed.delete(f"{RULE_TEMPLATES}/notify-on-status", headers={"If-Match": changed.headers["ETag"]})
    assert gone.status_code == 409 and "deprioritise-shipped-orders" in gone.text
