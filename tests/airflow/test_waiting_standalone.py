"""Workflows that wait, under a real scheduler and triggerer (``airflow standalone``), on a Postgres
application database whose new orders are the events.

Cost: about two to three minutes on this 2-core machine (one standalone start, the trigger's start,
then waits of 45 s and 60 s that overlap), so it is marked ``slow``. One test, one standalone (what
``airflow standalone`` costs is paid once); its parts are subtests.

- ``hold-new-orders`` (orders of 7,000 to 7,999): a 45 s delay, then a note. The first order's run
  waits (its delay task ``deferred``: no worker slot) while two more orders arrive; each is handled by
  a run of its own, started while the first still waits (its start time before the first's
  ``until``). The third is cancelled over REST while it waits: its run fails and its note is never
  written.
- ``ask-on-big-orders`` (orders of 9,000 or more): an approval assigned to ``ann`` with a 60 s timeout
  (``on_timeout: approved``). Three orders, three runs: one answered through our REST route (approve,
  with a comment), one through Airflow's own route (reject; ``admin``, not an assignee, is refused
  there first), one not at all (it times out to ``approved``). Airflow's copy of the question holds
  no row values; our inbox holds the rendered one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.events import install
from rule_compiler.store import RuleStore
from tests.airflow.conftest import DEMO_NOW, apply_rules
from tests.conftest import DEMO_CATALOG
from tests.demo_db import demo_db_module
from tests.standalone import (
    Standalone,
    connection_env,
    dags_unpaused,
    outbox_trigger_listening,
    run_standalone,
)

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.postgres]

HOLD = """\
kind: workflow
name: hold-new-orders
organization: acme
nodes:
  - {id: start, type: trigger, trigger: {type: event, connection: app_db, table: orders, events: [created]}}
  - id: is-mine
    type: condition
    conditions: {all: [{field: total, operator: between, value: [7000, 7999]}]}
  - {id: pause, type: delay, duration: 45s}
  - {id: note-it, type: action, action: {type: update_record, connection: app_db, table: orders,
                                         values: {note: "held, then noted"}}}
connections:
  - {from: start, to: is-mine}
  - {from: is-mine, to: pause, when: "true"}
  - {from: pause, to: note-it}
"""
ASK = """\
kind: workflow
name: ask-on-big-orders
organization: acme
nodes:
  - {id: start, type: trigger, trigger: {type: event, connection: app_db, table: orders, events: [created]}}
  - {id: is-mine, type: condition, conditions: {all: [{field: total, operator: gte, value: 9000}]}}
  - id: ask
    type: approval
    subject: "Discount for order {{ record.id }} of {{ record.total }} ({{ record.customer__name }})?"
    assignees: [ann]
    timeout: 60s
    on_timeout: approved
  - id: grant
    type: action
    action: {type: update_record, connection: app_db, table: orders, values: {note: approved}}
  - id: refuse
    type: action
    action: {type: update_record, connection: app_db, table: orders, values: {note: rejected}}
connections:
  - {from: start, to: is-mine}
  - {from: is-mine, to: ask, when: "true"}
  - {from: ask, to: grant, when: approved}
  - {from: ask, to: refuse, when: rejected}
