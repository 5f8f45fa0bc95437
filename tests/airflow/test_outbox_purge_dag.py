"""The ``rule_engine_outbox_purge`` maintenance DAG under a real DagBag and real ``dag.test()`` runs:
it purges, in the demo SQLite app DB, only the events of tables active event rules watch that their
consumer passed and that are older than ``AUTOMATION_OUTBOX_RETENTION``; one unreachable database
does not stop the others, and fails the run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import advance_cursor, outbox
from rule_compiler.events.reader import consumer_name
from rule_compiler.events.watch import Watch
from rule_compiler.schedules import shortest_interval
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
DAG_ID = "rule_engine_outbox_purge"
TASK_ID = "purge_outboxes"
NOW = dt.datetime.now(dt.UTC)
#: The cursor of the trigger of the rules below (updates of orders: ADR 0008's watch).
ORDERS_TRIGGER = Watch.of("app_db", "orders", ["updated"]).consumer


def _rule(
    name: str, connection: str, table: str, values: dict[str, Any], active: bool = True
) -> dict[str, Any]:
    return {
        "kind": "rule",
        "name": name,
        "organization": "acme",
        "active": active,
        "trigger": {"type": "event", "connection": connection, "table": table, "events": ["updated"]},
        "actions": [
            {
                "id": "mark",
                "type": "update_record",
                "connection": connection,
                "table": table,
                "values": values,
            }
        ],
    }


def _apply(store: RuleStore, tmp_path: Path, *rules: dict[str, Any]) -> None:
    for rule in rules:
        path = tmp_path / f"{rule['name']}.yaml"
        path.write_text(yaml.safe_dump(rule))
        apply_rules(store, path)


def _age(engine: sa.Engine, ages: dict[int, dt.timedelta]) -> None:
    with engine.begin() as conn:
        for event_id, age in ages.items():
            stamp = (NOW - age).isoformat(timespec="milliseconds")  # SQLite: ISO text, as the triggers write
            conn.execute(outbox.update().where(outbox.c.id == event_id).values(created_at=stamp))


def _events(engine: sa.Engine) -> dict[str, list[int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.table_name, outbox.c.id).order_by(outbox.c.id)).all()
    found: dict[str, list[int]] = {}
    for table, event_id in rows:
        found.setdefault(table, []).append(event_id)
    return found


def _seed(app_db: sa.Engine) -> tuple[list[int], list[int]]:
    """Four orders events (o3 five days old, the others ten) and two customers events, all old.

    The orders rules' trigger has handed on o1..o3; the customers cursor (left by an inactive rule) is at
    the end.
    """
    install(app_db, "orders")
    install(app_db, "customers")
    with app_db.begin() as conn:
        for statement in (
            "UPDATE orders SET note = 'a' WHERE id = 1",
            "UPDATE customers SET tier = 'gold' WHERE id = 1",
            "UPDATE orders SET note = 'b' WHERE id = 1",
            "UPDATE orders SET note = 'c' WHERE id = 1",
            "UPDATE customers SET tier = 'silver' WHERE id = 1",
            "UPDATE orders SET note = 'd' WHERE id = 1",
        ):
            conn.execute(sa.text(statement))
    events = _events(app_db)
    orders, customers = events["orders"], events["customers"]
    assert len(orders) == 4 and len(customers) == 2
    _age(
        app_db, {i: dt.timedelta(days=10) for i in [*orders, *customers]} | {orders[2]: dt.timedelta(days=5)}
    )
    with app_db.begin() as conn:
        advance_cursor(conn, ORDERS_TRIGGER, orders[2])
        advance_cursor(conn, consumer_name("customers"), max(customers))
    return orders, customers


def _run() -> Any:
    dag = dagbag().dags[DAG_ID]
    dag.get_task(TASK_ID).retries = 0  # dag.test() would otherwise wait out the retry delay
    return dag.test()


def test_the_dag_parses_daily_and_unpaused(store: RuleStore) -> None:
    bag = dagbag()
    assert not [path for path in bag.import_errors if path.endswith("rule_engine_maintenance.py")]
    dag = bag.dags[DAG_ID]
    assert dag.task_ids == [TASK_ID]
    assert shortest_interval(dag.timetable.expression) == dt.timedelta(days=1)
    assert dag.is_paused_upon_creation is False and dag.catchup is False and dag.max_active_runs == 1


def test_a_run_purges_passed_old_events_of_watched_tables_only(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    _apply(
        store,
        tmp_path,
        _rule("watch-orders", "app_db", "orders", {"priority": "high"}),
        _rule("watch-customers", "app_db", "customers", {"tier": "vip"}, active=False),
    )
    orders, customers = _seed(app_db)
    monkeypatch.delenv("AUTOMATION_OUTBOX_RETENTION", raising=False)

    dag_run = _run()

    assert dag_run.state == DagRunState.SUCCESS
    # o1, o2: passed and older than 7 days; o3: passed but 5 days old; o4: not passed yet
    assert _events(app_db) == {"orders": orders[2:], "customers": customers}
    output = dag_run.get_task_instance(TASK_ID).xcom_pull(task_ids=TASK_ID)
    assert output == {
        "app_db": {"purged": {"orders": 2}, "kept_unwatched": {"customers": 2}, "has_outbox": True}
    }

    monkeypatch.setenv("AUTOMATION_OUTBOX_RETENTION", "3d")
    assert _run().state == DagRunState.SUCCESS
    assert _events(app_db) == {"orders": orders[3:], "customers": customers}


def test_an_unreachable_database_fails_the_run_after_the_others_are_purged(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    catalog = store.get_catalog("acme")
    assert catalog is not None
    catalog["connections"]["analytics_db"] = catalog["connections"]["app_db"]
    store.put_catalog(organization="acme", catalog=catalog, actor="test")
    down = {"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "nobody", "schema": "none"}
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS_DB", json.dumps(down))
    _apply(
        store,
        tmp_path,
        _rule("watch-orders", "app_db", "orders", {"priority": "high"}),
        _rule("watch-analytics-orders", "analytics_db", "orders", {"priority": "high"}),
    )
    orders, customers = _seed(app_db)

    dag_run = _run()  # analytics_db sorts first: its failure must not stop app_db's purge

    assert dag_run.state == DagRunState.FAILED
    assert _events(app_db)["orders"] == orders[2:]  # app_db was purged all the same
    assert _events(app_db)["customers"] == customers
