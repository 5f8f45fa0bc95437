"""Author SQL through the REST view (issue 13): unreadable SQL is a 422 at its path, never a 500; a
SQL function off the allow-list is named; only a platform administrator sets a connection's query
role; and no lock of ours is held while a database keeps ``ensure_outbox`` waiting.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from rule_engine.api.routes.pushed_events import OutboxEngines

from rule_compiler.events import outbox_rows as outbox_module
from rule_compiler.store import RuleStore
from tests.api.conftest import Api, catalog_for, rule_body
from tests.api.test_reports_api import report_body

UNTERMINATED = ["SELECT 'abc FROM orders", "SELECT 1 /* never closed", "SELECT $$ open FROM orders"]
XML_DUMP = "SELECT table_to_xml('secrets', true, false, '') AS x FROM orders LIMIT 1"


def _report_with(sql: str) -> dict[str, Any]:
    body = report_body()
    body["queries"][0]["sql"] = sql
    body["charts"] = []
    body.pop("alert", None)
    return body


def _data_rule_with(sql: str) -> dict[str, Any]:
    trigger = {
        "type": "data",
        "connection": "app_db",
        "sql": sql,
        "check": {"operator": "gt", "value": 0},
        "schedule": "*/15 * * * *",
    }
    return {**rule_body(), "name": "spike", "trigger": trigger}


def _errors(response: Any) -> dict[str, str]:
    return {e["path"]: e["message"] for e in response.json()["errors"]}


@pytest.mark.parametrize("sql", UNTERMINATED)
def test_unterminated_sql_in_a_report_is_422_at_its_path(api: Api, store: RuleStore, sql: str) -> None:
    ed = api.as_("ed")
    refused = ed.post("/reports", json=_report_with(sql))
    assert refused.status_code == 422, refused.text
    assert "is not closed" in _errors(refused)["queries[0].sql"]
    dry = ed.post("/reports/validate", json=_report_with(sql))
    assert dry.status_code == 200 and dry.json()["valid"] is False
    assert store.list(kind="report") == []


@pytest.mark.parametrize("sql", UNTERMINATED)
def test_unterminated_sql_in_a_data_trigger_is_422_at_its_path(api: Api, sql: str) -> None:
    refused = api.as_("ed").post("/rules", json=_data_rule_with(sql))
    assert refused.status_code == 422, refused.text
    assert "is not closed" in _errors(refused)["trigger.sql"]


def test_a_function_off_the_allow_list_is_named(api: Api) -> None:
    report = api.as_("ed").post("/reports", json=_report_with(XML_DUMP))
    assert report.status_code == 422
    assert _errors(report)["queries[0].sql"].startswith(
        "function table_to_xml() is not allowed in author SQL"
    )
    rule = api.as_("ed").post("/rules", json=_data_rule_with(XML_DUMP))
    assert rule.status_code == 422 and "table_to_xml()" in _errors(rule)["trigger.sql"]


def test_the_query_role_is_set_by_platform_admins_only(api: Api, store: RuleStore) -> None:
    """Like storage locations (ADR 0007): the role is a database credential of the deployment."""
    version = store.catalog_version("acme")
    restricted = catalog_for("acme")
    restricted["connections"]["app_db"]["query_role"] = "automation_reader"
    refused = api.as_("ada").put("/catalog", json=restricted)
    assert refused.status_code == 403
    assert "changes the query role of app_db" in refused.json()["detail"]
    assert store.catalog_version("acme") == version
    assert api.as_("root").put("/catalog?organization=acme", json=restricted).status_code == 200
    shown = api.as_("ada").get("/catalog").json()["catalog"]["connections"]["app_db"]
    assert shown["query_role"] == "automation_reader"
    unchanged = api.as_("ada").put("/catalog", json=restricted)  # the org may still edit its tables
    assert unchanged.status_code == 200
    for change in ("other_reader", None):  # neither changing nor removing it is the org's call
        edited = catalog_for("acme")
        if change is not None:
            edited["connections"]["app_db"]["query_role"] = change
        assert api.as_("ada").put("/catalog", json=edited).status_code == 403
    with_http_role = catalog_for("acme")
    with_http_role["connections"]["app_db"]["query_role"] = "automation_reader"
    with_http_role["connections"]["billing_api"] = {"kind": "http", "query_role": "automation_reader"}
    assert api.as_("root").put("/catalog?organization=acme", json=with_http_role).status_code == 422


# --- OutboxEngines: no lock of ours held while waiting on a database --------------------------


def _wait_until(predicate: Any, what: str) -> None:
    event = threading.Event()
    for _ in range(600):
        if predicate():
            return
        event.wait(0.05)
    pytest.fail(f"never happened: {what}")


def _bounded(work: Any, seconds: float = 30) -> Any:
    """``work()`` in a thread, joined for at most ``seconds``: a call that blocks fails the test
    instead of hanging it. Its result, or the exception it raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert outcome, f"still blocked after {seconds:g} s"
    return outcome[0]