"""
HOLD_DAG, ASK_DAG = "workflow__acme__hold-new-orders", "workflow__acme__ask-on-big-orders"
USERS = {"admin": ("admin", "admin-password"), "ann": ("user", "ann-password")}
DEADLINE = 300.0


@dataclass
class Scene:
    app: sa.Engine
    store: RuleStore
    standalone: Standalone


@pytest.fixture
def scene(tmp_path: Path, postgres_databases: Any, one_deployment: None) -> Iterator[Scene]:
    app = sa.create_engine(postgres_databases.create())
    demo_db_module().create_demo_db(app, DEMO_NOW)
    install(app, "orders")
    store = RuleStore(postgres_databases.create())
    store.upgrade()
    store.put_catalog(organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="test")
    store.put_membership(organization="acme", username="ann", role="editor", actor="test")
    for name, text in (("hold", HOLD), ("ask", ASK)):
        (tmp_path / f"{name}.yaml").write_text(text)
    members = {m.username for m in store.list_memberships("acme")}
    assert sorted(apply_rules(store, tmp_path / "hold.yaml", tmp_path / "ask.yaml", members=members)) == [
        ASK_DAG,
        HOLD_DAG,
    ]
    env = {
        "AUTOMATION_STORE_URL": store.url,
        "AUTOMATION_SNAPSHOT_PATH": str(tmp_path / "snapshot.json"),
        "AIRFLOW_CONN_APP_DB": connection_env(app.url.render_as_string(hide_password=False)),
    }
    try:
        with run_standalone(
            tmp_path / "airflow",
            metadata_url=postgres_databases.create(),
            users=USERS,
            parallelism=2,
            env=env,
        ) as running:
            yield Scene(app, store, running)
    finally:
        store.close()
        app.dispose()


def _new_order(app: sa.Engine, total: str) -> int:
    with app.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO orders (customer_id, status, total, priority) "
                    "VALUES (1, 'pending', :t, 'normal') RETURNING id"
                ),
                {"t": decimal.Decimal(total)},
            ).scalar_one()
        )


def _note(app: sa.Engine, order_id: int) -> str | None:
    with app.connect() as conn:
        note = conn.execute(sa.text("SELECT note FROM orders WHERE id = :i"), {"i": order_id}).scalar_one()
        return None if note is None else str(note)


def _task_states(client: httpx.Client, dag_id: str, task_id: str) -> dict[str, str]:
    """run id → the state of ``task_id`` in that run (every run of the DAG)."""
    response = client.get(
        f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances", params={"task_id": task_id, "limit": 100}
    )
    response.raise_for_status()
    return {ti["dag_run_id"]: str(ti["state"]) for ti in response.json()["task_instances"]}


def _runs(client: httpx.Client, dag_id: str) -> dict[str, str]:
    response = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
    response.raise_for_status()
    return {run["dag_run_id"]: str(run["state"]) for run in response.json()["dag_runs"]}


def _deferred(client: httpx.Client) -> set[str]:
    return {run for run, state in _task_states(client, HOLD_DAG, "pause").items() if state == "deferred"}


def test_waiting_workflows_under_a_real_scheduler_and_triggerer(
    scene: Scene, subtests: pytest.Subtests
) -> None:
    standalone, app = scene.standalone, scene.app
    standalone.wait_healthy(timeout=240)
    admin, ann = standalone.client(), standalone.client()
    admin.headers["Authorization"] = f"Bearer {standalone.token('admin', USERS['admin'][1])}"
    ann.headers["Authorization"] = f"Bearer {standalone.token('ann', USERS['ann'][1])}"
    standalone.wait_for(
        "the workflows' DAGs, unpaused", lambda: dags_unpaused(admin, [HOLD_DAG, ASK_DAG]), 240
    )
    standalone.wait_for(
        "the outbox trigger to run in the triggerer", lambda: outbox_trigger_listening(app), 240
    )

    asked = [_new_order(app, total) for total in ("9100.25", "9200.25", "9300.25")]
    first = _new_order(app, "7100.25")
    [waiting] = standalone.wait_for(
        "the first order's delay to defer", lambda: _deferred(admin) or None, DEADLINE
    )
    later = [_new_order(app, "7200.25"), _new_order(app, "7300.25")]  # while the first one waits

    def deferred_run_of(order_id: int) -> str | None:
        """The run carrying ``order_id``, once its delay is deferred (None before)."""
        found = _deferred(admin)
        try:
            return _run_of_order(scene.store, app, found, order_id)
        except AssertionError:
            return None

    second_run = standalone.wait_for(
        "the second order's delay to defer", lambda: deferred_run_of(later[0]), DEADLINE
    )
    cancelled_run = standalone.wait_for(
        "the third order's delay to defer", lambda: deferred_run_of(later[1]), DEADLINE
    )

    with subtests.test("an order that arrives while another waits runs at once, in a run of its own"):
        assert len({waiting, second_run, cancelled_run}) == 3
        first_log = scene.store.get_run(dag_id=HOLD_DAG, run_id=waiting)
        second_log = scene.store.get_run(dag_id=HOLD_DAG, run_id=second_run)
        assert first_log is not None and second_log is not None
        first_until = dt.datetime.fromisoformat(_outputs(first_log)["pause"]["until"])
        # the second run started while the first still waited (one run at a time would start it after)
        assert second_log.started_at < first_until
        assert _deferred(admin) >= {second_run, cancelled_run}  # deferred: no worker slot held

    # the third order's run is cancelled over REST while it waits
    response = ann.post(f"/automations/api/v1/workflows/hold-new-orders/runs/{cancelled_run}/cancel")
    assert response.status_code == 200, response.text

    # the approvals: one answered over our route, one over Airflow's, one left to time out
    inbox = standalone.wait_for(
        "three approvals in ann's inbox",
        lambda: (
            (found := ann.get("/automations/api/v1/approvals").json()) and len(found["items"]) == 3 and found
        ),
        DEADLINE,
    )
    by_order = {_order_in(entry["subject"]): entry for entry in inbox["items"]}
    assert sorted(by_order) == asked
    approve, reject, silent = (by_order[order_id] for order_id in asked)

    with subtests.test("Airflow's copy of the question holds no row values; ours is rendered"):
        detail = admin.get(_hitl_path(reject)).json()
        assert "9200.25" not in detail["subject"] + (detail["body"] or "")
        with app.connect() as conn:
            customer = str(conn.execute(sa.text("SELECT name FROM customers WHERE id = 1")).scalar_one())
        assert customer not in detail["subject"] + (detail["body"] or "")
        assert "9200.25" in reject["subject"]

    answered = ann.post(
        f"/automations/api/v1/approvals/{approve['id']}/answer", json={"decision": "approve", "comment": "ok"}
    )
    assert answered.status_code == 200, answered.text
    refused = admin.patch(_hitl_path(reject), json={"chosen_options": ["Reject"], "params_input": {}})
    assert refused.status_code == 403, refused.text  # admin is not an assignee
    rejected = ann.patch(
        _hitl_path(reject), json={"chosen_options": ["Reject"], "params_input": {"comment": "no"}}
    )
    assert rejected.status_code == 200, rejected.text

    notes = {asked[0]: "approved", asked[1]: "rejected", asked[2]: "approved", first: "held, then noted"}
    notes[later[0]] = "held, then noted"
    standalone.wait_for(
        "every order's note", lambda: all(_note(app, i) == n for i, n in notes.items()), DEADLINE, interval=2
    )

    with subtests.test("the answers and the timeout, in the approvals log"):
        final = {
            _order_in(a["subject"]): a
            for a in ann.get("/automations/api/v1/approvals", params={"status": "all"}).json()["items"]
        }
        assert (final[asked[0]]["status"], final[asked[0]]["answered_via"], final[asked[0]]["comment"]) == (
            "approved",
            "rest",
            "ok",
        )
        assert (final[asked[1]]["status"], final[asked[1]]["answered_via"]) == ("rejected", "airflow")
        assert final[asked[1]]["answered_by"] == "ann"
        assert (final[asked[2]]["status"], final[asked[2]]["answered_via"]) == ("timed_out", "timeout")
        assert final[asked[2]]["id"] == silent["id"]

    with subtests.test("the cancelled run applied nothing"):
        standalone.wait_for(
            "the cancelled run to end", lambda: _runs(admin, HOLD_DAG)[cancelled_run] == "failed", 60
        )
        time.sleep(3)
        assert _note(app, later[1]) is None
        log = scene.store.get_run(dag_id=HOLD_DAG, run_id=cancelled_run)
        assert log is not None and (log.status, log.cancelled_by) == ("failed", "ann")


def _key_values(key: Any) -> list[Any]:
    """An outbox row key's values (``{"id": 46}`` or ``[46]``)."""
    return list(key.values()) if isinstance(key, dict) else list(key)


def _outputs(log: Any) -> dict[str, Any]:
    return {result.action_id: result.output or {} for result in log.actions}


def _order_in(subject: str) -> int:
    found = re.search(r"order (\d+)", subject)
    assert found is not None, subject
    return int(found.group(1))


def _hitl_path(approval: dict[str, Any]) -> str:
    return (
        f"/api/v2/dags/{approval['dag_id']}/dagRuns/{approval['run_id']}/taskInstances/"
        f"{approval['node_id']}/-1/hitlDetails"
    )


def _run_of_order(store: RuleStore, app: sa.Engine, run_ids: set[str], order_id: int) -> str:
    """Which of the runs carries ``order_id`` (its node's automation-log entry names its event)."""
    with app.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, key_json FROM rule_engine_outbox ORDER BY id")).all()
    event_id = next(row.id for row in rows if _key_values(row.key_json) == [order_id])
    for run_id in run_ids:
        log = store.get_run(dag_id=HOLD_DAG, run_id=run_id)
        outputs = {result.action_id: result.output for result in log.actions} if log is not None else {}
        if f"event:{event_id}" in (outputs.get("pause") or {}).get("keys", []):
            return run_id
    raise AssertionError(f"no waiting run carries order {order_id}")
