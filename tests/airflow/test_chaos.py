"""Chaos: the process running an action is SIGKILLed at a fault point; after Airflow's retry, one effect.

Each test runs a real rule DAG in a subprocess (``dag.test()`` against this worker's Airflow home)
with ``AUTOMATION_FAULTPOINT`` naming one step of the action (:mod:`rule_compiler.runtime.faults`):
the process kills itself there with SIGKILL — no rollback, no ``finally``, no task-state update, as
when a worker is lost. Then the same run is retried (same run id, so the same idempotency keys).
What stands in for Airflow's retry (``tests/airflow/chaos_run.py``): the scheduler's own
``TaskInstance.handle_failure`` turns the orphaned ``running`` task instance into ``up_for_retry``
(history recorded), and the next try (``try_number`` 2) runs through ``dag.test``'s in-process
runner, in the test process — a fresh task run that shares nothing with the killed one, as on
another worker; the run then finishes as ``dag.test`` would finish it. Not real: no scheduler or
executor process detects the lost worker (their code is called directly), and the retry delay is
not waited for.

Records run on SQLite and on the real Postgres; webhooks against the loopback receiver, which
verifies every signature. A kill between "sent" and "recorded" makes the retry send again with the
same ``webhook-id``: at-least-once delivery with a stable id is the contract (receivers deduplicate
on it), so the receiver may see two requests but always exactly one distinct id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.events import install
from rule_compiler.runtime.faults import AFTER_ENV, FAULTPOINT_ENV, ONCE_ENV
from rule_compiler.runtime.record_effects import LEDGER_TABLE
from rule_compiler.runtime.webhook_requests import DELIVERY_TABLE
from rule_compiler.store import RuleStore
from tests.airflow.chaos_run import CONF_ENV, retry
from tests.airflow.conftest import apply_rules
from tests.conftest import ROOT
from tests.security.receiver import Receiver, running_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: One Airflow subprocess may take this long at most (start-up is a few seconds).
SUBPROCESS_TIMEOUT = 300


def _target_order(app_db: sa.Engine) -> dict[str, Any]:
    with app_db.connect() as conn:
        row = conn.execute(
            sa.text("SELECT id, customer_id FROM orders WHERE status = 'paid' ORDER BY id LIMIT 1")
        ).one()
    return dict(row._mapping)


def _rule(name: str, order_id: int, action: dict[str, Any]) -> dict[str, Any]:
    """A manual rule on exactly one order, with one action that Airflow may retry."""
    return {
        "kind": "rule",
        "name": name,
        "organization": "acme",
        "description": "Chaos test: one action on one order.",
        "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
        "conditions": {"all": [{"field": "id", "operator": "equals", "value": order_id}]},
        "actions": [{"retries": 2, **action}],
    }


def _apply(store: RuleStore, tmp_path: Path, rule: dict[str, Any]) -> str:
    path = tmp_path / f"{rule['name']}.yaml"
    path.write_text(yaml.safe_dump(rule))
    (dag_id,) = apply_rules(store, path)
    return dag_id


def _chaos_env(point: str, tmp_path: Path) -> dict[str, str]:
    marker = tmp_path / "faultpoint-fired"
    return {**os.environ, FAULTPOINT_ENV: point, ONCE_ENV: str(marker)}


def _killed_then_retried(dag_id: str, env: dict[str, str], between: Any = None) -> dict[str, Any]:
    """Run the DAG until the fault point kills it, call ``between()``, retry; the retry's result."""
    when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    first = subprocess.run(
        [sys.executable, "-m", "tests.airflow.chaos_run", "first", dag_id, when],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert first.returncode == -signal.SIGKILL, (
        f"the run was not killed at the fault point (exit {first.returncode}):\n{first.stdout[-3000:]}"
        f"\n{first.stderr[-3000:]}"
    )
    assert Path(env[ONCE_ENV]).exists()
    run_id = next(line for line in first.stdout.splitlines() if line.startswith("RUN_ID ")).split(" ", 1)[1]
    if between is not None:
        between()
    result = retry(dag_id, run_id)  # in this process: a fresh task run, as on another worker
    result["run_id"] = run_id
    return result


def _assert_retried(result: dict[str, Any], task_id: str) -> None:
    """The killed task was the action, and Airflow ran it again as a second try; the run succeeded."""
    assert result["killed"] == [task_id]
    assert result["tasks"][task_id] == {"state": "success", "try_number": 2}
    assert result["state"] == "success"


# --- an event rule's action loop, killed mid-batch ----------------------------------------------


FOLLOW_UP = {
    "type": "create_record",
    "connection": "app_db",
    "table": "orders",
    "retries": 2,
    "values": {
        "customer_id": "{{ record.customer_id }}",
        "status": "pending",
        "note": "follow-up of {{ record.id }}",
    },
}
PAID = {"all": [{"field": "status", "operator": "changed_to", "value": "paid"}]}
PAID_EVENTS = {"type": "event", "connection": "app_db", "table": "orders", "events": ["updated"]}
#: An event rule and an event workflow doing the same: a follow-up order per paid order.
EVENT_BATCHES = {
    "rule": {
        "kind": "rule",
        "name": "chaos-event-batch",
        "organization": "acme",
        "description": "Chaos test: a follow-up order per paid order.",
        "trigger": PAID_EVENTS,
        "conditions": PAID,
        "actions": [{"id": "follow-up", **FOLLOW_UP}],
    },
    "workflow": {
        "kind": "workflow",
        "name": "chaos-event-batch",
        "organization": "acme",
        "description": "Chaos test: a follow-up order per paid order, as a workflow's action node.",
        "nodes": [
            {"id": "start", "type": "trigger", "trigger": PAID_EVENTS},
            {"id": "is-paid", "type": "condition", "conditions": PAID},
            {"id": "follow-up", "type": "action", "action": FOLLOW_UP},
        ],
        "connections": [
            {"from": "start", "to": "is-paid"},
            {"from": "is-paid", "to": "follow-up", "when": "true"},
        ],
    },
}


@pytest.mark.parametrize("kind", sorted(EVENT_BATCHES))
def test_an_event_action_loop_killed_mid_batch_applies_each_effect_once(
    kind: str, store: RuleStore, app_db: sa.Engine, tmp_path: Path
) -> None:
    """Six events in one run; the process dies right after the third effect committed; the retry
    applies the other three, and every (event, action) has exactly one effect and one ledger row. The
    same for a rule's action and a workflow's action node."""
    install(app_db, "orders")
    with app_db.begin() as conn:
        orders = [
            int(r[0])
            for r in conn.execute(
                sa.text("SELECT id FROM orders WHERE status = 'pending' ORDER BY id LIMIT 6")
            )
        ]
        conn.execute(
            sa.text(f"UPDATE orders SET status = 'paid' WHERE id IN ({', '.join(map(str, orders))})")
        )
        event_ids = [
            str(r[0]) for r in conn.execute(sa.text("SELECT id FROM rule_engine_outbox ORDER BY id"))
        ]
    assert len(orders) == 6 and len(event_ids) == 6
    dag_id = _apply(store, tmp_path, EVENT_BATCHES[kind])
    env = {
        **_chaos_env("records.after_commit", tmp_path),
        AFTER_ENV: "2",
        CONF_ENV: json.dumps({"event_ids": event_ids}),
    }
    left: list[tuple[list[int], int]] = []

    def after_kill() -> None:
        left.append(
            ([_follow_ups(app_db, order) for order in orders], _ledger_rows(app_db, "acme/chaos-event-batch"))
        )

    result = _killed_then_retried(dag_id, env, after_kill)

    assert left == [([1, 1, 1, 0, 0, 0], 3)]  # killed mid-batch: three effects committed
    _assert_retried(result, "follow-up")
    assert [_follow_ups(app_db, order) for order in orders] == [1] * 6
    assert _ledger_rows(app_db, "acme/chaos-event-batch") == 6
    with app_db.connect() as conn:
        occurrences = {
            r[0]
            for r in conn.execute(
                sa.text(f"SELECT occurrence_id FROM {LEDGER_TABLE} WHERE rule_id = 'acme/chaos-event-batch'")
            )
        }
    assert occurrences == {f"event:{event_id}" for event_id in event_ids}


# --- records ---------------------------------------------------------------------------------

RECORD_POINTS = {
    # point: (follow-up rows, ledger rows) left by the killed process
    "records.before_effect": (0, 0),
    "records.after_effect_before_commit": (0, 0),  # the transaction died with the process
    "records.after_commit": (1, 1),
}


def _follow_ups(engine: sa.Engine, order_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT COUNT(*) FROM orders WHERE note = :note"),
                {"note": f"follow-up of {order_id}"},
            ).scalar_one()
        )


