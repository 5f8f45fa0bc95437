"""Real `dag.test()` runs on Postgres (rule store and application database) of rules whose actions start
stored definitions: ``trigger_workflow`` starts one child run per occurrence however often the run is
repeated, and ``generate_report`` makes one report run (and one of each delivery) per occurrence.

The child is a stored manual workflow over ``orders``; its DAG (built by the loader from the store) is
written into Airflow's metadata database as the DAG processor would. The child's run, tested with the
conf its parent handed over, acts on exactly the rows whose keys it was handed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document, register
from rule_compiler.runtime.idempotency import generated_delivery_key, idempotency_key, triggered_run_id
from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore
from tests.airflow.conftest import dagbag
from tests.airflow.notify_helpers import Inbox
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.usefixtures("airflow_db")]
RULE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"
CHILD = "workflow__acme__follow-up"
#: A manual workflow over orders: it notes each order it is handed.
FOLLOW_UP = {
    "kind": "workflow",
    "name": "follow-up",
    "organization": "acme",
    "nodes": [
        {
            "id": "start",
            "type": "trigger",
            "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
        },
        {
            "id": "note-it",
            "type": "action",
            "action": {
                "type": "update_record",
                "connection": "app_db",
                "table": "orders",
                "values": {"note": "followed up"},
            },
        },
    ],
    "connections": [{"from": "start", "to": "note-it"}],
}
LOGICAL = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _rule(name: str, action: dict[str, Any]) -> dict[str, Any]:
    data = read_definition_file(RULE)
    return {**data, "name": name, "actions": [{"id": "start-next", **action}]}


def _register(store: RuleStore, data: dict[str, Any], stored: dict[str, Any]) -> str:
    compiled = compile_document(data, Catalog.model_validate(store.get_catalog("acme")), stored=stored)
    register(store, compiled, actor="test")
    return str(compiled.dag_id)


def _write_child_dag() -> Any:
    """The child workflow's DAG (the loader's) in Airflow's metadata database, as the DAG processor
    would write it; the DAG itself."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    child = dagbag().dags[CHILD]
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(child)], {}, None, set(), session=session
        )
    return child


def _child_runs() -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.scalars(sa.select(DagRun).where(DagRun.dag_id == CHILD)).all()
        return [(run.run_id, dict(run.conf or {}), str(run.run_type)) for run in runs]


def _order_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one())


def _big_paid_orders(engine: sa.Engine) -> list[list[int]]:
    with engine.connect() as conn:
        ids = conn.execute(
            sa.text("SELECT id FROM orders WHERE status = 'paid' AND total >= 1000 ORDER BY id")
        )
        return [[int(row[0])] for row in ids]


def test_trigger_workflow_run_twice_for_one_occurrence_starts_one_child(
    pg_store: RuleStore, pg_app_db: sa.Engine
) -> None:
    action = {"type": "trigger_workflow", "workflow": "follow-up", "payload": {"by": "{{ rule.id }}"}}
    _register(pg_store, FOLLOW_UP, {})
    dag_id = _register(pg_store, _rule("start-follow-up", action), {"workflow": {"follow-up": FOLLOW_UP}})
    child = _write_child_dag()
    dag = dagbag().dags[dag_id]

    first = dag.test(logical_date=LOGICAL, run_after=LOGICAL)
    second = dag.test(logical_date=LOGICAL, run_after=LOGICAL)  # the same run again: the same occurrence

    assert first.run_id == second.run_id and str(second.state) == "success"
    key = idempotency_key("acme/start-follow-up", first.run_id, "start-next", None)
    [(run_id, conf, run_type)] = _child_runs()
    assert run_id == triggered_run_id(key) == f"triggered__{key[:32]}"
    assert run_type == "operator_triggered"
    expected = _big_paid_orders(pg_app_db)
    assert expected and conf["keys"] == expected
    assert conf["payload"] == {"by": "acme/start-follow-up"}
    assert conf["triggered_by"] == {
        "kind": "rule",
        "id": "acme/start-follow-up",
        "action_id": "start-next",
        "run_id": first.run_id,
        "occurrence": first.run_id,
    }
    log = pg_store.get_run(dag_id=dag_id, run_id=second.run_id)
    assert log is not None and log.status == "success"
    [result] = log.actions
    assert result.status == "success"
    assert result.output is not None
    assert (result.output["started"], result.output["already_started"]) == (0, 1)  # the second run's

    # The child, run with what it was handed, acts on exactly those orders.
    child_run = child.test(run_conf=conf)
    assert str(child_run.state) == "success"
    with pg_app_db.connect() as conn:
        noted = conn.execute(sa.text("SELECT id FROM orders WHERE note = 'followed up' ORDER BY id"))
        assert [[int(row[0])] for row in noted] == expected
    assert len(expected) < _order_count(pg_app_db)


def test_generate_report_run_twice_for_one_occurrence_delivers_once(
    pg_store: RuleStore, pg_app_db: sa.Engine, folders: dict[str, Path], smtp: Inbox
) -> None:
    from rule_compiler.store import report_runs

    catalog = Catalog.model_validate(pg_store.get_catalog("acme"))
    register(pg_store, compile_document(read_definition_file(REPORT), catalog), actor="test")
    report = pg_store.get(organization="acme", kind="report", name="weekly-sales")
    action = {"type": "generate_report", "report": "weekly-sales", "parameters": {"min_total": 100}}
    dag_id = _register(
        pg_store, _rule("report-big-orders", action), {"report": {"weekly-sales": report.source}}
    )
    dag = dagbag().dags[dag_id]

    first = dag.test(logical_date=LOGICAL, run_after=LOGICAL)
    second = dag.test(logical_date=LOGICAL, run_after=LOGICAL)  # the same occurrence again

    assert first.run_id == second.run_id and str(second.state) == "success"
    assert len(smtp.messages) == 1
    folders_written = sorted({p.parent for p in folders["storage"].rglob("*") if p.is_file()})
    assert len(folders_written) == 1 and len(list(folders_written[0].iterdir())) == 4  # one set of files
    [run] = report_runs.list_report_runs(pg_store.engine, organization="acme", report_name="weekly-sales")
    key = idempotency_key("acme/report-big-orders", first.run_id, "start-next", None)
    assert run.run_id == f"generated__{key[:32]}" and run.status == "success"
    assert run.dag_id == "report__acme__weekly-sales" and run.parameters == {"min_total": 100}
    # the last complete week of the report's own schedule (Mondays 07:00 Berlin) before the run
    assert (run.interval_start, run.interval_end) == (
        dt.datetime(2026, 11, 9, 6, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC),
    )
    for index in (0, 1):  # keyed by the action's key, never the report's own (its runs still send)
        sent = report_runs.get_report_delivery(pg_store.engine, generated_delivery_key(key, index))
        assert sent is not None and (sent.status, sent.attempts) == ("sent", 1)
        own = delivery_key("acme/weekly-sales", run.interval_end, index)
        assert report_runs.get_report_delivery(pg_store.engine, own) is None
    log = pg_store.get_run(dag_id=dag_id, run_id=second.run_id)
    assert log is not None and log.status == "success"
    [result] = log.actions
    assert result.output is not None
    assert (result.output["sent"], result.output["already_sent"]) == (0, 2)  # the second run's
    assert [r["status"] for r in result.output["runs"]] == ["success"]
