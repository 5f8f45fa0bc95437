"""``/memberships``: admins manage their organization's members; every change is audited."""

from __future__ import annotations

from rule_compiler.store import RuleStore
from tests.api.conftest import Api


def test_admin_lists_only_their_organization(api: Api) -> None:
    members = api.as_("ada").get("/memberships").json()
    assert [(m["username"], m["role"]) for m in members] == [
        ("ada", "admin"),
        ("ed", "editor"),
        ("vera", "viewer"),
    ]


def test_admin_adds_changes_and_removes_a_member_with_audit_rows(api: Api, store: RuleStore) -> None:
    ada = api.as_("ada")
    added = ada.put("/memberships/zoe", json={"role": "viewer"})
    assert added.status_code == 201 and added.json()["updated_by"] == "ada"
    assert api.as_("zoe").get("/rules").status_code == 200
    assert ada.put("/memberships/zoe", json={"role": "editor"}).status_code == 200
    assert ada.delete("/memberships/zoe").status_code == 204
    assert api.as_("zoe").get("/rules").status_code == 403
    assert ada.delete("/memberships/zoe").status_code == 404
    entries = [
        (e.action, e.actor, e.detail) for e in store.audit_entries(organization="acme", kind="membership")
    ]
    assert entries[:3] == [
        ("delete", "ada", {"role_before": "editor"}),
        ("update", "ada", {"role_before": "viewer", "role_after": "editor"}),
        ("create", "ada", {"role_before": None, "role_after": "viewer"}),
    ]


def test_the_last_admin_cannot_leave_but_a_platform_admin_can_remove_them(api: Api, store: RuleStore) -> None:
    assert api.as_("ada").put("/memberships/ada", json={"role": "viewer"}).status_code == 409
    assert api.as_("ada").delete("/memberships/ada").status_code == 409
    assert api.as_("root").delete("/memberships/ada?organization=acme").status_code == 204
    assert store.get_membership("acme", "ada") is None


def test_platform_admin_bootstraps_a_new_organization(api: Api, store: RuleStore) -> None:
    response = api.as_("root").put("/memberships/nomad?organization=initech", json={"role": "admin"})
    assert response.status_code == 201
    assert api.as_("nomad").get("/memberships").json()[0]["organization"] == "initech"


def test_bad_roles_and_unknown_fields_are_422(api: Api) -> None:
    ada = api.as_("ada")
    wrong = ada.put("/memberships/zoe", json={"role": "owner"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["path"] == "role"
    extra = ada.put("/memberships/zoe", json={"role": "viewer", "organization": "globex"})
    assert extra.status_code == 422 and extra.json()["errors"][0]["path"] == "organization"
