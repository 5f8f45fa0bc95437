"""Real `dag.test()` runs of a data rule on the demo database: the sensor gates the actions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DATA_SENSOR_TASK, DagSpec
from rule_compiler.registration import Compiled, compile_document, register
from rule_compiler.store import RuleStore
from tests.airflow.conftest import DEMO_NOW, dagbag

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
DAG_ID = "rule__acme__flag-failed-payments"
#: Failed payments updated at or before the run's logical date (a bind parameter, never the clock).
FAILED = "SELECT count(*) FROM orders WHERE status = 'payment_failed' AND updated_at <= :logical_date"
#: Between the demo's failed payments (updated 2, 4, 25 and 70 hours before DEMO_NOW).
LOGICAL_DATE = DEMO_NOW - dt.timedelta(hours=10)


def _rule(check: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "rule",
        "name": "flag-failed-payments",
        "organization": "acme",
        "trigger": {
            "type": "data",
            "connection": "app_db",
            "sql": FAILED,
            "check": check,
            "schedule": "*/15 * * * *",
        },
        "actions": [
            {
                "id": "flag",
                "type": "update_record",
                "connection": "app_db",
                "table": "orders",
                "where": {"field": "status", "operator": "equals", "value": "payment_failed"},
                "values": {"priority": "urgent"},
            }
        ],
    }


def _apply(store: RuleStore, check: dict[str, Any], **sensor: int) -> Compiled:
    """Register the rule; ``sensor`` overrides the compiled sensor's params (test speed only)."""
    catalog = Catalog.model_validate(store.get_catalog("acme"))
    compiled = compile_document(_rule(check), catalog)
    assert isinstance(compiled, Compiled)
    if sensor:
        tasks = tuple(
            t.model_copy(update={"params": {**t.params, **sensor}}) if t.task_id == DATA_SENSOR_TASK else t
            for t in compiled.spec.tasks
        )
        spec = compiled.spec.model_copy(update={"tasks": tasks})
        compiled = dataclasses.replace(
            compiled, spec=spec, spec_json=spec.to_json(), spec_hash=spec.spec_hash
        )
    register(store, compiled, actor="test")
    return compiled


def _failed_count(engine: sa.Engine, priority: str | None = None) -> int:
    sql = "SELECT count(*) FROM orders WHERE status = 'payment_failed'"
    with engine.connect() as conn:
        if priority is None:
            return int(conn.execute(sa.text(sql)).scalar_one())
        return int(conn.execute(sa.text(sql + " AND priority = :p"), {"p": priority}).scalar_one())


def _failed_before(engine: sa.Engine, moment: dt.datetime) -> int:
    orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
    query = sa.select(sa.func.count()).where(
        orders.c.status == "payment_failed", orders.c.updated_at <= moment
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _reschedules(dag_run: Any) -> int:
    """How often the sensor gave its slot back to wait for the next poke."""
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == DATA_SENSOR_TASK)
    with create_session() as session:
        query = sa.select(sa.func.count()).select_from(TaskReschedule).where(TaskReschedule.ti_id == ti.id)
        return int(session.scalar(query) or 0)


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_data_rule_renders_a_reschedule_sensor_gating_the_conditions(
    store: RuleStore, app_db: sa.Engine
) -> None:
    compiled = _apply(store, {"operator": "gt", "value": 0})
    dag = dagbag().dags[DAG_ID]
    sensor = dag.get_task(DATA_SENSOR_TASK)
    assert type(sensor).__name__ == "DataTriggerSensor"
    assert (sensor.mode, sensor.soft_fail, sensor.template_fields) == ("reschedule", True, ())
    assert (sensor.poke_interval, sensor.timeout) == (60, 3600)  # the definition's defaults
    assert dag.get_task("evaluate_conditions").upstream_task_ids == {DATA_SENSOR_TASK}
    assert dag.timetable.expression == "*/15 * * * *" and "render-error" not in dag.tags
    assert DagSpec.model_validate_json(compiled.spec_json).tasks[0].task_id == DATA_SENSOR_TASK


def test_check_holds_so_the_actions_run(store: RuleStore, app_db: sa.Engine) -> None:
    failed, before = _failed_count(app_db), _failed_before(app_db, LOGICAL_DATE)
    assert 0 < before < failed, "the logical date must fall between the demo's failed payments"
    _apply(store, {"operator": "equals", "value": before})  # holds only if :logical_date is bound
    assert _failed_count(app_db, "urgent") == 0

    dag_run = dagbag().dags[DAG_ID].test(logical_date=LOGICAL_DATE)

    assert str(dag_run.state) == "success", _states(dag_run)
    assert _states(dag_run)[DATA_SENSOR_TASK] == "success"
    assert _failed_count(app_db, "urgent") == failed
    sensor_ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == DATA_SENSOR_TASK)
    assert sensor_ti.xcom_pull(task_ids=DATA_SENSOR_TASK) == {
        "operator": "equals",
        "rows": 1,
        "value": before,
        "passed": True,
    }
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "success" and log.trigger_type == "data"


