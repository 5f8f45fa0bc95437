"""Real `dag.test()` runs on Postgres of workflows that wait: delays (deferrals the test runs inline,
in real time) and approvals (answered from a second thread, as a person would from outside).

``dag.test()`` never applies an approval's timeout and ignores SIGTERM, so every approval here is
answered by a thread that polls Airflow's metadata DB for the waiting task; if it cannot answer, it
fails the waiting task instead, so a broken test ends (and fails) rather than hangs. Timeouts are
tested under ``airflow standalone`` (tests/airflow/test_waiting_standalone.py).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.registration import compile_document, register
from rule_compiler.store import RuleStore
from tests.airflow.conftest import dagbag

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.usefixtures("airflow_db")]
TARGET = {"connection": "app_db", "table": "orders"}
#: A manual workflow over orders: wait 2 s, then until the order's creation (long past), then note it.
WAIT_THEN_NOTE = {
    "kind": "workflow",
    "name": "wait-then-note",
    "organization": "acme",
    "nodes": [
        {"id": "start", "type": "trigger", "trigger": {"type": "manual", "target": TARGET}},
        {"id": "pause", "type": "delay", "duration": "2s"},
        {"id": "since-created", "type": "delay", "until": "{{ record.created_at }}"},
        {
            "id": "note-it",
            "type": "action",
            "action": {"type": "update_record", **TARGET, "values": {"note": "waited"}},
        },
    ],
    "connections": [
        {"from": "start", "to": "pause"},
        {"from": "pause", "to": "since-created"},
        {"from": "since-created", "to": "note-it"},
    ],
}
ASK = {
    "kind": "workflow",
    "name": "ask-for-discount",
    "organization": "acme",
    "nodes": [
        {"id": "start", "type": "trigger", "trigger": {"type": "manual", "target": TARGET}},
        {
            "id": "ask",
            "type": "approval",
            "subject": "Discount for order {{ record.id }} totalling {{ record.total }}?",
            "body": "Customer {{ record.customer__name }} ordered for {{ record.total }}.",
            "assignees": ["ann"],
            "timeout": "1h",
        },
        {
            "id": "yes",
            "type": "action",
            "action": {"type": "update_record", **TARGET, "values": {"note": "discount approved"}},
        },
        {
            "id": "no",
            "type": "action",
            "action": {"type": "update_record", **TARGET, "values": {"note": "discount refused"}},
        },
    ],
    "connections": [
        {"from": "start", "to": "ask"},
        {"from": "ask", "to": "yes", "when": "approved"},
        {"from": "ask", "to": "no", "when": "rejected"},
    ],
}


def _register(store: RuleStore, data: dict[str, Any]) -> Any:
    store.put_membership(organization="acme", username="ann", role="editor", actor="test")
    members = {m.username for m in store.list_memberships("acme")}
    catalog = Catalog.model_validate(store.get_catalog("acme"))
    compiled = compile_document(data, catalog, stored={}, members=members)
    register(store, compiled, actor="test")
    return dagbag().dags[str(compiled.dag_id)]


def _note(engine: sa.Engine, order_id: int) -> str | None:
    with engine.connect() as conn:
        note = conn.execute(sa.text("SELECT note FROM orders WHERE id = :i"), {"i": order_id}).scalar_one()
        return None if note is None else str(note)


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _runs_of(dag_id: str) -> list[tuple[str, dict[str, Any]]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.scalars(sa.select(DagRun).where(DagRun.dag_id == dag_id)).all()
        return sorted((run.run_id, dict(run.conf or {})) for run in runs)


def _outputs(store: RuleStore, dag_id: str, run_id: str) -> dict[str, Any]:
    log = store.get_run(dag_id=dag_id, run_id=run_id)
    assert log is not None
    return {result.action_id: result.output for result in log.actions}


def test_delays_wait_then_go_on_and_each_item_gets_a_run_of_its_own(
    pg_store: RuleStore, pg_app_db: sa.Engine
) -> None:
    dag = _register(pg_store, WAIT_THEN_NOTE)
    assert dag.max_active_runs > 1  # its runs overlap: each waits for its own item

    before = {order_id: _note(pg_app_db, order_id) for order_id in (1, 2, 3)}
    started = time.monotonic()
    first = dag.test(run_conf={"keys": [[1], [2], [3]]})
    waited = time.monotonic() - started

    assert str(first.state) == "success", _states(first)
    assert waited >= 2  # the 2 s delay was a real wait (not a timing assertion: a lower bound)
    assert _note(pg_app_db, 1) == "waited"
    assert (_note(pg_app_db, 2), _note(pg_app_db, 3)) == (before[2], before[3])  # their runs have not run
    outputs = _outputs(pg_store, dag.dag_id, first.run_id)
    assert outputs["pause"]["waited"] is True and outputs["pause"]["keys"] == ["[1]"]
    assert outputs["since-created"]["waited"] is False
    assert "had passed when the node started: it went on at once" in outputs["since-created"]["note"]
    log = pg_store.get_run(dag_id=dag.dag_id, run_id=first.run_id)
    assert log is not None and log.trace is not None
    assert log.trace["one_run_per_item"]["kept"] == "[1]" and log.trace["one_run_per_item"]["item_runs"] == 2

    # The other two items each got a run of their own, asked for from Airflow by the first run.
    item_runs = [(run_id, conf) for run_id, conf in _runs_of(dag.dag_id) if run_id != first.run_id]
    assert sorted(conf["keys"] for _, conf in item_runs) == [[[2]], [[3]]]
    assert all(run_id.startswith("item__") and conf["item_of"] == first.run_id for run_id, conf in item_runs)

    # An item run acts on its one item and starts no run of its own.
    second = dag.test(run_conf=item_runs[0][1])
    assert str(second.state) == "success", _states(second)
    item = item_runs[0][1]["keys"][0][0]
    assert _note(pg_app_db, item) == "waited"
    assert len(_runs_of(dag.dag_id)) == 4  # the first, its two item runs, this test's run


def _answer_when_waiting(
    dag_id: str, node_id: str, answer: Callable[[str], None], errors: list[BaseException]
) -> threading.Thread:
    """A thread that waits for ``node_id`` to await input in a run of ``dag_id``, then ``answer(run_id)``;
    if it cannot (or nothing waits within 120 s) it fails the waiting task, so ``dag.test()`` ends."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    def waiting() -> str | None:
        with create_session() as session:
            ti = session.scalar(
                sa.select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id == node_id,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            )
            return None if ti is None else str(ti.run_id)

    def fail_it() -> None:
        with create_session() as session:
            for ti in session.scalars(
                sa.select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.state == TaskInstanceState.AWAITING_INPUT
                )
            ):
                ti.state = TaskInstanceState.FAILED

    def run() -> None:
        deadline = time.monotonic() + 120
        try:
            while (run_id := waiting()) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node_id} never awaited input")
                time.sleep(0.5)
            answer(run_id)
        except BaseException as exc:
            errors.append(exc)
            fail_it()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _our_app(store: RuleStore) -> tuple[Any, str]:
    """Our REST view over ``store`` (as the api-server mounts it) and a real Airflow token of ``ann``."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    app = create_app(store, settings=ApiSettings(rate_limit=""), on_change=lambda _: None)
    token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ann", role="user"))
    return app, token


def test_an_approval_answered_through_our_route_goes_on_along_approved(
    pg_store: RuleStore, pg_app_db: sa.Engine
) -> None:
    from fastapi.testclient import TestClient

    dag = _register(pg_store, ASK)
    app, token = _our_app(pg_store)
    errors: list[BaseException] = []
    seen: dict[str, Any] = {}

    def answer(run_id: str) -> None:
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {token}"}
            inbox = client.get("/api/v1/approvals", headers=headers)
            assert inbox.status_code == 200, inbox.text
            [waiting] = inbox.json()["items"]
            seen["inbox"] = waiting
            seen["airflow"] = _hitl_detail(dag.dag_id, run_id, "ask")
            answered = client.post(
                f"/api/v1/approvals/{waiting['id']}/answer",
                headers=headers,
                json={"decision": "approve", "comment": "good customer"},
            )
            assert answered.status_code == 200, answered.text

    thread = _answer_when_waiting(dag.dag_id, "ask", answer, errors)
    dag_run = dag.test(run_conf={"keys": [[6]]})
    thread.join(timeout=30)

    assert not errors, errors
    assert str(dag_run.state) == "success", _states(dag_run)
    assert _states(dag_run)["yes"] == "success" and _states(dag_run)["no"] == "skipped"
    assert _note(pg_app_db, 6) == "discount approved"
    total = _total(pg_app_db, 6)
    assert seen["inbox"]["subject"] == f"Discount for order 6 totalling {total}?"  # ours: rendered
    airflow_text = seen["airflow"]["subject"] + (seen["airflow"]["body"] or "")
    assert total not in airflow_text and "[6]" in seen["airflow"]["subject"]  # Airflow's: keys only
    approval = pg_store.find_approval(dag_id=dag.dag_id, run_id=dag_run.run_id, node_id="ask")
    assert approval is not None
    assert (approval.status, approval.answered_by, approval.answered_via, approval.comment) == (
        "approved",
        "ann",
        "rest",
        "good customer",
    )
    outputs = _outputs(pg_store, dag.dag_id, dag_run.run_id)
    assert outputs["ask"]["decision"] == "approved" and outputs["ask"]["via"] == "rest"
    inbox = pg_store.list_approvals(organizations=["acme"], assignee="ann")
    assert inbox == []  # answered: no longer waiting
    from rule_compiler.store.inbox import list_inbox

    [notice] = list_inbox(pg_store.engine, organization="acme", recipient="ann")
    assert notice.subject == f"Approval needed: Discount for order 6 totalling {total}?"
    assert f"/automations/api/v1/approvals/{approval.id}/answer" in notice.body


def test_an_approval_answered_through_airflows_route_goes_on_along_rejected(
    pg_store: RuleStore, pg_app_db: sa.Engine
) -> None:
    dag = _register(pg_store, ASK)
    errors: list[BaseException] = []

    def answer(run_id: str) -> None:
        _airflow_answer(dag.dag_id, run_id, "ask", user="ann", option="Reject", comment="too generous")

    thread = _answer_when_waiting(dag.dag_id, "ask", answer, errors)
    dag_run = dag.test(run_conf={"keys": [[10]]})
    thread.join(timeout=30)

    assert not errors, errors
    assert str(dag_run.state) == "success", _states(dag_run)
    assert _states(dag_run)["no"] == "success" and _states(dag_run)["yes"] == "skipped"
    assert _note(pg_app_db, 10) == "discount refused"
    approval = pg_store.find_approval(dag_id=dag.dag_id, run_id=dag_run.run_id, node_id="ask")
    assert approval is not None
    assert (approval.status, approval.answered_by, approval.answered_via, approval.comment) == (
        "rejected",
        "ann",
        "airflow",
        "too generous",
    )


def _total(engine: sa.Engine, order_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(sa.text("SELECT total FROM orders WHERE id = :i"), {"i": order_id}).scalar_one()
        )


def _hitl_detail(dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        detail = session.scalar(
            sa.select(HITLDetail)
            .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
            .where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        )
        assert detail is not None
        return {"subject": detail.subject, "body": detail.body, "assigned_users": detail.assigned_users}


def _airflow_answer(dag_id: str, run_id: str, task_id: str, *, user: str, option: str, comment: str) -> None:
    """Airflow's own answer route (``PATCH …/hitlDetails``), called as the api-server calls it."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    payload = UpdateHITLDetailPayload(chosen_options=[option], params_input={"comment": comment})
    with create_session() as session:
        update_hitl_detail(
            dag_id=dag_id,
            dag_run_id=run_id,
            task_id=task_id,
            update_hitl_detail_payload=payload,
            user=SimpleAuthManagerUser(username=user, role="user"),
            session=session,
        )


def test_a_workflow_edited_while_a_run_waits_finishes_on_the_version_it_started_with(
    pg_store: RuleStore, pg_app_db: sa.Engine
) -> None:
    _register(pg_store, WAIT_THEN_NOTE)  # v1 notes 'waited'
    v1_hash = pg_store.get(organization="acme", kind="workflow", name="wait-then-note").spec_hash
    edited = copy.deepcopy(WAIT_THEN_NOTE)
    edited["nodes"][3]["action"]["values"] = {"note": "edited"}
    dag = _register(pg_store, edited)  # v2 notes 'edited'; the DAG Airflow runs the waiting tasks from
    # The start task ran under v1 (its run records v1's hash); the nodes after it were parsed from v2.
    dag.get_task("start").spec_hash = v1_hash

    dag_run = dag.test(run_conf={"keys": [[4]]})

    assert str(dag_run.state) == "success", _states(dag_run)
    assert _note(pg_app_db, 4) == "waited"
