"""``/health``: store reachable and migrated, loader errors of the caller's organizations, and the lag
of the event consumers their active event rules depend on (real SQLite application databases with
change capture installed; an unreachable one is a real refused Postgres connection)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rule_engine.api.consumer_lag import STALLED_AFTER

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import advance_cursor, outbox
from rule_compiler.store import RuleStore
from rule_compiler.store.migrate import head_revision
from tests.api.conftest import Api, Recorder, catalog_for, create, rule_body


def test_ok_when_the_store_is_current_and_nothing_failed_to_render(api: Api) -> None:
    create(api)
    body = api.as_("vera").get("/health").json()
    assert body == {
        "status": "ok",
        "store": {
            "reachable": True,
            "revision": head_revision(),
            "expected_revision": head_revision(),
            "error": None,
        },
        "loader_errors": [],
        "loader_errors_checked": True,
        "consumers": [],  # no event rule: nothing to consume
        "stalled_after_seconds": STALLED_AFTER.total_seconds(),
    }


def test_loader_errors_of_your_organizations_only(api: Api, recorder: Recorder) -> None:
    create(api)
    create(api, "archive-void-orders", user="gina")
    recorder.render_errors.update(
        {
            "rule__acme__flag-big-paid-orders": "the stored spec could not be rendered: ValueError: boom",
            "rule__globex__archive-void-orders": "event triggers ... not run by this release yet",
        }
    )
    body = api.as_("vera").get("/health").json()
    assert body["status"] == "degraded"
    assert body["loader_errors"] == [
        {
            "dag_id": "rule__acme__flag-big-paid-orders",
            "rule_name": "acme/flag-big-paid-orders",
            "reason": "the stored spec could not be rendered: ValueError: boom",
        }
    ]
    everything = api.as_("root").get("/health").json()
    assert len(everything["loader_errors"]) == 2


def test_degraded_when_the_store_is_unreachable(issue_token: Callable[[str], str]) -> None:
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    broken = RuleStore("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    app = create_app(
        broken, settings=ApiSettings(rate_limit=""), on_change=None, render_errors_of=lambda _: {}
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {issue_token('vera')}"}
        health = client.get("/api/v1/health", headers=headers)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["store"]["reachable"] is False
        rules = client.get("/api/v1/rules", headers=headers)
        assert rules.status_code == 503 and rules.headers["Retry-After"] == "5"
        assert rules.json() == {"detail": "the rule store is unreachable; try again later"}


def test_degraded_when_airflow_cannot_be_read(
    make_app: Callable[..., FastAPI], store: RuleStore, api: Api
) -> None:
    def failing(_: object) -> dict[str, str]:
        raise RuntimeError("metadata DB down")

    api.client.app.state.render_errors = failing  # type: ignore[attr-defined]
    body = api.as_("vera").get("/health").json()
    assert body["status"] == "degraded" and body["loader_errors_checked"] is False


EVENT_RULE = "expedite-vip-payments"  # watches app_db.orders: updates that change status
#: The durable cursor of that rule's trigger (ADR 0008: one per table, operations and fields).
EVENT_CONSUMER = "airflow:orders?events=updated&fields=status"


def _app_db(path: Path, monkeypatch: pytest.MonkeyPatch, conn_id: str = "app_db") -> sa.Engine:
    """A SQLite application database with an ``orders`` table, behind an Airflow connection."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return engine


def _insert_orders(engine: sa.Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        for _ in range(count):
            conn.exec_driver_sql("INSERT INTO orders (status) VALUES ('new')")
        return [int(i) for i in conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id)).scalars()]


def _consumers(api: Api, user: str = "vera") -> tuple[str, list[dict[str, Any]]]:
    response = api.as_(user).get("/health")
    assert response.status_code == 200, response.text
    return response.json()["status"], response.json()["consumers"]


