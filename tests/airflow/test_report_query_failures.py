"""Real `dag.test()` runs of `run_queries` with 2 retries: a query the run-time check refuses fails
the task on its first try (a retry cannot make it read-only), while a query stopped by its timeout is
tried again; both end the run as `error` with the reason in the execution log."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.compiler.report import QUERIES_TASK
from rule_compiler.registration import Compiled, register
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from tests.airflow.conftest import dagbag
from tests.airflow.report_support import WEEK_RUN, WEEKLY, apply_report, task_states, weekly_document

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db", "folders")]

#: Allowed SQL that runs far past a second: the demo's orders crossed with themselves seven times.
ENDLESS = "SELECT count(*) AS c FROM " + ", ".join(f"orders o{i}" for i in range(7))


def _register_with_first_query(store: RuleStore, compiled: Compiled, **changes: Any) -> None:
    """Register ``compiled`` with its first query changed as no validation would let it be (a spec
    stored before a stricter check, say), and 2 retries a second apart for `run_queries`."""
    task = next(t for t in compiled.spec.tasks if t.task_id == QUERIES_TASK)
    compiled_queries: Any = task.params["queries"]
    queries = [{**compiled_queries[0], **changes}, *compiled_queries[1:]]
    edited = task.model_copy(
        update={"params": {**task.params, "queries": queries}, "retries": 2, "retry_delay_seconds": 1}
    )
    spec = compiled.spec.model_copy(
        update={"tasks": tuple(edited if t.task_id == QUERIES_TASK else t for t in compiled.spec.tasks)}
    )
    register(
        store,
        dataclasses.replace(compiled, spec=spec, spec_json=spec.to_json(), spec_hash=spec.spec_hash),
        actor="test",
    )


def _run_queries_try(dag_run: Any) -> int:
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == QUERIES_TASK)
    return int(ti.try_number)


def _orders(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one())


def test_a_refused_query_fails_run_queries_at_once(store: RuleStore, app_db: sa.Engine) -> None:
    before = _orders(app_db)
    _register_with_first_query(store, apply_report(store, weekly_document()), sql="DELETE FROM orders")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert states["run_queries"] == "failed" and str(dag_run.state) == "failed", states
    assert _run_queries_try(dag_run) == 1  # not retried
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "error"
    assert "ReportQueryRefusedError: query 'daily' was refused" in (run.error or "")
    assert _orders(app_db) == before


def test_a_query_past_its_timeout_is_retried(store: RuleStore, app_db: sa.Engine) -> None:
    _register_with_first_query(store, apply_report(store, weekly_document()), sql=ENDLESS, timeout=1)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert states["run_queries"] == "failed" and str(dag_run.state) == "failed", states
    assert _run_queries_try(dag_run) == 3  # the first try and both retries
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "error"
    assert "query 'daily' ran longer than its timeout of 1 s" in (run.error or "")


def test_a_stored_query_off_the_allow_list_is_refused_when_it_runs(
    store: RuleStore, app_db: sa.Engine
) -> None:
    """A spec stored before the allow-list keeps its SQL; the run-time check refuses it, at once."""
    dump = "SELECT table_to_xml('secrets', true, false, '') AS x FROM orders LIMIT 1"
    _register_with_first_query(store, apply_report(store, weekly_document()), sql=dump)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    assert task_states(dag_run)["run_queries"] == "failed" and _run_queries_try(dag_run) == 1
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "error"
    assert "query 'daily' was refused: function table_to_xml() is not allowed" in (run.error or "")


def test_the_query_role_is_read_from_the_current_catalog(store: RuleStore, app_db: sa.Engine) -> None:
    """A platform admin sets a query role after the report was registered: the next run uses it (here
    it is refused, for good: app_db is SQLite, and roles are a Postgres feature)."""
    apply_report(store, weekly_document())
    catalog = store.get_catalog("acme")
    assert catalog is not None
    catalog["connections"]["app_db"]["query_role"] = "automation_reader"
    store.put_catalog(organization="acme", catalog=catalog, actor="root")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    assert task_states(dag_run)["run_queries"] == "failed" and _run_queries_try(dag_run) == 1
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and "query role 'automation_reader'" in (run.error or "")
    assert "roles are a Postgres feature" in (run.error or "")
