"""Real `dag.test()` runs of workflows: items split by a condition, a join's union, effects exactly once.

The example ``include/workflows/route-new-orders.yaml`` runs on the demo database: new orders are the
items, ``is-big`` splits them, ``make-high`` / ``make-normal`` act on their branch, the join ``routed``
goes on with both, and ``stamp`` notes every order. Events reach the run through ``conf``
(``{"event_ids": [...]}``), as in ``test_event_runs.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_in, context_from_store, register
from rule_compiler.runtime.record_effects import LEDGER_TABLE
from rule_compiler.store import RuleStore
from tests.airflow.conftest import dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
INCLUDE = ROOT / "include"
WORKFLOW = INCLUDE / "workflows" / "route-new-orders.yaml"
DAG_ID = "workflow__acme__route-new-orders"


def apply(store: RuleStore, *paths: Path) -> None:
    """Register definitions as the CLI does: each checked against what the store holds."""
    for path in paths:
        data = read_definition_file(path)
        compiled = compile_in(data, context_from_store(store, "acme", data))
        register(store, compiled, actor="test")


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def _new_order(engine: sa.Engine, order_id: int, status: str, total: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders (id, customer_id, status, total, priority, note, deleted) "
                "VALUES (:id, 1, :status, :total, 'low', NULL, false)"
            ),
            {"id": order_id, "status": status, "total": total},
        )


def _event_of(engine: sa.Engine, order_id: int) -> str:
    rows = _rows(engine, "SELECT id, key_json FROM rule_engine_outbox ORDER BY id")
    return next(str(r["id"]) for r in rows if str(order_id) in str(r["key_json"]))


def _order(engine: sa.Engine, order_id: int) -> dict[str, Any]:
    return _rows(engine, "SELECT priority, note FROM orders WHERE id = :i", i=order_id)[0]


def _ledger_count(engine: sa.Engine) -> int:
    return int(_rows(engine, f"SELECT count(*) AS n FROM {LEDGER_TABLE}")[0]["n"])


def _note(dag_run: Any) -> str:
    """The run's note, set by the plugin's listener (rule_engine.run_notes)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return str(session.get(DagRun, dag_run.id).note)


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _run_both_ways(store: RuleStore, app_db: sa.Engine) -> None:
    from airflow.utils.state import DagRunState

    install(app_db, "orders")
    apply(store, INCLUDE / "templates" / "big-order.yaml", WORKFLOW)
    _new_order(app_db, 9001, "paid", 5000)
    _new_order(app_db, 9002, "pending", 20)
    big, small = _event_of(app_db, 9001), _event_of(app_db, 9002)
    dag = dagbag().dags[DAG_ID]

    dag_run = dag.test(run_conf={"event_ids": [big, small]})

    assert dag_run.state == DagRunState.SUCCESS
    assert _order(app_db, 9001) == {"priority": "high", "note": "routed: order 9001 (paid)"}
    assert _order(app_db, 9002) == {"priority": "normal", "note": "routed: order 9002 (pending)"}
    assert _states(dag_run) == {
        "start": "success",
        "is-big": "success",
        "make-high": "success",
        "make-normal": "success",
        "routed": "success",
        "stamp": "success",
        "record_outcome": "success",
    }
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "success"
    nodes = {result.action_id: result for result in log.actions}
    assert nodes["is-big"].output["true"]["count"] == 1 and nodes["is-big"].output["false"]["count"] == 1
    assert nodes["is-big"].output["true"]["keys"] == [f"event:{big}"]
    assert nodes["routed"].output["items"] == 2
    assert nodes["make-high"].output["applied"] == 1 and nodes["stamp"].output["applied"] == 2
    # the path each item took: make-high acted on the big order, make-normal on the small one, stamp on both
    assert nodes["make-high"].output["keys"] == [f"event:{big}"]
    assert nodes["make-normal"].output["keys"] == [f"event:{small}"]
    assert sorted(nodes["stamp"].output["keys"]) == sorted([f"event:{big}", f"event:{small}"])
    effects = _ledger_count(app_db)
    assert effects == 4  # make-high 1, make-normal 1, stamp 2

    # One branch only: the other is skipped, the join still goes on with what arrived.
    _new_order(app_db, 9003, "pending", 30)
    only_small = dag.test(run_conf={"event_ids": [_event_of(app_db, 9003)]})
    assert only_small.state == DagRunState.SUCCESS
    states = _states(only_small)
    assert states["make-high"] == "skipped" and states["make-normal"] == "success"
    assert states["routed"] == "success" and states["stamp"] == "success"
    assert _order(app_db, 9003) == {"priority": "normal", "note": "routed: order 9003 (pending)"}
    assert store.get_run(dag_id=DAG_ID, run_id=only_small.run_id).status == "success"

    # The same events again (at-least-once delivery): no second effect.
    with app_db.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET priority = 'low' WHERE id = 9001"))
    again = dag.test(run_conf={"event_ids": [big, small]})
    assert again.state == DagRunState.SUCCESS
    assert _order(app_db, 9001)["priority"] == "low"
    assert _ledger_count(app_db) == effects + 2  # only 9003's two effects were new

    # An event the trigger does not take (an update): nothing runs, and the run says so in its note.
    with app_db.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET note = 'checked' WHERE id = 9001"))
    updated = _rows(app_db, "SELECT max(id) AS id FROM rule_engine_outbox")[0]["id"]
    quiet = dag.test(run_conf={"event_ids": [str(updated)]})
    assert quiet.state == DagRunState.SUCCESS and _states(quiet)["stamp"] == "skipped"
    assert store.get_run(dag_id=DAG_ID, run_id=quiet.run_id).status == "no_match"
    assert _note(quiet) == "no match: 0 of 1 event (1 not for this rule)"


def test_a_workflow_splits_items_joins_them_and_acts_once(store: RuleStore, app_db: sa.Engine) -> None:
    _run_both_ways(store, app_db)


@pytest.mark.postgres
def test_a_workflow_runs_on_postgres(pg_store: RuleStore, pg_app_db: sa.Engine) -> None:
    _run_both_ways(pg_store, pg_app_db)