def test_consumer_lag_with_a_cursor_behind(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _app_db(tmp_path / "app.db", monkeypatch)
    install(engine, "orders")
    create(api, EVENT_RULE)
    create(api)  # a manual rule: watches nothing
    first, second, third = _insert_orders(engine, 3)
    status, [before] = _consumers(api)
    assert (before["position"], before["newest_id"], before["pending"]) == (0, third, 3)  # no cursor yet
    with engine.begin() as conn:
        advance_cursor(conn, EVENT_CONSUMER, first)
        created = conn.execute(sa.select(outbox.c.created_at).where(outbox.c.id == second)).scalar_one()

    status, [lag] = _consumers(api)
    assert status == "ok"
    assert lag["connection"] == "app_db" and lag["table"] == "orders"
    assert lag["consumer"] == EVENT_CONSUMER and lag["rules"] == [f"acme/{EVENT_RULE}"]
    assert (lag["status"], lag["position"], lag["newest_id"], lag["pending"]) == ("behind", first, third, 2)
    assert lag["pending_capped"] is False and lag["error"] is None
    oldest = dt.datetime.fromisoformat(lag["oldest_pending_at"])
    assert oldest == dt.datetime.fromisoformat(created).replace(tzinfo=dt.UTC)
    assert 0 <= lag["oldest_pending_age_seconds"] < STALLED_AFTER.total_seconds()

    with engine.begin() as conn:  # the trigger handed everything on
        advance_cursor(conn, EVENT_CONSUMER, third)
    assert _consumers(api)[1][0]["status"] == "ok" and _consumers(api)[1][0]["pending"] == 0


def test_a_consumer_whose_oldest_event_waits_too_long_is_stalled(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _app_db(tmp_path / "app.db", monkeypatch)
    install(engine, "orders")
    create(api, EVENT_RULE)
    _insert_orders(engine, 2)
    long_ago = (dt.datetime.now(dt.UTC) - 2 * STALLED_AFTER).isoformat(timespec="milliseconds")
    with engine.begin() as conn:
        conn.execute(outbox.update().values(created_at=long_ago))
    status, [lag] = _consumers(api)
    assert status == "degraded"
    assert lag["status"] == "stalled" and lag["oldest_pending_age_seconds"] > STALLED_AFTER.total_seconds()


def test_no_outbox_and_unreachable_databases_are_reported_per_consumer(
    api: Api, store: RuleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _app_db(tmp_path / "app.db", monkeypatch)  # capture never installed: no outbox
    catalog = catalog_for("acme")
    catalog["connections"]["remote_db"] = catalog["connections"]["app_db"]
    store.put_catalog(organization="acme", catalog=catalog, actor="setup")
    monkeypatch.setenv(
        "AIRFLOW_CONN_REMOTE_DB",
        json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "nobody", "schema": "x"}
        ),
    )
    create(api, EVENT_RULE)
    remote = {**rule_body(EVENT_RULE), "name": "expedite-remote"}
    remote["trigger"]["connection"] = "remote_db"
    remote["actions"][0]["connection"] = "remote_db"
    assert api.as_("ed").post("/rules", json=remote).status_code == 201

    status, lags = _consumers(api)
    assert status == "degraded"
    by_connection = {lag["connection"]: lag for lag in lags}
    assert by_connection["app_db"]["status"] == "no_outbox" and by_connection["app_db"]["pending"] is None
    assert by_connection["remote_db"]["status"] == "unreachable"
    assert by_connection["remote_db"]["error"] == "OperationalError"  # the class only, never the message
    assert by_connection["remote_db"]["rules"] == ["acme/expedite-remote"]


def test_consumers_of_inactive_rules_and_other_organizations_are_not_shown(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _app_db(tmp_path / "app.db", monkeypatch)
    install(engine, "orders")
    create(api, EVENT_RULE)
    assert _consumers(api, "gus")[1] == []  # globex's admin
    assert [c["rules"] for c in _consumers(api, "root")[1]] == [[f"acme/{EVENT_RULE}"]]
    etag = api.as_("ed").get(f"/rules/{EVENT_RULE}").headers["ETag"]
    api.as_("ed").patch(f"/rules/{EVENT_RULE}", json={"active": False}, headers={"If-Match": etag})
    assert _consumers(api)[1] == []


def test_each_watch_of_a_table_is_its_own_consumer_and_equal_watches_share_one(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADR 0008: rules on one table with different operations or fields have a trigger and a cursor
    each; rules with the same ones share theirs."""
    engine = _app_db(tmp_path / "app.db", monkeypatch)
    install(engine, "orders")
    create(api, EVENT_RULE)
    twin = {**rule_body(EVENT_RULE), "name": "expedite-twin"}
    created = {**rule_body(EVENT_RULE), "name": "note-new-orders"}
    created["trigger"] = {"type": "event", "connection": "app_db", "table": "orders", "events": ["created"]}
    created["conditions"] = None
    for body in (twin, created):
        assert api.as_("ed").post("/rules", json=body).status_code == 201
    second = _insert_orders(engine, 3)[1]
    with engine.begin() as conn:
        advance_cursor(conn, "airflow:orders?events=created", second)

    _, lags = _consumers(api)
    assert [(lag["consumer"], lag["rules"], lag["position"], lag["pending"]) for lag in lags] == [
        ("airflow:orders?events=created", ["acme/note-new-orders"], second, 1),
        (EVENT_CONSUMER, ["acme/expedite-twin", f"acme/{EVENT_RULE}"], 0, 3),
    ]
