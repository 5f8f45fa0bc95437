"""Deny by default: anonymous requests get 401 on every route; roles and organizations come from
memberships (viewer reads, editor writes, admin does everything); other organizations answer 404."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rule_compiler.store import RuleStore
from tests.api.conftest import Api, create, rule_body


def _every_route(app: FastAPI) -> list[tuple[str, str]]:
    calls = []
    for route in app.routes:
        assert isinstance(route, APIRoute), f"{route} is not an APIRoute: app-level dependencies skip it"
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        calls += [(method, path) for method in sorted(route.methods)]
    return calls


def test_every_route_answers_401_without_a_token(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    calls = _every_route(app)
    assert ("GET", "/openapi.json") in calls and ("GET", "/docs") in calls
    assert len(calls) >= 20
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in calls:
            response = client.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)


def test_a_forged_token_is_refused(
    make_app: Callable[..., FastAPI], issue_token: Callable[[str], str]
) -> None:
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/rules", headers={"Authorization": "Bearer not.a.jwt"})
        assert response.status_code == 403
        assert client.get("/openapi.json", cookies={"_token": "forged"}).status_code == 403


def test_docs_and_schema_are_served_to_signed_in_users(api: Api) -> None:
    schema = api.as_("nomad").get("/openapi.json")
    assert schema.status_code == 200
    operations = {op["operationId"] for path in schema.json()["paths"].values() for op in path.values()}
    assert {"rules-create_rule", "rules-list_rules", "logs-list_logs", "health-read_health"} <= operations
    docs = api.as_("nomad").get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


# (user, method, path, expected status) for acme's rule "flag-big-paid-orders", created by ed.
MATRIX = [
    ("vera", "GET", "/rules", 200),
    ("vera", "GET", "/rules/flag-big-paid-orders", 200),
    ("vera", "POST", "/rules/validate", 200),
    ("vera", "POST", "/rules", 403),
    ("vera", "PUT", "/rules/flag-big-paid-orders", 403),
    ("vera", "DELETE", "/rules/flag-big-paid-orders", 403),
    ("vera", "GET", "/memberships", 403),
    ("vera", "GET", "/logs", 200),
    ("vera", "GET", "/analytics", 200),
    ("vera", "GET", "/analytics/rules/flag-big-paid-orders", 200),
    ("vera", "GET", "/analytics/webhooks", 200),
    ("vera", "GET", "/analytics/reports", 200),
    ("vera", "GET", "/analytics/triggers", 200),
    ("vera", "GET", "/definitions", 200),
    ("vera", "GET", "/rules/flag-big-paid-orders/versions/1", 200),
    ("vera", "GET", "/audit", 403),
    ("ed", "GET", "/audit", 403),
    ("ada", "GET", "/audit", 200),
    ("vera", "GET", "/me/inbox", 200),
    ("vera", "GET", "/me/preferences", 200),
    ("vera", "GET", "/notifications/deliveries", 403),
    ("ed", "GET", "/notifications/deliveries", 200),
    ("vera", "POST", f"/notifications/deliveries/{'0' * 64}/redeliver", 403),
    ("ed", "POST", f"/notifications/deliveries/{'0' * 64}/redeliver", 404),
    ("vera", "GET", "/webhooks/deliveries", 403),
    ("ed", "GET", "/webhooks/deliveries", 200),
    ("vera", "POST", "/rules/flag-big-paid-orders/runs/manual__1/cancel", 403),
    ("vera", "POST", "/rules/flag-big-paid-orders/runs/manual__1/rerun", 403),
    ("ed", "POST", "/rules/flag-big-paid-orders/runs/manual__1/rerun", 404),  # not in the automation log
    ("ed", "PUT", "/rules/flag-big-paid-orders", 200),
    ("ed", "POST", "/rules", 201),
    ("ed", "DELETE", "/rules/flag-big-paid-orders", 204),
    ("ed", "DELETE", "/rules/flag-big-paid-orders?hard=true", 403),
    ("ed", "GET", "/memberships", 403),
    ("ada", "PUT", "/rules/flag-big-paid-orders", 200),
    ("ada", "DELETE", "/rules/flag-big-paid-orders?hard=true", 204),
    ("ada", "GET", "/memberships", 200),
    # another organization's admin and editor: acme's rule does not exist for them
    ("gus", "GET", "/rules/flag-big-paid-orders", 404),
    ("gus", "PUT", "/rules/flag-big-paid-orders", 404),
    ("gus", "DELETE", "/rules/flag-big-paid-orders?hard=true", 404),
    ("gus", "POST", "/rules/flag-big-paid-orders/runs/manual__1/cancel", 404),
    ("gina", "GET", "/rules/flag-big-paid-orders/versions", 404),
    ("gina", "POST", "/rules", 201),  # creates globex's own rule of that name
    ("gus", "GET", "/rules?organization=acme", 404),
    ("gus", "GET", "/analytics?organization=acme", 404),
    ("gus", "GET", "/definitions?organization=acme", 404),
    ("gus", "GET", "/audit?organization=acme", 404),
    ("gus", "GET", "/webhooks/deliveries?organization=acme", 404),
    # no membership at all
    ("nomad", "GET", "/rules", 403),
    ("nomad", "GET", "/rules/flag-big-paid-orders", 403),
    ("nomad", "GET", "/analytics", 403),
    ("nomad", "GET", "/analytics/webhooks", 403),
    ("nomad", "GET", "/analytics/reports", 403),
    ("nomad", "GET", "/analytics/triggers", 403),
    ("nomad", "GET", "/definitions", 403),
    ("nomad", "GET", "/rules/flag-big-paid-orders/versions/1", 403),
    ("nomad", "GET", "/me/inbox", 403),
    ("nomad", "GET", "/me", 200),
    # a platform admin names the organization
    ("root", "GET", "/rules", 400),
    ("root", "GET", "/analytics?organization=acme", 200),
    ("root", "GET", "/audit", 200),
    ("root", "GET", "/rules/flag-big-paid-orders?organization=acme", 200),
    ("root", "DELETE", "/rules/flag-big-paid-orders?organization=acme&hard=true", 204),
]


@pytest.mark.parametrize(("user", "method", "path", "expected"), MATRIX)
def test_role_and_organization_matrix(api: Api, user: str, method: str, path: str, expected: int) -> None:
    etag = create(api).headers["ETag"]
    body = rule_body(description="changed") if method in {"PUT", "POST"} else None
    if method == "POST" and path == "/rules" and user == "ed":
        body = rule_body("archive-void-orders")
    response = api.as_(user).request(method, path, json=body, headers={"If-Match": etag})
    assert response.status_code == expected, response.text


def test_other_organizations_rules_are_invisible_in_listings(api: Api) -> None:
    create(api)
    create(api, "archive-void-orders", user="gina")
    assert [r["name"] for r in api.as_("gus").get("/rules").json()["items"]] == ["archive-void-orders"]
    assert [r["organization"] for r in api.as_("vera").get("/rules").json()["items"]] == ["acme"]


def test_several_memberships_choose_with_the_organization_parameter(api: Api, store: RuleStore) -> None:
    store.put_membership(organization="globex", username="ed", role="viewer", actor="setup")
    create(api, user="ada")
    ed = api.as_("ed")
    ambiguous = ed.get("/rules")
    assert ambiguous.status_code == 400 and "acme, globex" in ambiguous.json()["detail"]
    assert ed.get("/rules?organization=acme").json()["total"] == 1
    assert ed.get("/rules?organization=globex").json()["total"] == 0
    as_viewer = ed.post("/rules?organization=globex", json=rule_body())
    assert as_viewer.status_code == 403


def test_me_lists_memberships(api: Api) -> None:
    me = api.as_("ed").get("/me").json()
    assert me["username"] == "ed" and me["platform_admin"] is False
    assert [(m["organization"], m["role"]) for m in me["memberships"]] == [("acme", "editor")]
    assert api.as_("root").get("/me").json()["platform_admin"] is True
