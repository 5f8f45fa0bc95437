"""``/approvals`` (inbox, answer) and ``POST /workflows/{name}/runs/{run_id}/cancel`` through the real app,
against Airflow's real metadata DB.

Airflow knows the workflow's DAG as ``dag.test()`` makes it know DAGs (tests/api/airflow_dags.py), and
its run is started through our trigger route. No task runs here: the approval task is put in
``awaiting_input`` with its HITL detail, and the approval recorded in our store, as the operator does
when it starts to wait (the operator side runs for real in tests/airflow/test_waiting_workflow_runs.py
and under ``airflow standalone`` in tests/airflow/test_waiting_standalone.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.store import ApprovalRequest, RuleStore
from tests.api.airflow_dags import dag_syncer
from tests.api.conftest import Api

pytestmark = pytest.mark.airflow
NAME = "ask-to-go-on"
DAG_ID = f"workflow__acme__{NAME}"
WORKFLOW = {
    "kind": "workflow",
    "name": NAME,
    "nodes": [
        {"id": "start", "type": "trigger", "trigger": {"type": "manual"}},
        {
            "id": "ask",
            "type": "approval",
            "subject": "Go on?",
            "assignees": ["ed", "vera"],
            "timeout": "1d",
        },
        {"id": "went-on", "type": "join"},
    ],
    "connections": [{"from": "start", "to": "ask"}, {"from": "ask", "to": "went-on", "when": "approved"}],
}


@pytest.fixture
def waiting(api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], Any]:
    """``waiting()``: a new run of the workflow whose approval waits; its (run_id, approval)."""
    created = api.as_("ed").post("/workflows", json=WORKFLOW)
    assert created.status_code == 201, created.text
    dag_syncer(store, monkeypatch, tmp_path)()

    def start() -> tuple[str, Any]:
        started = api.as_("ed").post(f"/workflows/{NAME}/trigger")
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
        _await_input(run_id)
        approval = store.open_approval(
            ApprovalRequest(
                organization="acme",
                workflow=NAME,
                dag_id=DAG_ID,
                run_id=run_id,
                node_id="ask",
                run_pk=run_pk,
                assignees=("ed", "vera"),
                subject="Go on?",
                body=None,
                items=("run",),
                item_count=1,
                on_timeout="rejected",
                deadline=None,
            )
        )
        return run_id, approval

    return start


def _await_input(run_id: str) -> None:
    """The run's task instances, the approval task waiting for input with its HITL detail."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.run_id == run_id))
        assert dag_run is not None
        dag_run.state = DagRunState.RUNNING
        dag_run.dag = DBDagBag().get_dag_for_run(dag_run, session=session)
        dag_run.verify_integrity(dag_version_id=dag_run.created_dag_version_id, session=session)
        session.flush()
        ti = session.scalar(
            sa.select(TaskInstance).where(TaskInstance.run_id == run_id, TaskInstance.task_id == "ask")
        )
        assert ti is not None
        ti.state = TaskInstanceState.AWAITING_INPUT
        session.add(_hitl_detail(ti.id))


def _hitl_detail(ti_id: Any) -> Any:
    from airflow.models.hitl import HITLDetail

    detail = HITLDetail(
        ti_id=ti_id,
        options=["Approve", "Reject"],
        subject="Approve acme/ask-to-go-on at ask? 1 item: run",
        defaults=["Reject"],
        multiple=False,
        params={},
        assignees=[{"id": "ed", "name": "ed"}, {"id": "vera", "name": "vera"}],
    )
    return detail


