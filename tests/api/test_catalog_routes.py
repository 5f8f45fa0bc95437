"""``/catalog`` through the real app: read with allow-lists, versions, replace with JSON-path errors and
If-Match, sync a real SQLite application database through its Airflow connection, audit rows, the
connection allow-list reserved to platform admins, and the auth matrix."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.store import RuleStore
from tests.api.conftest import Api, catalog_for, create
from tests.conftest import ROOT


def _demo_db(path: Path, monkeypatch: pytest.MonkeyPatch, conn_id: str = "app_db") -> sa.Engine:
    """The demo application database (customers, orders) behind Airflow connection ``conn_id``."""
    spec = importlib.util.spec_from_file_location(
        "create_demo_db", ROOT / "include" / "demo" / "create_demo_db.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = sa.create_engine(f"sqlite:///{path}")
    module.create_demo_db(engine, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return engine


def _paths(response: Any) -> list[str]:
    return [e["path"] for e in response.json()["errors"]]


def test_read_the_catalog_with_its_allow_lists(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "Hooks.Example.internal, 10.0.0.5")
    response = api.as_("ada").get("/catalog")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["organization"], body["version"], body["updated_by"]) == ("acme", 1, "setup")
    assert response.headers["ETag"] == body["etag"] == f'"{body["catalog_hash"]}"'
    assert body["catalog"] == Catalog.model_validate(catalog_for("acme")).model_dump(mode="json")
    assert body["allow_lists"] == {
        "connections": {
            "database": ["app_db", "warehouse"],
            "http": ["crm_api"],
            "slack": ["slack_oncall"],
            "smtp": ["smtp_default"],
        },
        "webhook_hosts": ["10.0.0.5", "hooks.example.internal"],
    }


def test_replace_stores_a_version_with_an_audit_row_and_keeps_history(api: Api, store: RuleStore) -> None:
    ada = api.as_("ada")
    current = ada.get("/catalog")
    catalog = current.json()["catalog"]
    catalog["connections"]["app_db"]["tables"]["orders"]["columns"]["shipped_at"] = {"type": "timestamp"}
    del catalog["organization"]  # optional: it is always the caller's
    written = ada.put("/catalog", json=catalog, headers={"If-Match": current.headers["ETag"]})
    assert written.status_code == 200, written.text
    body = written.json()
    assert (body["version"], body["changed"], body["updated_by"], body["invalid_rules"]) == (
        2,
        True,
        "ada",
        [],
    )
    assert written.headers["ETag"] == body["etag"] != current.headers["ETag"]
    assert (
        "shipped_at"
        in ada.get("/catalog").json()["catalog"]["connections"]["app_db"]["tables"]["orders"]["columns"]
    )
    [entry, *_] = store.audit_entries(organization="acme", kind="catalog")
    assert (entry.action, entry.actor, entry.version, entry.detail) == ("catalog", "ada", 2, {"via": "api"})

    again = ada.put("/catalog", json=catalog)
    assert again.status_code == 200 and (again.json()["version"], again.json()["changed"]) == (2, False)
    versions = ada.get("/catalog/versions").json()
    assert [(v["version"], v["actor"]) for v in versions] == [(2, "ada"), (1, "setup")]
    assert ada.get("/catalog/versions", params={"limit": 1}).json()[0]["version"] == 2


def test_a_stale_if_match_is_refused(api: Api) -> None:
    ada = api.as_("ada")
    catalog = ada.get("/catalog").json()["catalog"]
    stale = ada.put("/catalog", json=catalog, headers={"If-Match": '"not-the-current-hash"'})
    assert stale.status_code == 412
    assert ada.get("/catalog").json()["version"] == 1


def test_invalid_catalogs_answer_422_with_every_problem_at_its_json_path(api: Api, store: RuleStore) -> None:
    catalog = catalog_for("acme")
    orders = catalog["connections"]["app_db"]["tables"]["orders"]
    orders["columns"]["total"]["type"] = "money"
    orders["colour"] = "red"
    shape = api.as_("ada").put("/catalog", json=catalog)
    assert shape.status_code == 422
    assert sorted(_paths(shape)) == [
        "connections.app_db.tables.orders.colour",
        "connections.app_db.tables.orders.columns.total.type",
    ]

    catalog = catalog_for("acme")
    orders = catalog["connections"]["app_db"]["tables"]["orders"]
    orders["soft_delete_column"] = "archived"
    orders["foreign_keys"].append({"name": "status", "column": "buyer_id", "references_table": "customers"})
    orders["unique_keys"] = [["id", "nope"]]
    catalog["connections"]["crm_api"]["tables"] = catalog_for("acme")["connections"]["app_db"]["tables"]
    meaning = api.as_("ada").put("/catalog", json={**catalog, "organization": "globex"})
    assert meaning.status_code == 422
    assert sorted(_paths(meaning)) == [
        "connections.app_db.tables.orders.foreign_keys[1].column",
        "connections.app_db.tables.orders.foreign_keys[1].name",
        "connections.app_db.tables.orders.soft_delete_column",
        "connections.app_db.tables.orders.unique_keys[0]",
        "connections.crm_api.tables",
        "organization",
    ]
    assert store.catalog_version("acme") == 1
    not_catalogs: list[Any] = [[], {"organization": "acme", "connections": []}]
    for body in not_catalogs:
        assert api.as_("ada").put("/catalog", json=body).status_code == 422


def test_removing_a_column_a_rule_uses_lists_the_rule(api: Api) -> None:
    create(api)  # flag-big-paid-orders sets orders.priority
    catalog = catalog_for("acme")
    del catalog["connections"]["app_db"]["tables"]["orders"]["columns"]["priority"]
    response = api.as_("ada").put("/catalog", json=catalog)
    assert response.status_code == 200, response.text
    [broken] = response.json()["invalid_rules"]
    assert (broken["name"], broken["dag_id"], broken["active"]) == (
        "flag-big-paid-orders",
        "rule__acme__flag-big-paid-orders",
        True,
    )
    assert [e["path"] for e in broken["errors"]] == ["actions[0].values"]
    assert "priority" in broken["errors"][0]["message"]


def test_connections_are_added_by_platform_admins_only(api: Api, store: RuleStore) -> None:
    catalog = catalog_for("acme")
    catalog["connections"]["billing_db"] = {"kind": "database"}
    refused = api.as_("ada").put("/catalog", json=catalog)
    assert refused.status_code == 403 and "billing_db" in refused.json()["detail"]
    retyped = catalog_for("acme")
    retyped["connections"]["crm_api"]["kind"] = "database"
    assert api.as_("ada").put("/catalog", json=retyped).status_code == 403
    assert store.catalog_version("acme") == 1
    added = api.as_("root").put("/catalog?organization=acme", json=catalog)
    assert added.status_code == 200 and added.json()["allow_lists"]["connections"]["database"] == [
        "app_db",
        "billing_db",
        "warehouse",
    ]
    removed = catalog_for("acme")
    del removed["connections"]["warehouse"]
    assert api.as_("ada").put("/catalog", json=removed).status_code == 200  # narrowing is the org's call


def test_storage_locations_are_set_by_platform_admins_only(api: Api, store: RuleStore) -> None:
    catalog = catalog_for("acme")
    catalog["connections"]["reports_bucket"] = {"kind": "storage", "locations": ["s3://acme-reports/"]}
    assert api.as_("root").put("/catalog?organization=acme", json=catalog).status_code == 200
    version = store.catalog_version("acme")
    widened = catalog_for("acme")
    widened["connections"]["reports_bucket"] = {
        "kind": "storage",
        "locations": ["s3://acme-reports/", "file:///etc/"],
    }
    refused = api.as_("ada").put("/catalog", json=widened)
    assert refused.status_code == 403
    assert "locations of reports_bucket" in refused.json()["detail"]
    assert store.catalog_version("acme") == version
    assert api.as_("root").put("/catalog?organization=acme", json=widened).status_code == 200


def test_sync_reflects_the_database_dry_run_first(
    api: Api, store: RuleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _demo_db(tmp_path / "app.db", monkeypatch)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE orders ADD COLUMN shipped_at TIMESTAMP")
    ada = api.as_("ada")
    dry = ada.post("/catalog/sync", json={"connection": "app_db", "dry_run": True})
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert preview["tables_reflected"] == ["customers", "orders"]  # the tables the catalog lists
    assert "+ column shipped_at (timestamp)" in preview["table_changes"]["orders"]
    assert "~ orders: + column shipped_at (timestamp)" in preview["changes"]
    assert "orders: kept soft_delete_column 'deleted'" in preview["notes"]  # an admin choice survives
    assert (preview["changed"], preview["stored"], preview["version"]) == (True, False, 1)
    assert store.catalog_version("acme") == 1

    synced = ada.post("/catalog/sync", json={"connection": "app_db"})
    assert synced.status_code == 200, synced.text
    assert (synced.json()["stored"], synced.json()["version"]) == (True, 2)
    assert synced.headers["ETag"] == ada.get("/catalog").headers["ETag"]
    columns = ada.get("/catalog").json()["catalog"]["connections"]["app_db"]["tables"]["orders"]["columns"]
    assert columns["shipped_at"] == {"type": "timestamp", "nullable": True, "primary_key": False}
    [entry, *_] = store.audit_entries(organization="acme", kind="catalog")
    assert (entry.actor, entry.version) == ("ada", 2)
    assert entry.detail == {"via": "sync", "connection": "app_db", "tables": ["customers", "orders"]}

    unchanged = ada.post("/catalog/sync", json={"connection": "app_db"}).json()
    assert (unchanged["changed"], unchanged["stored"], unchanged["version"]) == (False, False, 2)


def test_sync_refusals(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _demo_db(tmp_path / "app.db", monkeypatch)
    _demo_db(tmp_path / "other.db", monkeypatch, conn_id="other_db")
    ada = api.as_("ada")
    not_listed = ada.post("/catalog/sync", json={"connection": "other_db"})
    assert not_listed.status_code == 403 and "platform administrator" in not_listed.json()["detail"]
    assert ada.post("/catalog/sync", json={"connection": "crm_api"}).status_code == 409  # an http connection
    undefined = ada.post("/catalog/sync", json={"connection": "warehouse"})  # listed, not in Airflow
    assert undefined.status_code == 503 and "not defined in Airflow" in undefined.json()["detail"]
    missing = ada.post("/catalog/sync", json={"connection": "app_db", "tables": ["orders", "invoices"]})
    assert missing.status_code == 422 and _paths(missing) == ["tables"]
    assert "invoices" in missing.json()["errors"][0]["message"]
    for body in (
        {},
        {"connection": "app-db"},
        {"connection": "app_db", "tables": []},
        {"connection": "app_db", "x": 1},
    ):
        assert ada.post("/catalog/sync", json=body).status_code == 422, body

    added = api.as_("root").post("/catalog/sync?organization=acme", json={"connection": "other_db"})
    assert added.status_code == 200, added.text
    assert added.json()["added_connection"] is True and added.json()["changes"][0] == "+ connection other_db"


def test_sync_of_an_unreachable_database_answers_503(
    api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "nobody", "schema": "x"}
        ),
    )
    response = api.as_("ada").post("/catalog/sync", json={"connection": "warehouse"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "127.0.0.1" not in response.text  # no connection details in the answer
    assert store.catalog_version("acme") == 1


def test_sync_of_a_connection_airflow_does_not_have_answers_503_naming_it(
    api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE", raising=False)
    response = api.as_("ada").post("/catalog/sync", json={"connection": "warehouse"})
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == (
        "connection 'warehouse' is not defined in Airflow; ask the platform administrators"
    )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "http", "host": "example.com"}))
    response = api.as_("ada").post("/catalog/sync", json={"connection": "warehouse"})
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == (
        "connection 'warehouse' cannot be used: it is a 'http' connection, not a SQL database; "
        "ask the platform administrators"
    )
    assert store.catalog_version("acme") == 1


CATALOG_CALLS = [
    ("GET", "/catalog", None),
    ("GET", "/catalog/versions", None),
    ("PUT", "/catalog", catalog_for("acme")),
    ("POST", "/catalog/sync", {"connection": "app_db", "dry_run": True}),
]


@pytest.mark.parametrize(
    ("user", "expected"),
    [(None, 401), ("nomad", 403), ("vera", 403), ("ed", 403), ("ada", 200), ("root", 400)],
)
def test_catalog_auth_matrix(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str | None, expected: int
) -> None:
    _demo_db(tmp_path / "app.db", monkeypatch)
    for method, path, body in CATALOG_CALLS:
        response = api.as_(user).request(method, path, json=body)
        assert response.status_code == expected, (method, path, response.text)


def test_other_organizations_see_their_own_catalog_only(api: Api) -> None:
    assert api.as_("gus").get("/catalog").json()["organization"] == "globex"
    assert api.as_("gus").get("/catalog?organization=acme").status_code == 404
    acme_catalog = catalog_for("acme")
    assert api.as_("gus").put("/catalog?organization=acme", json=acme_catalog).status_code == 404
    written = api.as_("gus").put("/catalog", json={**acme_catalog, "organization": None})
    assert written.status_code == 200 and written.json()["organization"] == "globex"


def test_an_organization_without_a_catalog(api: Api, store: RuleStore) -> None:
    store.put_membership(organization="initech", username="ivy", role="admin", actor="setup")
    assert api.as_("ivy").get("/catalog").status_code == 404
    assert api.as_("ivy").get("/catalog/versions").json() == []
    first = api.as_("ivy").put("/catalog", json={"connections": {"app_db": {"kind": "database"}}})
    assert first.status_code == 403  # its connections come from a platform admin
    created = api.as_("root").put("/catalog?organization=initech", json={"connections": {}})
    assert created.status_code == 200 and created.json()["version"] == 1


def test_every_member_reads_the_names_definitions_may_use(api: Api) -> None:
    """``GET /catalog/names``: the pickers' data, for viewers too; no allow-lists, no other organization."""
    answer = api.as_("vera").get("/catalog/names")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["organization"], body["version"]) == ("acme", 1)
    kinds = {c["name"]: c["kind"] for c in body["connections"]}
    assert kinds == {
        "app_db": "database",
        "crm_api": "http",
        "slack_oncall": "slack",
        "smtp_default": "smtp",
        "warehouse": "database",
    }
    app_db = next(c for c in body["connections"] if c["name"] == "app_db")
    orders = next(t for t in app_db["tables"] if t["name"] == "orders")
    assert orders["writable"] is True
    assert {"path": "total", "type": "numeric"} in orders["columns"]
    assert {"path": "customer__tier", "type": "text"} in orders["fields"]
    assert not any("__" in c["path"] for c in orders["columns"])
    assert "allow_lists" not in body and "webhook_hosts" not in answer.text
    assert api.as_("gus").get("/catalog/names").json()["organization"] == "globex"
    assert api.as_("gus").get("/catalog/names?organization=acme").status_code == 404


@pytest.mark.parametrize(("user", "expected"), [(None, 401), ("nomad", 403), ("ed", 200), ("root", 400)])
def test_catalog_names_auth(api: Api, user: str | None, expected: int) -> None:
    assert api.as_(user).get("/catalog/names").status_code == expected