def _ledger_rows(engine: sa.Engine, rule_id: str) -> int:
    if not sa.inspect(engine).has_table(LEDGER_TABLE):
        return 0
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {LEDGER_TABLE} WHERE rule_id = :r"), {"r": rule_id}
            ).scalar_one()
        )


def _record_chaos(point: str, store: RuleStore, app_db: sa.Engine, tmp_path: Path, suffix: str) -> None:
    order = _target_order(app_db)
    name = f"chaos-{point.replace('.', '-').replace('_', '-')}-{suffix}"
    action = {
        "id": "follow-up",
        "type": "create_record",
        "connection": "app_db",
        "table": "orders",
        "values": {
            "customer_id": "{{ record.customer_id }}",
            "status": "pending",
            "note": "follow-up of {{ record.id }}",
        },
    }
    dag_id = _apply(store, tmp_path, _rule(name, order["id"], action))
    left: list[tuple[int, int]] = []

    def after_kill() -> None:
        left.append((_follow_ups(app_db, order["id"]), _ledger_rows(app_db, f"acme/{name}")))

    result = _killed_then_retried(dag_id, _chaos_env(point, tmp_path), after_kill)

    assert left == [RECORD_POINTS[point]]
    _assert_retried(result, "follow-up")
    assert _follow_ups(app_db, order["id"]) == 1  # a double insert would show as two rows
    assert _ledger_rows(app_db, f"acme/{name}") == 1
    log = store.get_run(dag_id=dag_id, run_id=result["run_id"])
    assert log is not None and log.status == "success"


