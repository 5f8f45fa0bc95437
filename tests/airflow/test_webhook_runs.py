"""A real `dag.test()` of a rule that calls a webhook: one signed POST per matched row, never twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from rule_engine.operators.actions import Match

from rule_compiler.runtime.webhook_requests import DELIVERY_TABLE
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.security.receiver import Receiver, Reply, running_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DAG_ID = "rule__acme__push-big-paid-orders"
RULE = {
    "kind": "rule",
    "name": "push-big-paid-orders",
    "organization": "acme",
    "description": "On demand, push every paid order of 1,000 or more to the CRM.",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": {
        "all": [
            {"field": "status", "operator": "equals", "value": "paid"},
            {"field": "total", "operator": "gte", "value": 1000},
        ]
    },
    "actions": [
        {
            "id": "crm",
            "type": "call_webhook",
            "connection": "crm_api",
            "method": "POST",
            "path": "/hooks/orders",
            "headers": {"X-Rule": "{{ rule.id }}"},
            "body": {"order_id": "{{ record.id }}", "total": "{{ record.total }}", "source": "rules"},
            "retries": 0,
        }
    ],
}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        connection = {
            "conn_type": "http",
            "host": running.base_url,
            "password": f"{SECRET} whsec_b2xkLWtleQ==",
        }
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
        yield running


def _rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "push-big-paid-orders.yaml"
    path.write_text(yaml.safe_dump(RULE))
    return path


def _expected(app_db: sa.Engine) -> dict[int, Any]:
    with app_db.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, total FROM orders WHERE status = 'paid' AND total >= 1000"))
        return {int(r[0]): r[1] for r in rows}


def _ledger(store: RuleStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {DELIVERY_TABLE}"))]


def test_a_webhook_rule_posts_one_signed_request_per_matched_row(
    store: RuleStore, app_db: sa.Engine, receiver: Receiver, tmp_path: Path
) -> None:
    from airflow.utils.state import DagRunState

    apply_rules(store, _rule_file(tmp_path))
    expected = _expected(app_db)
    assert expected, "the demo data must contain big paid orders"

    dag = dagbag().dags[DAG_ID]
    dag_run = dag.test()

    assert dag_run.state == DagRunState.SUCCESS
    assert len(receiver.requests) == len(expected)
    assert all(
        r["verified"] and r["method"] == "POST" and r["path"] == "/hooks/orders" for r in receiver.requests
    )
    assert all(r["headers"]["x-rule"] == "acme/push-big-paid-orders" for r in receiver.requests)
    assert len(receiver.deliveries) == len(expected)
    bodies = {int(d["json"]["order_id"]): d["json"] for d in receiver.deliveries.values()}
    assert set(bodies) == set(expected)
    assert all(
        float(bodies[i]["total"]) == float(expected[i]) and bodies[i]["source"] == "rules" for i in bodies
    )
    assert all(
        r["body"]
        == json.dumps(
            bodies[int(json.loads(r["body"])["order_id"])], sort_keys=True, separators=(",", ":")
        ).encode()
        for r in receiver.requests
    )

    ledger = _ledger(store)
    assert len(ledger) == len(expected) and {row["status"] for row in ledger} == {"delivered"}
    assert {row["idempotency_key"] for row in ledger} == set(receiver.deliveries)
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "success"
    action = {a.action_id: a for a in log.actions}["crm"]
    assert action.status == "success" and action.output["delivered"] == len(expected)
    assert "whsec_" not in json.dumps(action.output) and "signature" not in json.dumps(action.output)
    secret_body = SECRET.removeprefix("whsec_")
    assert not any(secret_body in json.dumps(row, default=str) for row in ledger)
    signatures = {r["headers"]["webhook-signature"] for r in receiver.requests}
    assert all(s.count("v1,") == 2 for s in signatures)  # both rotation secrets sign
    xcom = dag_run.get_task_instance("crm").xcom_pull(task_ids="crm")
    assert xcom == action.output and secret_body not in json.dumps(xcom)

    # The same run's task once more (a retry, a duplicate worker): nothing is sent twice.
    task = dag.get_task("crm")
    matched = [Match([order_id], dag_run.run_id) for order_id in sorted(expected)]
    again = task.run_action({"run_id": dag_run.run_id}, matched)
    assert again["already_delivered"] == len(expected) and again["delivered"] == 0
    assert len(receiver.requests) == len(expected)


def test_a_rejected_webhook_fails_the_action_permanently(
    store: RuleStore, app_db: sa.Engine, receiver: Receiver, tmp_path: Path
) -> None:
    from airflow.utils.state import DagRunState

    apply_rules(store, _rule_file(tmp_path))
    receiver.replies.extend(Reply(400, b'{"error": "unknown order"}') for _ in range(100))

    dag_run = dagbag().dags[DAG_ID].test()

    assert dag_run.state == DagRunState.FAILED
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None
    action = {a.action_id: a for a in log.actions}["crm"]
    assert action.status == "failed" and "HTTP 400" in (action.error or "")
    assert {row["status"] for row in _ledger(store)} == {"failed"}


def test_a_retryable_failure_on_the_last_try_is_recorded_failed(
    store: RuleStore, app_db: sa.Engine, receiver: Receiver, tmp_path: Path
) -> None:
    from airflow.utils.state import DagRunState

    apply_rules(store, _rule_file(tmp_path))  # retries: 0, so the first try is the last
    receiver.replies.extend(Reply(503, b"busy") for _ in range(100))

    dag_run = dagbag().dags[DAG_ID].test()

    assert dag_run.state == DagRunState.FAILED
    ledger = _ledger(store)
    assert ledger and {row["status"] for row in ledger} == {"failed"}  # not left "retrying"
    assert {row["response_status"] for row in ledger} == {503}
