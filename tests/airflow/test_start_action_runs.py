"""Real `dag.test()` runs on Postgres (rule store and application database) of rules whose actions start
stored definitions: ``trigger_workflow`` starts one child run per occurrence however often the run is
repeated.

The child workflow DAG is a hand-written manual DAG with the id a stored workflow gets
(``workflow__acme__follow-up``), written into Airflow's metadata database here: the workflow kind is
built in parallel, and what is tested is the starting, not the child's own tasks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document, register
from rule_compiler.runtime.idempotency import idempotency_key, triggered_run_id
from rule_compiler.store import RuleStore
from tests.airflow.conftest import dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.usefixtures("airflow_db")]
RULE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"
CHILD = "workflow__acme__follow-up"
#: A stored manual workflow's source, as the registration checks read it.
FOLLOW_UP = {
    "kind": "workflow",
    "name": "follow-up",
    "organization": "acme",
    "nodes": [{"id": "start", "type": "trigger", "trigger": {"type": "manual"}}],
}
LOGICAL = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _rule(name: str, action: dict[str, Any]) -> dict[str, Any]:
    data = read_definition_file(RULE)
    return {**data, "name": name, "actions": [{"id": "start-next", **action}]}


def _register(store: RuleStore, data: dict[str, Any], stored: dict[str, Any]) -> str:
    compiled = compile_document(data, Catalog.model_validate(store.get_catalog("acme")), stored=stored)
    register(store, compiled, actor="test")
    return str(compiled.dag_id)


def _write_child_dag() -> None:
    """The child workflow's DAG in Airflow's metadata database, as the DAG processor would write it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    with DAG(dag_id=CHILD, schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) as child:
        EmptyOperator(task_id="start")
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(child)], {}, None, set(), session=session
        )


def _child_runs() -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.scalars(sa.select(DagRun).where(DagRun.dag_id == CHILD)).all()
        return [(run.run_id, dict(run.conf or {}), str(run.run_type)) for run in runs]


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
    dag_id = _register(pg_store, _rule("start-follow-up", action), {"workflow": {"follow-up": FOLLOW_UP}})
    _write_child_dag()
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
