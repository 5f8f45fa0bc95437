"""``rule-compiler runs rerun`` on a real `dag.test()` run whose webhook action failed for one order:
the re-run (same run, so the same idempotency keys) sends what failed and never what was delivered.

The run's cleared tasks are then run the way ``dag.test`` runs tasks (tests/airflow/chaos_run.py's
``resume``), standing in for the scheduler, which would pick the queued run up.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from rule_engine.console_script import main

from rule_compiler.store import RuleStore
from tests.airflow.chaos_run import resume
from tests.airflow.conftest import apply_rules, dagbag
from tests.security.receiver import Receiver, Reply, running_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NAME = "push-paid-orders"
DAG_ID = f"rule__acme__{NAME}"
RULE = {
    "kind": "rule",
    "name": NAME,
    "organization": "acme",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": {"all": [{"field": "status", "operator": "equals", "value": "paid"}]},
    "actions": [
        {
            "id": "crm",
            "type": "call_webhook",
            "connection": "crm_api",
            "method": "POST",
            "path": "/hooks/orders",
            "body": {"order_id": "{{ record.id }}"},
            "retries": 0,
        }
    ],
}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        connection = {"conn_type": "http", "host": running.base_url, "password": SECRET}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
        yield running


def _paid_orders(app_db: sa.Engine) -> set[int]:
    with app_db.connect() as conn:
        return {int(r[0]) for r in conn.execute(sa.text("SELECT id FROM orders WHERE status = 'paid'"))}


def test_a_rerun_sends_what_failed_and_never_what_was_delivered(
    store: RuleStore,
    app_db: sa.Engine,
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from airflow.utils.state import DagRunState

    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump(RULE))
    apply_rules(store, path)
    orders = _paid_orders(app_db)
    assert len(orders) >= 2, "the demo data must contain paid orders"
    receiver.replies.extend([Reply(200), Reply(400, b'{"error": "try later"}')])  # the second is refused

    dag_run = dagbag().dags[DAG_ID].test()
    assert dag_run.state == DagRunState.FAILED
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and {a.action_id: a.status for a in log.actions} == {"crm": "failed"}
    first = len(receiver.requests)
    assert len(receiver.deliveries) == first - 1  # all but the refused one delivered

    assert main(["runs", "rerun", "rule", f"acme/{NAME}", dag_run.run_id, "--actor", "olga"]) == 0
    assert "queued again: failed crm" in capsys.readouterr().out
    assert resume(DAG_ID, dag_run.run_id) == DagRunState.SUCCESS

    sent = Counter(r["headers"]["webhook-id"] for r in receiver.requests[first:])
    assert sorted(sent.values()) == [1] * len(sent) and len(sent) == len(orders) - first + 1
    assert {int(d["json"]["order_id"]) for d in receiver.deliveries.values()} == orders  # each once
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None and log.status == "success"
    crm = {a.action_id: a for a in log.actions}["crm"]
    assert crm.status == "success" and crm.output["already_delivered"] == first - 1
    [audit] = store.audit_entries(organization="acme", kind="run")
    assert (audit.actor, audit.detail["rerun"], audit.detail["cleared"]) == (
        "olga",
        ["crm"],
        ["crm", "record_outcome"],
    )

    # nothing failed any more, and an ended run cannot be cancelled: both refused (exit 2), not audited
    assert main(["runs", "rerun", "rule", f"acme/{NAME}", dag_run.run_id]) == 2
    assert main(["runs", "cancel", "rule", f"acme/{NAME}", dag_run.run_id]) == 2
    assert main(["runs", "cancel", "rule", f"acme/{NAME}", "no-such-run"]) == 2
    err = capsys.readouterr().err
    assert (
        "no failed action" in err
        and "is not queued, running or waiting" in err
        and "no run no-such-run" in err
    )
    assert len(store.audit_entries(organization="acme", kind="run")) == 1