def _waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as probe:
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(probe.execute(query).scalar())


@pytest.mark.postgres
def test_a_held_outbox_lock_on_one_database_does_not_hold_up_another(
    postgres_databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection A's outbox lock is held elsewhere, so its first use waits in ensure_outbox; meanwhile
    connection B opens and its ensure_outbox runs: the process-wide lock is not held across A's wait."""
    monkeypatch.setattr(outbox_module, "ENSURE_LOCK_TIMEOUT_SECONDS", 60.0)  # A waits: B must not
    url_a, url_b = postgres_databases.create(), postgres_databases.create()
    # like the connection seam: one engine per connection, the same on every call
    seam = {"a": sa.create_engine(url_a), "b": sa.create_engine(url_b)}
    engines = OutboxEngines(seam.__getitem__)
    a_engine = sa.create_engine(url_a)
    results: dict[str, Any] = {}

    def first_use_of_a() -> None:
        try:
            results["a"] = engines.get("a")
        except BaseException as exc:  # pragma: no cover - reported by the assertions below
            results["a"] = exc

    holder = a_engine.connect()
    try:
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtext('rule_engine_outbox'))"))
        waiting = threading.Thread(target=first_use_of_a, daemon=True)
        waiting.start()
        _wait_until(lambda: _waiting_on_a_lock(a_engine), "A's ensure_outbox waiting for the lock")

        b = _bounded(lambda: engines.get("b"))  # returns while A is still blocked
        assert isinstance(b, sa.Engine), b
        assert waiting.is_alive() and "a" not in results and _waiting_on_a_lock(a_engine)
        with b.connect() as conn:
            assert sa.inspect(conn).has_table("rule_engine_outbox")
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    waiting.join(timeout=60)
    assert results.get("a") is seam["a"]
    with a_engine.connect() as holder:  # ensured once: the next request does not wait on the lock again
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtext('rule_engine_outbox'))"))
        assert _bounded(lambda: engines.get("a")) is seam["a"]
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
    engines.dispose()
    a_engine.dispose()


@pytest.mark.postgres
def test_ensure_outbox_gives_up_on_a_held_lock_with_a_503(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever holds the outbox's lock (author SQL could, before the allow-list), a push waits at most
    the lock timeout and answers 503 to retry; the caller's own lock_timeout is left as it was."""
    from fastapi import HTTPException

    monkeypatch.setattr(outbox_module, "ENSURE_LOCK_TIMEOUT_SECONDS", 0.2)
    engine = sa.create_engine(postgres_url)
    app_engine = sa.create_engine(postgres_url)
    engines = OutboxEngines(lambda conn_id: app_engine)  # like the seam: the same engine every time
    with engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(hashtext('rule_engine_outbox'))"))
        refused = _bounded(lambda: engines.get("app_db"))
        assert isinstance(refused, HTTPException), refused
        assert refused.status_code == 503 and "locked by another session" in refused.detail
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        holder.commit()
    assert engines.get("app_db") is app_engine  # the next request tries again, and gets it
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '42s'"))
        outbox_module.ensure_outbox(conn)
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar_one() == "42s"
    engines.dispose()
    engine.dispose()
