"""``POST /rules/{name}/runs/{run_id}/rerun`` and ``…/cancel`` through the real app (and ``rule-compiler
runs cancel``), against Airflow's real metadata DB.

Airflow knows the rule's DAG as the loader renders it (tests/api/airflow_dags.py) and the run is started
through our trigger route. No task runs here: the run's task instances are put in the states a run
whose action failed ends in (and the automation log says so), as the scheduler and the tasks would.
What a re-run then does to the effects rests on the ledgers' keys, which hold the run id the re-run
keeps (tests/runtime and tests/airflow prove an effect is applied once per key).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from tests.api.airflow_dags import dag_syncer
from tests.api.conftest import Api, create

pytestmark = pytest.mark.airflow
NAME = "flag-big-paid-orders"
DAG_ID = f"rule__acme__{NAME}"


def _states(run_id: str) -> tuple[str, dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        run_state = session.scalar(sa.select(DagRun.state).where(DagRun.run_id == run_id))
        tis = session.execute(
            sa.select(TaskInstance.task_id, TaskInstance.state).where(TaskInstance.run_id == run_id)
        ).all()
        return str(run_state), dict(tis)


def _set_states(run_id: str, run_state: str, states: dict[str, str]) -> None:
    """The run's task instances created (as the scheduler does) and put in ``states``."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.run_id == run_id))
        assert dag_run is not None
        dag_run.dag = DBDagBag().get_dag_for_run(dag_run, session=session)
        dag_run.verify_integrity(dag_version_id=dag_run.created_dag_version_id, session=session)
        session.flush()
        for ti in session.scalars(sa.select(TaskInstance).where(TaskInstance.run_id == run_id)):
            ti.state = states.get(ti.task_id)
        dag_run.state = run_state


def _end_failed(run_id: str) -> None:
    """The run as it ends when its action failed: evaluate ok, flag and the outcome failed, run failed."""
    _set_states(
        run_id, "failed", {"evaluate_conditions": "success", "flag": "failed", "record_outcome": "failed"}
    )


@pytest.fixture
def failed_run(api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    create(api)
    dag_syncer(store, monkeypatch, tmp_path)()
    started = api.as_("ed").post(f"/rules/{NAME}/trigger")
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    run_pk = store.start_run(
        organization="acme",
        rule_name=NAME,
        dag_id=DAG_ID,
        run_id=run_id,
        spec_hash="0" * 64,
        trigger_type="manual",
        trigger_context={},
    )
    store.record_evaluation(run_pk, trace={"evaluated": 3, "matched": 2}, matched_count=2, status="running")
    store.record_action(run_pk, "flag", status="failed", error="OperationalError: the database went away")
    store.finish_run(run_pk, "failed")
    _end_failed(run_id)
    return run_id


def test_the_failed_action_and_what_follows_run_again_in_the_same_run(
    api: Api, store: RuleStore, failed_run: str
) -> None:
    answer = api.as_("ed").post(f"/rules/{NAME}/runs/{failed_run}/rerun")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["run_id"], body["failed"], body["cleared"]) == (
        failed_run,
        ["flag"],
        ["flag", "record_outcome"],
    )
    state, tasks = _states(failed_run)
    assert state == "queued"
    assert tasks == {"evaluate_conditions": "success", "flag": None, "record_outcome": None}
    [audit] = api.as_("ada").get("/audit", params={"kind": "run", "action": "update"}).json()["items"]
    assert audit["detail"]["rerun"] == ["flag"] and audit["actor"] == "ed"

    again = api.as_("ed").post(f"/rules/{NAME}/runs/{failed_run}/rerun")  # queued: not before it ends
    assert again.status_code == 409 and "still queued" in again.text


def test_what_cannot_be_rerun(api: Api, store: RuleStore, failed_run: str) -> None:
    assert api.as_("vera").post(f"/rules/{NAME}/runs/{failed_run}/rerun").status_code == 403
    assert api.as_("ed").post(f"/rules/{NAME}/runs/no-such-run/rerun").status_code == 404
    assert api.as_("gina").post(f"/rules/{NAME}/runs/{failed_run}/rerun").status_code == 404
    run = store.get_run(dag_id=DAG_ID, run_id=failed_run)
    assert run is not None
    store.record_action(run.id, "flag", status="success", output={"applied": 2}, count_attempt=False)
    nothing = api.as_("ed").post(f"/rules/{NAME}/runs/{failed_run}/rerun")
    assert nothing.status_code == 409 and "no failed action" in nothing.text
    assert _states(failed_run)[0] == "failed"  # Airflow was not touched


@pytest.fixture
def started(api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], str]:
    """Start a run of the rule (queued in Airflow, not in the automation log yet); its run id."""
    create(api)
    dag_syncer(store, monkeypatch, tmp_path)()

    def start() -> str:
        answer = api.as_("ed").post(f"/rules/{NAME}/trigger")
        assert answer.status_code == 201, answer.text
        return str(answer.json()["run_id"])

    return start


def test_a_running_rule_run_is_cancelled(api: Api, store: RuleStore, started: Callable[[], str]) -> None:
    run_id = started()
    _set_states(run_id, "running", {"evaluate_conditions": "running"})
    path = f"/rules/{NAME}/runs/{run_id}/cancel"
    assert api.as_("vera").post(path).status_code == 403  # viewers may not
    assert api.as_("gina").post(path).status_code == 404  # another organization's
    cancelled = api.as_("ed").post(path)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"run_id": run_id, "cancelled": True, "tasks_ended": 1}
    assert _states(run_id) == (
        "failed",
        {"evaluate_conditions": "failed", "flag": "skipped", "record_outcome": "skipped"},
    )
    log = store.get_run(dag_id=DAG_ID, run_id=run_id)
    assert (
        log is not None and (log.status, log.cancelled_by) == ("failed", "ed") and store.run_cancelled(log.id)
    )
    [audit] = store.audit_entries(organization="acme", kind="rule_run")
    assert (audit.actor, audit.detail) == ("ed", {"run_id": run_id, "cancelled": True, "tasks_ended": 1})
    again = api.as_("ed").post(path)
    assert again.status_code == 409 and "is not queued, running or waiting" in again.text
    rerun = api.as_("ed").post(f"/rules/{NAME}/runs/{run_id}/rerun")
    assert rerun.status_code == 409 and "cancelled" in rerun.text


def test_the_cli_cancels_a_queued_run(
    store: RuleStore, started: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    from rule_engine.console_script import main

    run_id = started()
    assert main(["runs", "cancel", "rule", f"acme/{NAME}", run_id, "--actor", "olga"]) == 0
    assert f"run {run_id} of {DAG_ID} cancelled: 0 task(s) ended" in capsys.readouterr().out
    assert _states(run_id)[0] == "failed"
    log = store.get_run(dag_id=DAG_ID, run_id=run_id)
    assert log is not None and log.cancelled_by == "olga"
    assert log.trigger_context["cancelled_before_it_started"] is True
    [audit] = store.audit_entries(organization="acme", kind="rule_run")
    assert audit.actor == "olga" and audit.detail["cancelled"] is True
    assert main(["runs", "cancel", "rule", f"acme/{NAME}", run_id]) == 2  # once
    assert main(["runs", "cancel", "rule", f"globex/{NAME}", run_id]) == 2  # not globex's rule
    assert main(["runs", "cancel", "rule", NAME, run_id]) == 2  # ORG/NAME
    assert "give the definition as ORG/NAME" in capsys.readouterr().err