def _airflow_state(run_id: str) -> tuple[str, str, Any]:
    """(the run's state, the approval task's state, its HITL detail's chosen options and params)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.run_id == run_id))
        ti = session.scalar(
            sa.select(TaskInstance).where(TaskInstance.run_id == run_id, TaskInstance.task_id == "ask")
        )
        assert dag_run is not None and ti is not None
        detail = session.scalar(sa.select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        answer = (
            None if detail is None else (detail.chosen_options, detail.params_input, detail.responded_by_user)
        )
        return str(dag_run.state), str(ti.state), answer


def test_the_inbox_lists_what_waits_for_you_in_your_organization(
    api: Api, waiting: Callable[[], Any]
) -> None:
    _, approval = waiting()
    mine = api.as_("ed").get("/approvals")
    assert mine.status_code == 200, mine.text
    [entry] = mine.json()["items"]
    assert (entry["id"], entry["subject"], entry["status"], entry["assignees"]) == (
        approval.id,
        "Go on?",
        "waiting",
        ["ed", "vera"],
    )
    assert entry["answer_url"].endswith(f"/api/v1/approvals/{approval.id}/answer")
    assert entry["airflow_url"].endswith(f"/dags/{DAG_ID}/runs/{approval.run_id}/tasks/ask/required_actions")
    assert api.as_("ada").get("/approvals").json()["items"] == []  # an admin, not an assignee
    assert [a["id"] for a in api.as_("ada").get("/approvals", params={"all": "true"}).json()["items"]] == [
        approval.id
    ]
    assert api.as_("ed").get("/approvals", params={"all": "true"}).status_code == 403  # admins only
    assert api.as_("gus").get("/approvals", params={"all": "true"}).json()["items"] == []  # globex
    assert api.as_("gus").get(f"/approvals/{approval.id}").status_code == 404
    assert api.as_("vera").get(f"/approvals/{approval.id}").json()["id"] == approval.id


def test_an_assignee_answers_once_and_the_task_resumes(
    api: Api, store: RuleStore, waiting: Callable[[], Any]
) -> None:
    from airflow.utils.state import TaskInstanceState

    run_id, approval = waiting()
    refused = api.as_("ada").post(f"/approvals/{approval.id}/answer", json={"decision": "approve"})
    assert refused.status_code == 403 and "only its assignees (ed, vera)" in refused.json()["detail"]
    assert (
        api.as_("gus").post(f"/approvals/{approval.id}/answer", json={"decision": "approve"}).status_code
        == 404
    )
    bad = api.as_("vera").post(f"/approvals/{approval.id}/answer", json={"decision": "maybe"})
    assert bad.status_code == 422

    answered = api.as_("vera").post(
        f"/approvals/{approval.id}/answer", json={"decision": "approve", "comment": "go"}
    )
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["status"], body["answered_by"], body["answered_via"], body["comment"]) == (
        "approved",
        "vera",
        "rest",
        "go",
    )
    _, ti_state, answer = _airflow_state(run_id)
    assert ti_state == TaskInstanceState.SCHEDULED  # resumed: the scheduler runs execute_complete next
    assert answer == (["Approve"], {"comment": "go"}, {"id": "vera", "name": "vera"})
    [audit] = store.audit_entries(organization="acme", kind="approval")
    assert (audit.actor, audit.name, audit.detail["decision"], audit.detail["comment"]) == (
        "vera",
        NAME,
        "approved",
        "go",
    )

    again = api.as_("ed").post(f"/approvals/{approval.id}/answer", json={"decision": "reject"})
    assert again.status_code == 409 and "approved, not waiting" in again.json()["detail"]


def test_an_approval_answered_in_airflow_first_is_refused_here(
    api: Api, store: RuleStore, waiting: Callable[[], Any]
) -> None:
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session

    _, approval = waiting()
    with create_session() as session:  # answered through Airflow's UI: our row settles when the task resumes
        detail = session.scalars(sa.select(HITLDetail)).all()
        for row in detail:
            row.chosen_options = ["Reject"]
            row.responded_at = dt.datetime.now(dt.UTC)
    response = api.as_("ed").post(f"/approvals/{approval.id}/answer", json={"decision": "approve"})
    assert response.status_code == 409 and "answered already" in response.json()["detail"]
    assert store.get_approval(approval.id).status == "waiting"  # type: ignore[union-attr]


def test_a_waiting_run_is_cancelled_for_good(api: Api, store: RuleStore, waiting: Callable[[], Any]) -> None:
    run_id, approval = waiting()
    path = f"/workflows/{NAME}/runs/{run_id}/cancel"
    assert api.as_("vera").post(path).status_code == 403  # viewers may not
    cancelled = api.as_("ed").post(path)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"run_id": run_id, "cancelled": True, "tasks_ended": 1}
    run_state, ti_state, _ = _airflow_state(run_id)
    assert (run_state, ti_state) == ("failed", "failed")
    log = store.get_run(dag_id=DAG_ID, run_id=run_id)
    assert log is not None and (log.status, log.cancelled_by) == ("failed", "ed")
    assert store.run_cancelled(log.id)
    assert store.get_approval(approval.id).status == "cancelled"  # type: ignore[union-attr]
    assert api.as_("ed").post(path).status_code == 409  # once
    assert api.as_("ed").post(f"/workflows/{NAME}/runs/no-such-run/cancel").status_code == 404
    assert api.as_("ed").post(f"/workflows/nope/runs/{run_id}/cancel").status_code == 404
    [audit] = store.audit_entries(organization="acme", kind="workflow_run")
    assert audit.detail == {"run_id": run_id, "cancelled": True, "tasks_ended": 1}


def test_a_queued_run_is_cancelled_before_it_starts(
    api: Api, store: RuleStore, waiting: Callable[[], Any]
) -> None:
    """A run beyond the waiting-runs limit waits queued, with no automation-log entry yet: the cancel
    makes one, cancelled, so its start task takes nothing when it runs (if it ever does)."""
    started = api.as_("ed").post(f"/workflows/{NAME}/trigger")
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    assert store.get_run(dag_id=DAG_ID, run_id=run_id) is None
    cancelled = api.as_("ed").post(f"/workflows/{NAME}/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["tasks_ended"] == 0
    log = store.get_run(dag_id=DAG_ID, run_id=run_id)
    assert log is not None and log.cancelled_by == "ed" and store.run_cancelled(log.id)
    assert log.trigger_context["cancelled_before_it_started"] is True
    assert _airflow_run_state(run_id) == "failed"
    store.record_evaluation(log.id, trace={}, matched_count=0, status="running")  # its start task, late
    assert store.get_run(dag_id=DAG_ID, run_id=run_id).status == "failed"  # type: ignore[union-attr]


def _airflow_run_state(run_id: str) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return str(session.scalar(sa.select(DagRun.state).where(DagRun.run_id == run_id)))
