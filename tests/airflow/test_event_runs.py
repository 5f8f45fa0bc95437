"""Real `dag.test()` runs of an event rule: outbox events in, per-event verdicts, exactly-once effects.

The asset events that start a run in production carry outbox ids; here the run gets the same ids
through ``conf`` (``{"event_ids": [...]}``), the path a manual re-run takes. The trigger that turns
outbox rows into asset events is tested in ``test_outbox_trigger.py`` and, under a real scheduler and
triggerer, in ``test_event_smoke.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.runtime.record_effects import LEDGER_TABLE
from rule_compiler.store import RuleStore, RunQuery
from rule_compiler.store.run_queries import key_filter
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
RULE = ROOT / "include" / "rules" / "expedite-vip-payments.yaml"
DAG_ID = "rule__acme__expedite-vip-payments"


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def _pending_order(engine: sa.Engine, tier_test: str) -> int:
    rows = _rows(
        engine,
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        f"WHERE o.status = 'pending' AND {tier_test} ORDER BY o.id LIMIT 1",
    )
    assert rows, f"the demo data must have a pending order with {tier_test}"
    return int(rows[0]["id"])


def _change(engine: sa.Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def _event_ids(engine: sa.Engine) -> list[str]:
    return [str(r["id"]) for r in _rows(engine, "SELECT id FROM rule_engine_outbox ORDER BY id")]


def _ledger(engine: sa.Engine) -> list[dict[str, Any]]:
    if not sa.inspect(engine).has_table(LEDGER_TABLE):
        return []
    return _rows(engine, f"SELECT * FROM {LEDGER_TABLE} ORDER BY occurrence_id")


def _run(event_ids: list[str]) -> Any:
    return dagbag().dags[DAG_ID].test(run_conf={"event_ids": event_ids})


def test_an_event_rule_acts_once_per_matching_event(store: RuleStore, app_db: sa.Engine) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    install(app_db, "orders")
    apply_rules(store, RULE)
    vip = _pending_order(app_db, "c.tier = 'vip'")
    regular = _pending_order(app_db, "c.tier <> 'vip'")
    _change(app_db, "UPDATE orders SET status = 'paid' WHERE id IN (:a, :b)", a=vip, b=regular)
    _change(app_db, "UPDATE orders SET note = 'called the customer' WHERE id = :a", a=vip)  # not `status`
    vip_paid, regular_paid, note_only = _event_ids(app_db)
    vip_name = _rows(
        app_db, "SELECT c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = :i", i=vip
    )[0]["name"]

    dag_run = _run([vip_paid, regular_paid, note_only])

    assert dag_run.state == DagRunState.SUCCESS
    (changed,) = _rows(app_db, "SELECT * FROM orders WHERE id = :i", i=vip)
    assert changed["priority"] == "high"
    assert changed["note"] == f"pending -> paid for {vip_name} (event {vip_paid})"
    assert _rows(app_db, "SELECT priority FROM orders WHERE id = :i", i=regular)[0]["priority"] != "high"
    ledger = _ledger(app_db)
    assert [(row["occurrence_id"], row["row_key"]) for row in ledger] == [(f"event:{vip_paid}", f"[{vip}]")]
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "success" and log.matched_count == 1
    trace = log.trace
    assert (trace["evaluated"], trace["matched"], trace["ignored"]) == (3, 1, 1)
    verdicts = {row["event_id"]: row for row in trace["rows"]}
    assert verdicts[vip_paid]["matched"] is True and verdicts[regular_paid]["matched"] is False
    assert "status" in verdicts[note_only]["ignored"]  # only `status` changes fire the rule
    # the log is filtered by the item a run matched (ADR 0013); SQLite captures record no actor
    by_item = store.query_runs(RunQuery(organization="acme", table="orders", key=key_filter(str(vip))))
    assert [run.run_id for run in by_item.runs] == [dag_run.run_id]
    assert (
        store.query_runs(RunQuery(organization="acme", table="orders", key=key_filter(str(regular)))).runs
        == []
    )

    # The same events delivered again (Airflow is at-least-once): a second run, no second effect.
    _change(app_db, "UPDATE orders SET priority = 'normal' WHERE id = :a", a=vip)
    outbox_before = _event_ids(app_db)
    again = _run([vip_paid])
    assert again.state == DagRunState.SUCCESS
    assert _rows(app_db, "SELECT priority FROM orders WHERE id = :i", i=vip)[0]["priority"] == "normal"
    assert len(_ledger(app_db)) == 1
    action = store.get_run(dag_id=DAG_ID, run_id=again.run_id).actions[0]
    assert action.output["already_applied"] == 1 and action.output["applied"] == 0
    assert _event_ids(app_db)[: len(outbox_before)] == outbox_before

    # Events that do not match: the actions show as skipped, the run as no_match.
    quiet = _run([regular_paid, note_only])
    states = {ti.task_id: ti.state for ti in quiet.get_task_instances()}
    assert states["expedite"] == TaskInstanceState.SKIPPED
    assert store.get_run(dag_id=DAG_ID, run_id=quiet.run_id).status == "no_match"


def test_a_purged_event_is_reported_not_fatal(store: RuleStore, app_db: sa.Engine) -> None:
    from airflow.utils.state import DagRunState

    install(app_db, "orders")
    apply_rules(store, RULE)
    dag_run = _run(["999999"])
    assert dag_run.state == DagRunState.SUCCESS
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "no_match"
    assert log.trace["missing_event_ids"] == ["999999"]


def test_runs_take_every_event_after_the_rules_cursor_so_none_is_stranded(
    store: RuleStore, app_db: sa.Engine
) -> None:
    """Without ``conf``, a run takes the table's events after the rule's own cursor — including any
    whose asset event Airflow 3.3 attached to no run (apache/airflow#56050) — and moves the cursor."""
    from airflow.utils.state import DagRunState

    from rule_compiler.events.outbox_rows import advance_cursor, cursor_position
    from rule_compiler.events.reader import rule_consumer_name

    install(app_db, "orders")
    apply_rules(store, RULE)
    consumer = rule_consumer_name("orders", DAG_ID)
    with app_db.begin() as conn:
        advance_cursor(conn, consumer, 0)  # as after an earlier run that took nothing yet
    vip = _pending_order(app_db, "c.tier = 'vip'")
    _change(app_db, "UPDATE orders SET status = 'paid' WHERE id = :a", a=vip)
    (event_id,) = _event_ids(app_db)

    first = dagbag().dags[DAG_ID].test()
    assert first.state == DagRunState.SUCCESS
    assert _rows(app_db, "SELECT priority FROM orders WHERE id = :i", i=vip)[0]["priority"] == "high"
    log = store.get_run(dag_id=DAG_ID, run_id=first.run_id)
    assert log is not None and log.trace["event_range"] == [0, int(event_id)]
    with app_db.connect() as conn:
        assert cursor_position(conn, consumer) == int(event_id)

    second = dagbag().dags[DAG_ID].test()  # nothing new since: nothing taken twice
    assert store.get_run(dag_id=DAG_ID, run_id=second.run_id).status == "no_match"
    assert len(_ledger(app_db)) == 1


def test_an_event_range_is_taken_once_and_a_retry_takes_the_same(app_db: sa.Engine) -> None:
    from rule_compiler.runtime.event_cursor import EventRange

    install(app_db, "orders")
    _change(app_db, "UPDATE orders SET note = 'a' WHERE id IN (SELECT id FROM orders ORDER BY id LIMIT 3)")
    ids = [int(i) for i in _event_ids(app_db)]
    started_by = [{"event_ids": [str(ids[1])]}]  # a rule's first run starts at the event that started it
    taken = EventRange.take(app_db, "orders", "rule__acme__x", started_by, None)
    assert taken.ids == ids[1:] and taken.after == ids[0]
    again = EventRange.take(app_db, "orders", "rule__acme__x", [], [taken.after, taken.through])
    assert again.ids == taken.ids  # the task's retry, before or after the commit
    taken.commit()
    _change(app_db, "UPDATE orders SET note = 'b' WHERE id = (SELECT MIN(id) FROM orders)")
    later = EventRange.take(app_db, "orders", "rule__acme__x", [], None)
    assert later.ids == [ids[-1] + 1] and later.after == taken.through


def test_a_retried_evaluate_task_takes_the_events_its_first_try_recorded(
    store: RuleStore, app_db: sa.Engine
) -> None:
    """The operator's retry path: only a retry (``try_number`` > 1) reads the run's log, and then takes
    the recorded range, not the events that arrived since. The context stands in for Airflow's: the
    retry of a real task instance cannot be started from ``dag.test()``."""
    from types import SimpleNamespace

    from rule_compiler.events.outbox_rows import advance_cursor
    from rule_compiler.events.reader import rule_consumer_name

    install(app_db, "orders")
    apply_rules(store, RULE)
    with app_db.begin() as conn:
        advance_cursor(conn, rule_consumer_name("orders", DAG_ID), 0)
    first_order = _pending_order(app_db, "c.tier = 'vip'")
    _change(app_db, "UPDATE orders SET status = 'paid' WHERE id = :a", a=first_order)
    (first_event,) = _event_ids(app_db)
    first = dagbag().dags[DAG_ID].test()
    assert store.get_run(dag_id=DAG_ID, run_id=first.run_id).trace["event_range"] == [0, int(first_event)]
    second_order = _pending_order(app_db, "c.tier = 'vip'")
    _change(app_db, "UPDATE orders SET status = 'paid' WHERE id = :a", a=second_order)
    second_event = _event_ids(app_db)[-1]

    task = dagbag().dags[DAG_ID].get_task("evaluate_conditions")

    def evaluate(run_id: str, try_number: int) -> Any:
        context = {
            "run_id": run_id,
            "ti": SimpleNamespace(try_number=try_number),
            "dag_run": SimpleNamespace(conf={}, run_type="asset_triggered", run_after=first.run_after),
            "logical_date": first.logical_date,
            "triggering_asset_events": {},
        }
        return task.execute(context)

    retried = evaluate(first.run_id, try_number=2)
    assert [event["event_id"] for event in retried["matched_events"]] == [first_event]
    fresh = evaluate("asset_triggered__next", try_number=1)
    assert [event["event_id"] for event in fresh["matched_events"]] == [second_event]