def test_check_never_holds_so_the_run_is_skipped_not_failed(store: RuleStore, app_db: sa.Engine) -> None:
    failed = _failed_before(app_db, LOGICAL_DATE)
    # poke every second, give up after two: the definition's minimums (5 s / 10 s) only make it slower
    _apply(store, {"operator": "gt", "value": failed}, poke_interval=1, timeout=2)
    before = _failed_count(app_db, "urgent")

    dag_run = dagbag().dags[DAG_ID].test(logical_date=LOGICAL_DATE)

    states = _states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states[DATA_SENSOR_TASK] == "skipped"
    assert _reschedules(dag_run) >= 1  # it waited between pokes (reschedule mode), then gave up
    assert states["evaluate_conditions"] == "skipped" and states["flag"] == "skipped"
    assert _failed_count(app_db, "urgent") == before
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "no_match" and not log.actions
    assert f"gt {failed}" in log.trace["note"] and "did not pass within 2 s" in log.trace["note"]
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:  # the run's note, set by the plugin's listener (rule_engine.run_notes)
        note = session.get(DagRun, dag_run.id).note
    assert note == f"no match: {log.trace['note']}"[:300]


def test_a_query_that_cannot_be_checked_fails_the_sensor(store: RuleStore, app_db: sa.Engine) -> None:
    """Misconfiguration is an error, never a quiet skip: text compared with gt fails the task."""
    _apply(store, {"operator": "gt", "value": 1})
    with store.engine.begin() as conn:  # the stored spec now selects text (the rule's SQL as if edited)
        row = conn.execute(
            sa.text("SELECT spec_json FROM compiled_specs WHERE dag_id = :d"), {"d": DAG_ID}
        ).one()
        spec = json.loads(row.spec_json)
        spec["tasks"][0]["params"]["sql"] = "SELECT status FROM orders ORDER BY id"
        spec["tasks"][0]["retries"] = 0
        conn.execute(
            sa.text("UPDATE compiled_specs SET spec_json = :j WHERE dag_id = :d"),
            {"j": DagSpec.model_validate(spec).to_json(), "d": DAG_ID},
        )
    before = _failed_count(app_db, "urgent")

    dag_run = dagbag().dags[DAG_ID].test()

    states = _states(dag_run)
    assert states[DATA_SENSOR_TASK] == "failed" and states["flag"] == "upstream_failed"
    assert str(dag_run.state) == "failed"
    assert _failed_count(app_db, "urgent") == before


def _edit_stored_sql(store: RuleStore, sql: str) -> None:
    with store.engine.begin() as conn:  # the stored spec as a spec stored before the allow-list
        row = conn.execute(
            sa.text("SELECT spec_json FROM compiled_specs WHERE dag_id = :d"), {"d": DAG_ID}
        ).one()
        spec = json.loads(row.spec_json)
        spec["tasks"][0]["params"]["sql"] = sql
        spec["tasks"][0]["retries"] = 0
        conn.execute(
            sa.text("UPDATE compiled_specs SET spec_json = :j WHERE dag_id = :d"),
            {"j": DagSpec.model_validate(spec).to_json(), "d": DAG_ID},
        )


def test_a_stored_query_off_the_allow_list_fails_the_sensor(store: RuleStore, app_db: sa.Engine) -> None:
    """The sensor checks the SQL again before each poke: an old spec's table_to_xml never runs."""
    _apply(store, {"operator": "gte", "value": 0})
    _edit_stored_sql(
        store, "SELECT count(*) FROM orders WHERE length(table_to_xml('secrets', true, false, '')) > 0"
    )
    before = _failed_count(app_db, "urgent")

    dag_run = dagbag().dags[DAG_ID].test(logical_date=LOGICAL_DATE)

    states = _states(dag_run)
    assert states[DATA_SENSOR_TASK] == "failed" and states["flag"] == "upstream_failed"
    assert _failed_count(app_db, "urgent") == before


def test_the_sensor_takes_the_query_role_from_the_current_catalog(
    store: RuleStore, app_db: sa.Engine
) -> None:
    """A role set after registration applies to the next poke (refused here: app_db is SQLite)."""
    _apply(store, {"operator": "gte", "value": 0})
    _edit_stored_sql(store, FAILED)  # unchanged SQL, no retries: the failure shows at once
    catalog = store.get_catalog("acme")
    assert catalog is not None
    catalog["connections"]["app_db"]["query_role"] = "automation_reader"
    store.put_catalog(organization="acme", catalog=catalog, actor="root")

    dag_run = dagbag().dags[DAG_ID].test(logical_date=LOGICAL_DATE)

    assert _states(dag_run)[DATA_SENSOR_TASK] == "failed"
