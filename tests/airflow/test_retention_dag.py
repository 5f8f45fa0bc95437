"""The ``rule_engine_retention`` maintenance DAG under a real DagBag and real ``dag.test()`` runs: it
purges the rule store's finished runs past their retention, archived to the administrator's storage
when asked, and the old ledger rows of the application database a record rule writes to; a setting
that would let an event act twice fails the run before anything goes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.runtime.record_effects import ensure_ledger, ledger
from rule_compiler.schedules import shortest_interval
from rule_compiler.store import RuleStore
from rule_compiler.store.archive import read_rows
from rule_compiler.store.tables import automation_runs
from tests.airflow.conftest import dagbag
from tests.airflow.test_outbox_purge_dag import _apply, _rule

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
DAG_ID = "rule_engine_retention"
NOW = dt.datetime.now(dt.UTC)


def _run() -> Any:
    dag = dagbag().dags[DAG_ID]
    for task in dag.tasks:
        task.retries = 0  # dag.test() would otherwise wait out the retry delay
    return dag.test()


def _seed(store: RuleStore, app_db: sa.Engine) -> None:
    """Runs finished 100 and 10 days ago; ledger rows applied 40 and 5 days ago."""
    with store.engine.begin() as conn:
        conn.execute(
            automation_runs.insert(),
            [
                {
                    "organization": "acme",
                    "rule_name": "watch-orders",
                    "dag_id": "rule__acme__watch-orders",
                    "run_id": f"run-{age}",
                    "spec_hash": "h" * 64,
                    "trigger_type": "event",
                    "trigger_context_json": "{}",
                    "status": "success",
                    "matched_count": 1,
                    "started_at": NOW - dt.timedelta(days=age),
                    "finished_at": NOW - dt.timedelta(days=age),
                }
                for age in (100, 10)
            ],
        )
    ensure_ledger(app_db)
    with app_db.begin() as conn:
        conn.execute(
            ledger.insert(),
            [
                {
                    "idempotency_key": f"k{age}",
                    "rule_id": "acme/watch-orders",
                    "action_id": "mark",
                    "occurrence_id": "o",
                    "effect": "update",
                    "applied_at": NOW - dt.timedelta(days=age),
                }
                for age in (40, 5)
            ],
        )


def _left(store: RuleStore, app_db: sa.Engine) -> tuple[list[str], list[str]]:
    with store.engine.connect() as conn:
        runs = sorted(conn.execute(sa.select(automation_runs.c.run_id)).scalars())
    with app_db.connect() as conn:
        keys = sorted(conn.execute(sa.select(ledger.c.idempotency_key)).scalars())
    return runs, keys


def test_the_dag_parses_daily_and_unpaused(store: RuleStore) -> None:
    bag = dagbag()
    assert not [path for path in bag.import_errors if path.endswith("rule_engine_maintenance.py")]
    dag = bag.dags[DAG_ID]
    assert sorted(dag.task_ids) == ["purge_ledgers", "purge_store"]
    assert shortest_interval(dag.timetable.expression) == dt.timedelta(days=1)
    assert dag.is_paused_upon_creation is False and dag.catchup is False and dag.max_active_runs == 1


def test_a_run_purges_and_archives_old_runs_and_old_ledger_rows(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    _apply(store, tmp_path, _rule("watch-orders", "app_db", "orders", {"priority": "high"}))
    _seed(store, app_db)
    archive = tmp_path / "storage"
    monkeypatch.setenv("AUTOMATION_REPORTS_STORAGE", str(archive))
    monkeypatch.setenv("AUTOMATION_RETENTION_ARCHIVE", "true")

    dag_run = _run()

    assert dag_run.state == DagRunState.SUCCESS
    assert _left(store, app_db) == (["run-10"], ["k5"])
    (file,) = archive.glob("acme/archive/runs/*/*.jsonl.gz")
    assert [row["run_id"] for row in read_rows(file.read_bytes())] == ["run-100"]
    summary = dag_run.get_task_instance("purge_store").xcom_pull(task_ids="purge_store")
    assert [r["purged"] for r in summary["runs"]] == [1]
    assert dag_run.get_task_instance("purge_ledgers").xcom_pull(task_ids="purge_ledgers") == {"app_db": 1}


def test_a_setting_that_would_act_twice_fails_the_run_and_nothing_goes(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState

    _apply(store, tmp_path, _rule("watch-orders", "app_db", "orders", {"priority": "high"}))
    _seed(store, app_db)
    monkeypatch.setenv("AUTOMATION_RETENTION_LEDGER", "3d")  # shorter than the outbox's 7 days

    assert _run().state == DagRunState.FAILED
    assert _left(store, app_db) == (["run-10", "run-100"], ["k40", "k5"])
