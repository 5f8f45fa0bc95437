"""Real `dag.test()` runs of example rules against the demo database: rows changed, logs written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.runtime.record_effects import LEDGER_TABLE
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
RULES = ROOT / "include" / "rules"


def _orders(engine: sa.Engine, where: str = "1=1") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM orders WHERE {where} ORDER BY id"))
        ]


def _ledger(engine: sa.Engine) -> list[dict[str, Any]]:
    if not sa.inspect(engine).has_table(LEDGER_TABLE):
        return []  # created on the first effect
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {LEDGER_TABLE}"))]


def _run(dag_id: str) -> Any:
    from airflow.utils.state import DagRunState

    dag_run = dagbag().dags[dag_id].test()
    return dag_run, DagRunState


def test_manual_rule_updates_matching_rows_and_logs_the_run(store: RuleStore, app_db: sa.Engine) -> None:
    apply_rules(store, RULES / "flag-big-paid-orders.yaml")
    expected = {r["id"] for r in _orders(app_db, "status = 'paid' AND total >= 1000")}
    untouched_before = _orders(app_db, "NOT (status = 'paid' AND total >= 1000) OR total IS NULL")
    assert expected, "the demo data must contain big paid orders"

    dag_run, states = _run("rule__acme__flag-big-paid-orders")

    assert dag_run.state == states.SUCCESS
    assert {
        r["id"] for r in _orders(app_db, "priority = 'high' AND status = 'paid' AND total >= 1000")
    } == expected
    assert _orders(app_db, "NOT (status = 'paid' AND total >= 1000) OR total IS NULL") == untouched_before
    ledger = _ledger(app_db)
    assert len(ledger) == len(expected) and {row["action_id"] for row in ledger} == {"flag"}
    log = store.get_run(dag_id="rule__acme__flag-big-paid-orders", run_id=dag_run.run_id)
    assert log is not None and log.status == "success" and log.matched_count == len(expected)
    assert log.spec_hash == store.get(organization="acme", kind="rule", name="flag-big-paid-orders").spec_hash
    assert log.trace["selected_in"] == "sql" and log.trace["evaluated"] == len(_orders(app_db))
    traced = log.trace["rows"]
    assert traced and all("node" in row and "matched" in row for row in traced)
    assert {r.action_id: (r.status, r.attempts) for r in log.actions} == {"flag": ("success", 1)}
    assert log.actions[0].output["applied"] == len(expected)


def test_foreign_key_path_and_dependent_actions(store: RuleStore, app_db: sa.Engine) -> None:
    apply_rules(store, RULES / "escalate-vip-orders.yaml")
    with app_db.connect() as conn:
        expected = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.tier = 'vip' "
                    "AND o.total > 500 AND o.status IN ('pending', 'payment_failed') "
                    "AND (o.priority IS NULL OR o.priority <> 'urgent')"
                )
            )
        }
    assert expected

    dag_run, states = _run("rule__acme__escalate-vip-orders")

    assert dag_run.state == states.SUCCESS
    rows = {r["id"]: r for r in _orders(app_db)}
    assert {i for i, r in rows.items() if r["priority"] == "urgent"} >= expected
    for order_id in expected:
        assert rows[order_id]["note"] == "escalated by rule acme/escalate-vip-orders"
    assert len(_ledger(app_db)) == 2 * len(expected)


def test_a_scheduled_target_run_acts_on_at_most_the_cap_and_the_next_run_on_the_rest(
    store: RuleStore, app_db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AUTOMATION_MAX_MATCHES`` caps one run; rows the conditions still select wait for the next."""
    apply_rules(store, RULES / "escalate-vip-orders.yaml")  # excludes rows already urgent
    monkeypatch.setenv("AUTOMATION_MAX_MATCHES", "2")

    def urgent() -> list[int]:
        return [r["id"] for r in _orders(app_db, "priority = 'urgent'")]

    before = urgent()
    first, states = _run("rule__acme__escalate-vip-orders")
    after_first = urgent()
    second, _ = _run("rule__acme__escalate-vip-orders")

    assert first.state == second.state == states.SUCCESS
    assert len(after_first) - len(before) == 2
    assert len(urgent()) - len(after_first) == 2
    log = store.get_run(dag_id="rule__acme__escalate-vip-orders", run_id=first.run_id)
    assert log is not None and log.matched_count == 2


