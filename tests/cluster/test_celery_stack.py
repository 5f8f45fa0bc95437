"""docker-compose.yaml's ``celery`` profile, started as local processes (scripts/compose_local.py):
two Celery workers, two triggerers, its own Redis. A rule, a report and an event workflow run through
Celery; then the scale-out path loses a triggerer in the middle of a burst, restarts Redis, and loses
a Celery worker in the middle of an action, and keeps the single machine's guarantees.

One stack serves every case, as subtests of one test: ``make test`` runs ``pytest -n 2``, which may
send two tests of a module to two workers, and each would start a stack of its own.

Nothing is mocked: real Airflow processes, Celery over Redis, Postgres, SMTP on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.compiler.report import DELIVER_TASK, QUERIES_TASK
from tests.cluster.celery_stack import Cluster, celery_stack, deactivate
from tests.conftest import ROOT
from tests.standalone import query_rows

pytestmark = [pytest.mark.postgres, pytest.mark.airflow, pytest.mark.slow]

WORKFLOW = "workflow__acme__route-new-orders"
WAITING = ("confirm-big-orders", "vip-order-follow-up", "approve-stale-cleanup")
BURST = 120
# An UPDATE of orders leaves one row here per committed change (the test's own witness of effects:
# a change that was rolled back leaves none, one applied twice leaves two).
AUDIT_SQL = """
CREATE TABLE cluster_audit (id serial PRIMARY KEY, order_id integer NOT NULL, note text);
CREATE FUNCTION cluster_audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO cluster_audit (order_id, note) VALUES (NEW.id, NEW.note); RETURN NEW; END $$;
CREATE TRIGGER cluster_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION cluster_audit_row();
"""


@pytest.fixture
def cluster(tmp_path: Path, postgres_databases: Any, one_deployment: None) -> Iterator[Cluster]:
    # A lost worker's task is noticed after 30 s without a heartbeat (300 s in .env.example).
    with celery_stack(
        tmp_path, postgres_databases.create, extra={"AIRFLOW_TASK_HEARTBEAT_TIMEOUT": "30"}
    ) as running:
        with running.app.begin() as conn:
            conn.exec_driver_sql(AUDIT_SQL)
        # The demo's waiting workflows start a run for every new order and wait for days (approvals,
        # delays): the bursts below would leave hundreds of runs waiting. Switched off as a user would.
        with running.client() as client:
            for name in WAITING:
                deactivate(client, "workflow", name)
        yield running


def test_the_celery_profile_runs_rules_reports_and_workflows_and_survives_faults(
    cluster: Cluster, subtests: pytest.Subtests
) -> None:
    client = cluster.client()
    with subtests.test("a rule runs through the Celery workers"):
        _a_rule_runs_through_celery(cluster, client)
    with subtests.test("a report runs through Celery: file in the reports volume, email sent"):
        _a_report_runs_through_celery(cluster, client)
    with subtests.test("an event workflow: capture, outbox, a triggerer, the workers"):
        _an_event_workflow_runs_through_celery(cluster, client)
    with subtests.test("a triggerer SIGKILLed in a burst of events: 0 lost, 0 applied twice"):
        _a_triggerer_lost_in_a_burst(cluster)
    with subtests.test("Redis restarted: runs go on afterwards"):
        _redis_restarted(cluster, client)
    with subtests.test("a worker SIGKILLed in the middle of an action: retried elsewhere, applied once"):
        _a_worker_lost_in_an_action(cluster, client)
    with subtests.test("one organization's burst stays in its pool: another's run is on time"):
        _a_burst_stays_in_its_organizations_pool(cluster, client)


def _a_rule_runs_through_celery(cluster: Cluster, client: httpx.Client) -> None:
    dag_id = "rule__acme__flag-big-paid-orders"
    run_id, state = cluster.run_dag(client, dag_id)
    assert state == "success", cluster.logs()
    big_paid = query_rows(cluster.app, "SELECT priority FROM orders WHERE status = 'paid' AND total >= 1000")
    assert big_paid and {r["priority"] for r in big_paid} == {"high"}
    tasks = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    for task in tasks:
        assert len(cluster.worker_of(dag_id, run_id, task["task_id"])) == 1, task
    logged = client.get("/automations/api/v1/logs", params={"rule": "flag-big-paid-orders"}).json()
    assert [(e["run_id"], e["status"]) for e in logged["items"]] == [(run_id, "success")]


def _a_report_runs_through_celery(cluster: Cluster, client: httpx.Client) -> None:
    dag_id = "report__acme__weekly-sales"
    # A manual run reads the last complete week: give it an order on each of the past 14 days.
    with cluster.app.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders (customer_id, status, total, created_at) "
                             "SELECT 1, 'paid', 100 + g, now() - make_interval(days => g) "
                             "FROM generate_series(1, 14) AS g"))  # fmt: skip
    run_id, state = cluster.run_dag(client, dag_id)
    assert state == "success", cluster.logs()
    reports = cluster.stack.state / "volumes" / "reports"
    files = [p for p in reports.rglob("*") if p.is_file()]
    # the CSV of several queries is delivered zipped
    assert {p.suffix for p in files} >= {".zip", ".xlsx", ".html", ".pdf"}, sorted(map(str, files))
    # The email of this week went out once: from the scheduled run Airflow started when the report's
    # DAG appeared, or from this one (a delivery is sent once per report and interval).
    cluster.wait_for("the report's email", lambda: cluster.inbox.to("sales-ops@acme.example"), 60)
    for task in (QUERIES_TASK, DELIVER_TASK):  # deliver is mapped: one instance per delivery
        assert cluster.worker_of(dag_id, run_id, task), f"no Celery worker logged {task}"


def _insert_orders(cluster: Cluster, count: int, total: float, status: str = "pending") -> list[int]:
    with cluster.app.begin() as conn:
        rows = conn.execute(
            sa.text(
                "INSERT INTO orders (customer_id, status, total) SELECT 1, :s, :t "
                "FROM generate_series(1, :n) RETURNING id"
            ),
            {"t": total, "n": count, "s": status},
        )
        return [int(r[0]) for r in rows]


def _routed(cluster: Cluster, ids: list[int]) -> list[dict[str, Any]]:
    return query_rows(
        cluster.app,
        "SELECT id, priority, note FROM orders WHERE id = ANY(:ids) AND note LIKE 'routed:%'",
        ids=ids,
    )


def _an_event_workflow_runs_through_celery(cluster: Cluster, client: httpx.Client) -> None:
    [big] = _insert_orders(cluster, 1, 5000, "paid")  # big: the `big-order` template wants it paid
    [small] = _insert_orders(cluster, 1, 20)
    done = cluster.wait_for(
        "both orders routed", lambda: len(r := _routed(cluster, [big, small])) == 2 and r, 240
    )
    assert {r["id"]: r["priority"] for r in done} == {big: "high", small: "normal"}
    runs = client.get(f"/api/v2/dags/{WORKFLOW}/dagRuns", params={"state": ["success"]}).json()
    assert runs["total_entries"] >= 1
    run_id = runs["dag_runs"][0]["dag_run_id"]
    assert cluster.worker_of(WORKFLOW, run_id, "stamp"), "no Celery worker logged the workflow's stamp task"


def _watcher_host(cluster: Cluster, dag_id: str) -> str | None:
    """The triggerer running the outbox watcher a DAG is scheduled on (Airflow's own tables)."""
    rows = query_rows(
        cluster.metadata,
        "SELECT j.hostname FROM dag_schedule_asset_reference r "
        "JOIN asset_watcher w ON w.asset_id = r.asset_id JOIN trigger t ON t.id = w.trigger_id "
        "JOIN job j ON j.id = t.triggerer_id WHERE r.dag_id = :dag_id AND j.state = 'running'",
        dag_id=dag_id,
    )
    return str(rows[0]["hostname"]) if rows else None


def _a_triggerer_lost_in_a_burst(cluster: Cluster) -> None:
    holder = cluster.wait_for("the workflow's watcher to run", lambda: _watcher_host(cluster, WORKFLOW), 60)
    index = int(holder.rsplit("-", 1)[1])
    ids = _insert_orders(cluster, BURST // 2, 30)
    cluster.stack.kill("airflow-triggerer", index)
    ids += _insert_orders(cluster, BURST - len(ids), 30)
    taken = cluster.wait_for(
        "the other triggerer to take the watcher over",
        lambda: (h := _watcher_host(cluster, WORKFLOW)) not in (None, holder) and h,
        120,
    )
    assert taken.startswith("airflow-triggerer-")
    cluster.wait_for(
        f"all {BURST} orders of the burst routed", lambda: len(_routed(cluster, ids)) == BURST, 420, 3
    )
    stamps = query_rows(
        cluster.app,
        "SELECT order_id, count(*) AS n FROM cluster_audit "
        "WHERE order_id = ANY(:ids) AND note LIKE 'routed:%' GROUP BY order_id",
        ids=ids,
    )
    assert len(stamps) == BURST and {s["n"] for s in stamps} == {1}, stamps
    ledger = query_rows(
        cluster.app,
        "SELECT row_key, count(*) AS n FROM rule_engine_ledger WHERE action_id = 'stamp' "
        "AND row_key = ANY(:keys) GROUP BY row_key",
        keys=[f"[{i}]" for i in ids],
    )
    assert len(ledger) == BURST and {r["n"] for r in ledger} == {1}, ledger
    cluster.stack.start(cluster.stack.replicas["airflow-triggerer"][index - 1])


def _redis_restarted(cluster: Cluster, client: httpx.Client) -> None:
    cluster.redis.stop()
    time.sleep(3)
    cluster.redis.start()
    _, state = cluster.run_dag(client, "rule__acme__archive-void-orders", timeout=300)
    assert state == "success", cluster.logs()
    assert all(r.running() for r in cluster.stack.replicas["airflow-worker"]), cluster.logs()


KILL_RULE = {
    "kind": "rule",
    "name": "note-one-order",
    "organization": "acme",
    "description": "The worker-loss test's rule: note one order, with retries.",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": {"all": [{"field": "id", "operator": "equals", "value": 0}]},
    "actions": [
        {
            "id": "note",
            "type": "update_record",
            "connection": "app_db",
            "table": "orders",
            "values": {"note": "worker-loss"},
            "retries": 2,
        },
    ],
}


def _a_worker_lost_in_an_action(cluster: Cluster, client: httpx.Client) -> None:
    [target] = _insert_orders(cluster, 1, 10)
    cluster.wait_for("the new order routed", lambda: _routed(cluster, [target]), 240)
    rule = {**KILL_RULE, "conditions": {"all": [{"field": "id", "operator": "equals", "value": target}]}}
    created = client.post("/automations/api/v1/rules", json=rule)
    assert created.status_code == 201, created.text
    dag_id = created.json()["dag_id"]
    cluster.wait_for(
        "the new rule's DAG", lambda: client.get(f"/api/v2/dags/{dag_id}").status_code == 200, 180
    )

    with cluster.app.connect() as locker:
        locker.execute(sa.text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": target})
        run = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        assert run.status_code == 200, run.text
        run_id = run.json()["dag_run_id"]
        cluster.wait_for(
            "the action's UPDATE to wait on the test's lock",
            lambda: query_rows(
                cluster.app,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE orders%'",
            ),
            180,
        )
        [first] = cluster.wait_for(
            "the worker of try 1", lambda: cluster.worker_of(dag_id, run_id, "note"), 30
        )
        index = int(first.rsplit("-", 1)[1])
        cluster.stack.kill("airflow-worker", index)
        locker.rollback()

    assert cluster.run_state(client, dag_id, run_id, timeout=300) == "success", cluster.logs()
    audit = query_rows(cluster.app, "SELECT count(*) AS n FROM cluster_audit WHERE note = 'worker-loss'")
    assert audit == [{"n": 1}], "the effect was not applied exactly once"
    ledger = query_rows(
        cluster.app,
        "SELECT count(*) AS n FROM rule_engine_ledger WHERE row_key = :k AND action_id = 'note'",
        k=f"[{target}]",
    )
    assert ledger == [{"n": 1}]
    task = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/note").json()
    assert task["try_number"] >= 2, task
    assert set(cluster.worker_of(dag_id, run_id, "note")) - {first}, "the retry did not run on another worker"
    cluster.stack.start(cluster.stack.replicas["airflow-worker"][index - 1])


def _hold_rule(name: str, order_id: int, note: str) -> dict[str, Any]:
    rule = {k: v for k, v in KILL_RULE.items() if k != "organization"}
    return {
        **rule,
        "name": name,
        "conditions": {"all": [{"field": "id", "operator": "equals", "value": order_id}]},
        "actions": [{**KILL_RULE["actions"][0], "values": {"note": note}}],  # type: ignore[index]
    }


def _task_states(cluster: Cluster, dag_ids: list[str]) -> dict[str, int]:
    rows = query_rows(
        cluster.metadata,
        "SELECT coalesce(state, 'none') AS state, count(*) AS n FROM task_instance "
        "WHERE dag_id = ANY(:dags) GROUP BY 1",
        dags=dag_ids,
    )
    return {r["state"]: int(r["n"]) for r in rows}


def _a_burst_stays_in_its_organizations_pool(cluster: Cluster, client: httpx.Client) -> None:
    api = "/automations/api/v1"
    catalog = yaml.safe_load((ROOT / "include" / "catalog" / "acme.yaml").read_text())
    beta = client.put(
        f"{api}/catalog", params={"organization": "beta"}, json={**catalog, "organization": "beta"}
    )
    assert beta.status_code in {200, 201}, beta.text
    for org in ("acme", "beta"):
        limits = client.put(f"{api}/limits", params={"organization": org}, json={"pool_slots": 2})
        assert limits.status_code == 200 and limits.json()["pool"] == f"rule_engine__{org}", limits.text
    [held, free] = _insert_orders(cluster, 2, 10)
    cluster.wait_for("the new orders routed", lambda: len(_routed(cluster, [held, free])) == 2, 240)
    burst = []
    for n in range(6):
        made = client.post(
            f"{api}/rules", params={"organization": "acme"}, json=_hold_rule(f"hold-{n}", held, f"hold {n}")
        )
        assert made.status_code == 201, made.text
        burst.append(made.json()["dag_id"])
    made = client.post(
        f"{api}/rules", params={"organization": "beta"}, json=_hold_rule("on-time", free, "on time")
    )
    assert made.status_code == 201, made.text
    on_time = made.json()["dag_id"]

    def pooled() -> bool:
        for dag_id in [*burst, on_time]:
            tasks = client.get(f"/api/v2/dags/{dag_id}/tasks")
            if tasks.status_code != 200:
                return False
            org = "beta" if dag_id == on_time else "acme"
            if {t["pool"] for t in tasks.json()["tasks"]} != {f"rule_engine__{org}"}:
                return False
        return True

    cluster.wait_for("every new DAG parsed, its tasks in its organization's pool", pooled, 180, 2)
    with cluster.app.connect() as locker:
        locker.execute(sa.text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": held})
        for dag_id in burst:
            assert (
                client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}).status_code == 200
            )
        waiting = (
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE orders%'"
        )
        cluster.wait_for(
            "acme's pool full of held actions", lambda: query_rows(cluster.app, waiting)[0]["n"] == 2, 180
        )
        _, state = cluster.run_dag(client, on_time, timeout=180)
        assert state == "success", cluster.logs()
        held_back = _task_states(cluster, burst)
        assert held_back.get("running", 0) <= 2, held_back  # acme never holds more than its 2 slots
        assert held_back.get("scheduled", 0) + held_back.get("none", 0) >= 4, held_back
        assert query_rows(cluster.app, "SELECT note FROM orders WHERE id = :id", id=free) == [
            {"note": "on time"}
        ]
        locker.rollback()
    for dag_id in burst:
        cluster.wait_for(
            f"{dag_id} done", lambda d=dag_id: _task_states(cluster, [d]).get("success") == 3, 300, 2
        )
