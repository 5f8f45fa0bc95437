"""``POST /events`` through the real app: an application pushes a change into the outbox of the
connection's database (real SQLite file and real Postgres behind ``AIRFLOW_CONN_APP_DB``),
idempotent on its event id, limited to editors and to the connections and tables of their catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from rule_compiler.events import read_events
from rule_compiler.events.outbox_rows import NOTIFY_CHANNEL, outbox
from rule_compiler.store import RuleStore
from tests.api.conftest import Api

PAID: dict[str, Any] = {
    "id": "shop-1001",
    "connection": "app_db",
    "table": "orders",
    "operation": "updated",
    "old": {"id": 7, "status": "new", "total": 1500},
    "new": {"id": 7, "status": "paid", "total": 1500},
}


def _point_app_db_at(url: sa.URL, monkeypatch: pytest.MonkeyPatch) -> None:
    if url.get_backend_name() == "sqlite":
        connection: dict[str, Any] = {"conn_type": "sqlite", "host": url.database}
    else:
        connection = {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "schema": url.database,
        }
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps(connection))


@pytest.fixture
def app_db(any_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """An empty application database (SQLite file, then Postgres) behind the connection app_db."""
    url = sa.make_url(any_db_url)
    _point_app_db_at(url, monkeypatch)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]


def test_a_push_is_stored_once_and_a_replay_answers_the_stored_event(api: Api, app_db: sa.Engine) -> None:
    first = api.as_("ed").post("/events", json=PAID)
    assert first.status_code == 201, first.text
    event = first.json()
    assert event["client_id"] == "shop-1001" and event["connection"] == "app_db"
    assert event["key"] == {"id": 7}  # derived from `new` by the catalog's primary key
    assert event["changed_fields"] == ["status"]
    assert event["occurred_at"] is not None
    assert first.headers["Location"].endswith(f"/api/v1/events/app_db/{event['id']}")

    replay = api.as_("ada").post("/events", json=PAID)
    assert replay.status_code == 200, replay.text
    assert replay.json() == event
    [row] = _rows(app_db)
    assert str(row["id"]) == event["id"] and row["client_event_id"] == "shop-1001"
    assert (row["table_name"], row["operation"], row["key_json"]) == ("orders", "updated", {"id": 7})

    with app_db.connect() as conn:  # what event rules read: the shape trigger-captured events have
        [read] = read_events(conn, after_id=0)
    assert read.model_dump(exclude={"occurred_at"}) == {
        "id": event["id"],
        "connection": None,
        "table": "orders",
        "operation": "updated",
        "key": {"id": 7},
        "new": PAID["new"],
        "old": PAID["old"],
        "changed_fields": ["status"],
        "actor": "ed",  # the caller who pushed it, never the body (ADR 0013)
    }
    assert event["actor"] == "ed"
    assert api.as_("ed").get(f"/events/app_db/{event['id']}").json() == event


def test_the_same_id_with_another_change_is_409(api: Api, app_db: sa.Engine) -> None:
    assert api.as_("ed").post("/events", json=PAID).status_code == 201
    other = {**PAID, "new": {**PAID["new"], "status": "void"}}
    response = api.as_("ed").post("/events", json=other)
    assert response.status_code == 409
    assert "'shop-1001' was already used" in response.json()["detail"]
    assert len(_rows(app_db)) == 1
    elsewhere = {**PAID, "table": "customers", "operation": "created", "old": None, "new": {"id": 7}}
    assert api.as_("ed").post("/events", json=elsewhere).status_code == 201  # ids are per table


def test_keys_are_given_as_a_value_a_mapping_or_taken_from_the_row(api: Api, app_db: sa.Engine) -> None:
    ed = api.as_("ed")
    scalar = ed.post("/events", json={**PAID, "id": "a", "key": 7})
    deleted = {"connection": "app_db", "table": "orders", "operation": "deleted"}
    mapping = ed.post("/events", json={**deleted, "id": "b", "key": {"id": 8}})
    from_old = ed.post("/events", json={**deleted, "id": "c", "old": {"id": 9, "status": "void"}})
    assert [r.status_code for r in (scalar, mapping, from_old)] == [201, 201, 201]
    assert [r.json()["key"] for r in (scalar, mapping, from_old)] == [{"id": 7}, {"id": 8}, {"id": 9}]
    assert [r["key_json"] for r in _rows(app_db)] == [{"id": 7}, {"id": 8}, {"id": 9}]


@pytest.mark.postgres
def test_a_push_wakes_listeners_on_postgres(
    api: Api, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(postgres_url)
    _point_app_db_at(url, monkeypatch)
    conninfo = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        first = api.as_("ed").post("/events", json=PAID).json()
        assert api.as_("ed").post("/events", json=PAID).status_code == 200  # a replay signals nothing
        second = api.as_("ed").post("/events", json={**PAID, "id": "shop-1002"}).json()
        payloads = [n.payload for n in listener.notifies(timeout=10, stop_after=2)]
    assert payloads == [f"orders:{first['id']}", f"orders:{second['id']}"]


# -- refusals (nothing reaches a database) -----------------------------------------------------------


def _issues(response: Any) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def test_anonymous_is_401_and_a_viewer_403(api: Api) -> None:
    assert api.as_(None).post("/events", json=PAID).status_code == 401
    viewer = api.as_("vera").post("/events", json=PAID)
    assert viewer.status_code == 403 and "editor role" in viewer.json()["detail"]
    assert api.as_("vera").get("/events/app_db/1").status_code == 403


def test_another_organizations_connection_is_404(api: Api, store: RuleStore) -> None:
    store.put_catalog(
        organization="globex",
        catalog={
            "organization": "globex",
            "connections": {"globex_db": {"tables": {"orders": {"columns": {"id": {"primary_key": True}}}}}},
        },
        actor="setup",
    )
    response = api.as_("ed").post("/events", json={**PAID, "connection": "globex_db"})
    assert response.status_code == 404
    assert "'globex_db' is not in the catalog of organization 'acme'" in response.json()["detail"]
    assert api.as_("ed").get("/events/globex_db/1").status_code == 404
    assert api.as_("gina").post("/events", json=PAID).status_code == 404  # globex no longer has app_db


def test_unknown_tables_non_database_connections_and_bad_keys_are_422_at_their_paths(api: Api) -> None:
    ed = api.as_("ed")
    table = ed.post("/events", json={**PAID, "table": "invoices"})
    assert table.status_code == 422 and _issues(table) == {("table", "event")}
    assert "allowed tables: customers, orders" in table.json()["errors"][0]["message"]
    smtp = ed.post("/events", json={**PAID, "connection": "smtp_default"})
    assert smtp.status_code == 422 and _issues(smtp) == {("connection", "event")}
    no_key = ed.post("/events", json={**PAID, "old": None, "new": {"status": "paid"}})
    assert no_key.status_code == 422 and _issues(no_key) == {("key", "event")}
    mismatch = ed.post("/events", json={**PAID, "key": {"id": 8}})
    assert "does not match 'new'" in mismatch.json()["errors"][0]["message"]
    created_with_old = ed.post("/events", json={**PAID, "operation": "created"})
    assert _issues(created_with_old) == {("old", "event")}


def test_unknown_fields_and_missing_ids_are_422_with_paths(api: Api) -> None:
    body = {key: value for key, value in PAID.items() if key != "id"}
    response = api.as_("ed").post("/events", json={**body, "colour": "red", "changed_fields": ["x"]})
    assert response.status_code == 422
    assert {path for path, _ in _issues(response)} == {"id", "colour", "changed_fields"}
    too_long = api.as_("ed").post("/events", json={**PAID, "id": "x" * 201})
    assert {path for path, _ in _issues(too_long)} == {"id"}


def test_an_oversized_body_is_413(api: Api) -> None:
    body = {**PAID, "new": {**PAID["new"], "note": "x" * (1024 * 1024)}}
    response = api.as_("ed").post("/events", json=body)
    assert response.status_code == 413


def test_an_undefined_airflow_connection_is_503_with_a_reason(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_APP_DB", raising=False)
    response = api.as_("ed").post("/events", json=PAID)
    assert response.status_code == 503
    assert "connection 'app_db' is in your catalog but is not defined in Airflow" in response.json()["detail"]


@pytest.mark.postgres
def test_a_value_postgres_cannot_store_is_422(
    api: Api, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(postgres_url)
    _point_app_db_at(url, monkeypatch)
    nul = {**PAID, "new": {**PAID["new"], "note": "a\u0000b"}}  # JSONB refuses NUL in text
    response = api.as_("ed").post("/events", json=nul)
    assert response.status_code == 422, response.text
    # refused before the database is asked (rule_engine.api.input_guard), at its path
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [("new.note", "nul_character")]
    assert api.as_("ed").post("/events", json=PAID).status_code == 201  # the id was not taken


def test_an_unreachable_database_is_503_and_is_tried_again(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-dir" / "app.db"  # SQLite cannot create a file in a missing folder
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps({"conn_type": "sqlite", "host": str(missing)}))
    response = api.as_("ed").post("/events", json=PAID)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "the database of connection 'app_db' is unreachable" in response.json()["detail"]
    missing.parent.mkdir()
    assert api.as_("ed").post("/events", json=PAID).status_code == 201