def test_no_match_skips_the_actions(store: RuleStore, app_db: sa.Engine) -> None:
    with app_db.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'pending' WHERE status = 'paid'"))
    apply_rules(store, RULES / "flag-big-paid-orders.yaml")
    before = _orders(app_db)

    dag_run, states = _run("rule__acme__flag-big-paid-orders")

    assert dag_run.state == states.SUCCESS
    states_by_task = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states_by_task["flag"] == "skipped" and states_by_task["evaluate_conditions"] == "skipped"
    assert _orders(app_db) == before and _ledger(app_db) == []
    log = store.get_run(dag_id="rule__acme__flag-big-paid-orders", run_id=dag_run.run_id)
    assert log is not None and log.status == "no_match" and log.matched_count == 0


def test_soft_delete_sets_the_catalog_flag(store: RuleStore, app_db: sa.Engine) -> None:
    apply_rules(store, RULES / "archive-void-orders.yaml")
    targets = {r["id"] for r in _orders(app_db, "status IN ('void', 'cancelled') AND deleted = 0")}
    assert targets
    count_before = len(_orders(app_db))

    dag_run, states = _run("rule__acme__archive-void-orders")

    assert dag_run.state == states.SUCCESS
    assert {r["id"] for r in _orders(app_db, "status IN ('void', 'cancelled') AND deleted = 0")} == set()
    assert len(_orders(app_db)) == count_before  # soft: rows kept


def test_a_failing_action_fails_the_run_and_is_logged(store: RuleStore, app_db: sa.Engine) -> None:
    apply_rules(store, RULES / "flag-big-paid-orders.yaml")
    with app_db.begin() as conn:  # the action's column is gone: a permanent error, no retry storm
        conn.execute(sa.text("ALTER TABLE orders DROP COLUMN priority"))

    dag_run, states = _run("rule__acme__flag-big-paid-orders")

    assert dag_run.state == states.FAILED
    log = store.get_run(dag_id="rule__acme__flag-big-paid-orders", run_id=dag_run.run_id)
    assert log is not None and log.status == "failed"
    flag = next(r for r in log.actions if r.action_id == "flag")
    assert flag.status == "failed" and flag.attempts == 1 and "priority" in (flag.error or "")
    assert _ledger(app_db) == []


def test_a_rule_edited_mid_run_executes_the_version_the_run_started_with(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path
) -> None:
    apply_rules(store, RULES / "flag-big-paid-orders.yaml")  # v1 sets priority 'high'
    v1_hash = store.get(organization="acme", kind="rule", name="flag-big-paid-orders").spec_hash
    data = yaml.safe_load((RULES / "flag-big-paid-orders.yaml").read_text())
    data["actions"][0]["values"] = {"priority": "edited"}
    edited = tmp_path / "flag-big-paid-orders.yaml"
    edited.write_text(yaml.safe_dump(data))
    apply_rules(store, edited)  # v2 sets priority 'edited'
    dag = dagbag().dags["rule__acme__flag-big-paid-orders"]
    # The evaluate task ran under v1 (it records v1's hash); the action task was parsed from v2.
    dag.get_task("evaluate_conditions").spec_hash = v1_hash

    from airflow.utils.state import DagRunState

    dag_run = dag.test()

    assert dag_run.state == DagRunState.SUCCESS
    assert _orders(app_db, "priority = 'edited'") == []
    assert _orders(app_db, "status = 'paid' AND total >= 1000 AND priority = 'high'")


@pytest.mark.postgres
def test_a_rule_runs_against_postgres_through_airflow_connections(
    pg_store: RuleStore, pg_app_db: sa.Engine
) -> None:
    """Store and application database on the real Postgres; the connection resolved by Airflow."""
    apply_rules(pg_store, RULES / "escalate-vip-orders.yaml")
    with pg_app_db.connect() as conn:
        expected = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.tier = 'vip' "
                    "AND o.total > 500 AND o.status IN ('pending', 'payment_failed') "
                    "AND (o.priority IS NULL OR o.priority <> 'urgent')"
                )
            )
        }
    assert expected

    dag_run, states = _run("rule__acme__escalate-vip-orders")
    again = dagbag().dags["rule__acme__escalate-vip-orders"].test()  # a second run finds nothing left

    assert dag_run.state == states.SUCCESS and again.state == states.SUCCESS
    assert {r["id"] for r in _orders(pg_app_db, "priority = 'urgent'")} >= expected
    assert len(_ledger(pg_app_db)) == 2 * len(expected)
    log = pg_store.get_run(dag_id="rule__acme__escalate-vip-orders", run_id=dag_run.run_id)
    assert log is not None and log.status == "success" and log.matched_count == len(expected)
    second = pg_store.get_run(dag_id="rule__acme__escalate-vip-orders", run_id=again.run_id)
    assert second is not None and second.status == "no_match"
