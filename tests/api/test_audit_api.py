"""``GET /audit`` through the real app: organization admins read their organization's changes with
each change's diff, platform admins every organization's; filters and paging; no one else."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, create, rule_body

RULE = "flag-big-paid-orders"


@pytest.fixture
def changes(api: Api) -> None:
    etag = create(api).headers["ETag"]  # ed: create, version 1
    updated = api.as_("ed").put(
        f"/rules/{RULE}", json=rule_body(description="changed"), headers={"If-Match": etag}
    )
    assert updated.status_code == 200, updated.text  # ed: update, version 2
    assert api.as_("ada").put("/memberships/newbie", json={"role": "viewer"}).status_code == 201
    create(api, "archive-void-orders", user="gina")  # globex


def _audit(api: Api, user: str, **params: Any) -> Any:
    answer = api.as_(user).get("/audit", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_admin_reads_the_changes_of_their_organization_with_diffs(api: Api, changes: None) -> None:
    items = [i for i in _audit(api, "ada")["items"] if i["actor"] != "setup"]  # not the fixtures' own
    assert [(i["actor"], i["action"], i["kind"], i["name"]) for i in items] == [
        ("ada", "create", "membership", "newbie"),
        ("ed", "update", "rule", RULE),
        ("ed", "create", "rule", RULE),
    ]
    membership, update, created = items
    assert membership["diff"] == [{"path": "role", "op": "added", "before": None, "after": "viewer"}]
    assert update["version"] == 2
    assert update["diff"] == [
        {"path": "description", "op": "changed", "before": rule_body()["description"], "after": "changed"}
    ]
    assert {change["op"] for change in created["diff"]} == {"added"}
    assert {change["path"] for change in created["diff"]} >= {"name", "trigger", "actions"}


def test_filters_and_pages(api: Api, changes: None) -> None:
    assert [i["action"] for i in _audit(api, "ada", actor="ed")["items"]] == ["update", "create"]
    assert [i["name"] for i in _audit(api, "ada", kind="membership", actor="ada")["items"]] == ["newbie"]
    assert [i["version"] for i in _audit(api, "ada", name=RULE, action="update")["items"]] == [2]
    assert _audit(api, "ada", since="2999-01-01T00:00:00Z")["items"] == []
    assert len(_audit(api, "ada", until="2999-01-01T00:00:00Z", kind="rule")["items"]) == 2
    catalog = _audit(api, "ada", kind="catalog")["items"]  # the fixtures' catalog, as its first version
    assert [(i["action"], i["version"], i["actor"]) for i in catalog] == [("catalog", 1, "setup")]
    assert {c["op"] for c in catalog[0]["diff"]} == {"added"}
    first = _audit(api, "ada", limit=2, kind="membership")
    second = _audit(api, "ada", limit=2, offset=2, kind="membership")
    assert (len(first["items"]), first["has_more"]) == (2, True)
    assert (len(second["items"]), second["has_more"]) == (2, False)  # newbie, then the fixtures' three
    bad = api.as_("ada").get(
        "/audit", params={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
    )
    assert bad.status_code == 422


def test_who_may_read_which_audit(api: Api, changes: None) -> None:
    assert api.as_("vera").get("/audit").status_code == 403
    assert api.as_("ed").get("/audit").status_code == 403
    assert api.as_("nomad").get("/audit").status_code == 403
    assert api.as_(None).get("/audit").status_code == 401
    assert {i["organization"] for i in _audit(api, "gus")["items"]} == {"globex"}
    assert api.as_("gus").get("/audit", params={"organization": "acme"}).status_code == 404
    everything = _audit(api, "root")["items"]  # a platform admin: every organization
    assert {i["organization"] for i in everything} == {"acme", "globex"}
    assert {i["organization"] for i in _audit(api, "root", organization="acme")["items"]} == {"acme"}


def test_activation_and_hard_delete_diffs(api: Api, changes: None) -> None:
    etag = api.as_("ed").get(f"/rules/{RULE}").headers["ETag"]
    deleted = api.as_("ada").delete(f"/rules/{RULE}", params={"hard": "true"}, headers={"If-Match": etag})
    assert deleted.status_code == 204, deleted.text
    items = _audit(api, "ada", name=RULE)["items"]
    assert items[0]["action"] == "delete" and items[0]["diff"][0]["op"] == "removed"
    # the versions are gone with the rule: the earlier entries keep their hashes, not their diffs
    assert [i["diff"] for i in items[1:]] == [None, None]
    assert all(i["hash_after"] for i in items[1:])