@pytest.mark.parametrize("point", sorted(RECORD_POINTS))
def test_record_effect_survives_sigkill_on_sqlite(
    point: str, store: RuleStore, app_db: sa.Engine, tmp_path: Path
) -> None:
    _record_chaos(point, store, app_db, tmp_path, "lite")


@pytest.mark.postgres
@pytest.mark.parametrize("point", sorted(RECORD_POINTS))
def test_record_effect_survives_sigkill_on_postgres(
    point: str, store: RuleStore, pg_app_db: sa.Engine, tmp_path: Path
) -> None:
    _record_chaos(point, store, pg_app_db, tmp_path, "pg")
    with pg_app_db.connect() as conn:  # the killed transaction did not linger on the server
        lingering = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        ).scalar_one()
    assert lingering == 0


# --- webhooks --------------------------------------------------------------------------------

WEBHOOK_POINTS = {
    # point: (requests seen, ledger status) after the kill; (requests, attempts) after the retry
    "webhooks.before_send": ((0, "sending"), (1, 2)),
    "webhooks.after_send_before_record": ((1, "sending"), (2, 2)),  # sent again, same webhook-id
    "webhooks.after_record": ((1, "delivered"), (1, 1)),
}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        connection = {"conn_type": "http", "host": running.base_url, "password": SECRET}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
        yield running


def _deliveries(store: RuleStore, rule_id: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(f"SELECT * FROM {DELIVERY_TABLE} WHERE rule_id = :r"), {"r": rule_id}
            )
        ]


@pytest.mark.parametrize("point", sorted(WEBHOOK_POINTS))
def test_webhook_survives_sigkill_with_one_webhook_id(
    point: str, store: RuleStore, app_db: sa.Engine, receiver: Receiver, tmp_path: Path
) -> None:
    order = _target_order(app_db)
    name = f"chaos-{point.replace('.', '-').replace('_', '-')}"
    action = {
        "id": "crm",
        "type": "call_webhook",
        "connection": "crm_api",
        "method": "POST",
        "path": "/hooks/orders",
        "body": {"order_id": "{{ record.id }}"},
    }
    dag_id = _apply(store, tmp_path, _rule(name, order["id"], action))
    (seen_after_kill, status_after_kill), (seen_at_end, attempts_at_end) = WEBHOOK_POINTS[point]
    left: list[tuple[int, str]] = []

    def after_kill() -> None:
        (row,) = _deliveries(store, f"acme/{name}")
        left.append((len(receiver.requests), row["status"]))

    result = _killed_then_retried(dag_id, _chaos_env(point, tmp_path), after_kill)

    assert left == [(seen_after_kill, status_after_kill)]
    _assert_retried(result, "crm")
    (row,) = _deliveries(store, f"acme/{name}")
    assert (row["status"], row["attempts"], row["response_status"]) == ("delivered", attempts_at_end, 200)
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {row["idempotency_key"]}  # one distinct webhook-id: the idempotency key
    assert len(receiver.requests) == seen_at_end and all(r["verified"] for r in receiver.requests)
    assert list(receiver.deliveries) == [row["idempotency_key"]]
    assert int(receiver.deliveries[row["idempotency_key"]]["json"]["order_id"]) == order["id"]
