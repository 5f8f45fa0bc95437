"""`make run`'s admin gets an admin membership of acme (scripts/demo_admins.py, run by
scripts/setup-demo.sh), idempotently, so the demo calls the REST view without ``?organization=``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import ModuleType

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rule_compiler.store import RuleStore
from tests.api.conftest import rule_body
from tests.conftest import DEMO_CATALOG, ROOT


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_admins", ROOT / "scripts" / "demo_admins.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_airflow_admins_are_read_from_the_users_setting() -> None:
    script = _script()
    assert script.airflow_admins("admin:admin") == ["admin"]
    assert script.airflow_admins("admin:admin, bob:viewer,al:Admin,:admin,carl") == ["admin", "al"]


def test_the_demo_admin_becomes_an_admin_of_acme_once(
    store: RuleStore,
    monkeypatch: pytest.MonkeyPatch,
    make_app: Callable[..., FastAPI],
    issue_token: Callable[[str], str],
) -> None:
    monkeypatch.setenv("AUTOMATION_STORE_URL", str(store.engine.url))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer1:viewer")
    script = _script()
    store.put_membership(organization="acme", username="admin", role="viewer", actor="setup")
    for _ in range(3):  # raised to admin once, then nothing changes
        assert script.main([str(DEMO_CATALOG)]) == 0
    membership = store.get_membership("acme", "admin")
    assert membership is not None and membership.role == "admin"
    assert store.get_membership("acme", "viewer1") is None
    rows = store.audit_entries(organization="acme", kind="membership", name="admin")
    assert [(r.action, r.actor) for r in rows] == [("update", "setup-demo"), ("create", "setup")]

    # as `make run` configures it: admin is also a platform admin, and needs no ?organization=
    app = make_app(platform_admins=frozenset({"admin"}))
    with TestClient(app, raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {issue_token('admin')}"}
        assert client.get("/api/v1/rules", headers=auth).status_code == 200
        created = client.post("/api/v1/rules", json=rule_body(), headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["organization"] == "acme"
