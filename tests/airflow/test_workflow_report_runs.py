"""Real `dag.test()` runs of workflows with a report node (ADR 0010): the report of the run's data
interval for a schedule trigger, of the report's own last complete interval for a manual one; one report
run and one of each delivery per run and node, however often the run is repeated; the items go on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_in, context_from_store, register
from rule_compiler.runtime.idempotency import generated_delivery_key, idempotency_key
from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore, report_runs
from tests.airflow.conftest import dagbag
from tests.airflow.notify_helpers import Inbox
from tests.airflow.report_support import WEEK_END, WEEK_START, WEEKLY_ID, task_xcom
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"
MONDAY = ROOT / "include" / "workflows" / "monday-sales-review.yaml"
#: A Friday: the report's own last complete week before it ended on Monday 2026-11-16 07:00 Berlin.
FRIDAY = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
MANUAL: dict[str, Any] = {
    "kind": "workflow",
    "name": "sales-on-demand",
    "organization": "acme",
    "nodes": [
        {"id": "start", "type": "trigger", "trigger": {"type": "manual"}},
        {"id": "weekly-report", "type": "report", "report": "weekly-sales", "parameters": {"min_total": 50}},
    ],
    "connections": [{"from": "start", "to": "weekly-report"}],
}


def _apply(store: RuleStore, *documents: dict[str, Any]) -> None:
    for data in documents:
        register(store, compile_in(data, context_from_store(store, "acme", data)), actor="test")


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _node_key(workflow: str, run_id: str) -> str:
    return idempotency_key(f"acme/{workflow}", run_id, "weekly-report", None, kind="workflow")


def _sent(store: RuleStore, key: str) -> list[tuple[str, int]]:
    rows = [report_runs.get_report_delivery(store.engine, generated_delivery_key(key, i)) for i in (0, 1)]
    return [(row.status, row.attempts) if row is not None else ("missing", 0) for row in rows]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_scheduled_workflow_reports_its_run_interval_and_passes_its_items_on(
    backend: str, request: pytest.FixtureRequest, smtp: Inbox, folders: dict[str, Path]
) -> None:
    """On SQLite and on the real Postgres (rule store and application database)."""
    from airflow.utils.state import DagRunState

    store: RuleStore = request.getfixturevalue("store" if backend == "sqlite" else "pg_store")
    request.getfixturevalue("app_db" if backend == "sqlite" else "pg_app_db")

    _apply(store, read_definition_file(REPORT), read_definition_file(MONDAY))
    dag = dagbag().dags["workflow__acme__monday-sales-review"]

    dag_run = dag.test(logical_date=WEEK_END, run_after=WEEK_END)

    assert dag_run.state == DagRunState.SUCCESS, _states(dag_run)
    assert _states(dag_run)["weekly-report"] == "success"
    [run] = report_runs.list_report_runs(store.engine, organization="acme", report_name="weekly-sales")
    key = _node_key("monday-sales-review", dag_run.run_id)
    assert run.run_id == f"generated__{key[:32]}" and run.status == "success"
    assert (run.interval_start, run.interval_end) == (WEEK_START, WEEK_END)  # the run's data interval
    assert _sent(store, key) == [("sent", 1), ("sent", 1)] and len(smtp.messages) == 1
    assert report_runs.get_report_delivery(store.engine, delivery_key(WEEKLY_ID, WEEK_END, 0)) is None
    stored = [p for p in folders["storage"].rglob("*") if p.is_file()]
    assert WEEK_END.isoformat()[:10] in str(stored[0]) and len(stored) == 4
    # the node passes on every item it received (the target's orders), with its result beside them
    start, node = task_xcom(dag_run, "start"), task_xcom(dag_run, "weekly-report")
    assert node["matched_keys"] == start["matched_keys"] and len(node["matched_keys"]) > 1
    assert node["result"]["runs"][0]["status"] == "success"
    log = store.get_run(dag_id=dag.dag_id, run_id=dag_run.run_id)
    assert log is not None and log.status == "success"
    [result] = [r for r in log.actions if r.action_id == "weekly-report"]
    assert result.status == "success" and result.output["sent"] == 2


def test_a_manual_workflow_reports_the_reports_own_last_interval_once_per_run(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    from airflow.utils.state import DagRunState

    _apply(store, read_definition_file(REPORT), MANUAL)
    dag = dagbag().dags["workflow__acme__sales-on-demand"]

    first = dag.test(logical_date=FRIDAY, run_after=FRIDAY)
    again = dag.test(logical_date=FRIDAY, run_after=FRIDAY)  # the same run repeated: nothing sent twice

    assert first.run_id == again.run_id and again.state == DagRunState.SUCCESS, _states(again)
    [run] = report_runs.list_report_runs(store.engine, organization="acme", report_name="weekly-sales")
    key = _node_key("sales-on-demand", first.run_id)
    assert run.run_id == f"generated__{key[:32]}" and run.parameters == {"min_total": 50}
    assert run.interval_end == dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC)
    assert run.interval_start == dt.datetime(2026, 11, 9, 6, 0, tzinfo=dt.UTC)
    assert _sent(store, key) == [("sent", 1), ("sent", 1)] and len(smtp.messages) == 1
    log = store.get_run(dag_id=dag.dag_id, run_id=again.run_id)
    assert log is not None and log.status == "success"
    [result] = [r for r in log.actions if r.action_id == "weekly-report"]
    assert (result.output["sent"], result.output["already_sent"]) == (0, 2)


def test_a_report_node_whose_report_is_gone_fails_the_node_and_the_run(
    store: RuleStore, app_db: sa.Engine, folders: dict[str, Path]
) -> None:
    from airflow.utils.state import DagRunState

    _apply(store, read_definition_file(REPORT), MANUAL)
    store.delete(organization="acme", kind="report", name="weekly-sales", actor="test")
    dag = dagbag().dags["workflow__acme__sales-on-demand"]

    dag_run = dag.test(logical_date=FRIDAY, run_after=FRIDAY)

    assert dag_run.state == DagRunState.FAILED
    assert _states(dag_run)["weekly-report"] == "failed"
    log = store.get_run(dag_id=dag.dag_id, run_id=dag_run.run_id)
    assert log is not None and log.status == "failed"
    [result] = [r for r in log.actions if r.action_id == "weekly-report"]
    assert result.status == "failed" and "report 'weekly-sales' is not stored" in (result.error or "")
    assert report_runs.list_report_runs(store.engine, organization="acme") == []
