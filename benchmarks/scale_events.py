"""``benchmarks/scale.py events``: a burst of events through one event rule on the Celery profile.

docker-compose.yaml's ``celery`` profile runs here as local processes (scripts/compose_local.py,
two Celery workers, two triggerers, a Redis of its own, temporary Postgres databases). The demo's
event definitions are switched off; one event rule is stored through the REST view: on a new order,
``update_record`` its note. Then two bursts of N new orders, one path after the other:

1. ``event rule``: N rows inserted in commits of 50 as fast as Postgres takes them; each row's capture
   trigger writes the outbox, the rule's outbox watcher (a triggerer) hands the events on in batches,
   each run evaluates its batch and updates the rows in one ``update_record`` task on a worker.
2. ``floor``: a hand-written DAG of the same shape, scheduled on a plain Asset: the N rows are
   inserted first (the rule is switched off), then one asset event per row is posted to Airflow's
   API as fast as it takes them; each run reads its triggering events and updates those rows.

Latency per event: from its commit (rule) or its POST (floor) to the row showing the note, polled
every 0.1 s. Throughput: applied / (last effect - first commit or POST). Lost: rows not updated when
the watch ends (the timeout, or 60 s without a new one); doubled: rows whose update was committed
twice (counted by a trigger on ``orders``). Seen here on the floor: Airflow's asset-triggered
scheduling leaves the events that arrive while it creates a run queued until a later event comes,
so a burst's tail can wait indefinitely; the rule reads the outbox by its own cursor instead.
The only deviation from the compose file: the dags folder is a temporary one holding a symlink to
``dags/automation_dags.py`` and the floor's file (``LocalStack(overrides=...)``).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench_common import progress, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the stack launcher is shared with the cluster tests
    sys.path.insert(0, str(ROOT))

from tests.cluster.celery_stack import API, Cluster, celery_stack, deactivate  # noqa: E402
from tests.standalone import outbox_trigger_listening  # noqa: E402

RULE_NAME = "scale-burst"
FLOOR_DAG_ID = "scale_events_floor"
DEMO_EVENT_DEFINITIONS = {
    "rule": ("expedite-vip-payments",),
    "workflow": ("route-new-orders", "confirm-big-orders", "vip-order-follow-up", "approve-stale-cleanup"),
}
RULE = {
    "kind": "rule",
    "name": RULE_NAME,
    "description": "benchmarks/scale.py: stamp every new order",
    "trigger": {"type": "event", "connection": "app_db", "table": "orders", "events": ["created"]},
    "conditions": {"all": [{"field": "total", "operator": "gte", "value": 0}]},
    "actions": [
        {
            "id": "stamp",
            "type": "update_record",
            "connection": "app_db",
            "table": "orders",
            "values": {"note": "rule"},
        }
    ],
}
COUNT_SQL = """
CREATE TABLE scale_updates (order_id integer NOT NULL, note text);
CREATE FUNCTION scale_updates_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO scale_updates VALUES (NEW.id, NEW.note); RETURN NEW; END $$;
CREATE TRIGGER scale_updates AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION scale_updates_row();
"""
FLOOR_DAG = '''\
"""The floor of benchmarks/scale.py events: the event rule's shape, written by hand."""

import datetime as dt

import sqlalchemy as sa
from airflow.sdk import DAG, Asset, task

URL = {url!r}
FLOOR = Asset(name="scale_events_floor", uri="bench://scale/floor")

with DAG(dag_id={dag_id!r}, schedule=[FLOOR], start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
         catchup=False, max_active_runs=1, is_paused_upon_creation=False):

    @task
    def evaluate(**context):
        return [int(e.extra["order_id"]) for events in context["triggering_asset_events"].values()
                for e in events]

    @task
    def stamp(order_ids):
        engine = sa.create_engine(URL)
        try:
            with engine.begin() as conn:
                update = sa.text("UPDATE orders SET note = 'floor' WHERE id = ANY(:ids)")
                conn.execute(update, {{"ids": order_ids}})
        finally:
            engine.dispose()

    stamp(evaluate())
'''


@contextlib.contextmanager
def database_factory(admin_url: str) -> Iterator[Callable[[], str]]:
    """``create()`` a temporary Postgres database (all dropped at the end)."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(temporary_postgres_database(admin_url, "scale_bench"))


def _switch_off_demo(client: httpx.Client) -> None:
    for kind, names in DEMO_EVENT_DEFINITIONS.items():
        for name in names:
            deactivate(client, kind, name)


def _insert(app: sa.Engine, count: int, batch: int = 50) -> tuple[list[int], dict[int, float]]:
    """``count`` new orders in commits of ``batch``; their ids and commit times (perf_counter)."""
    ids: list[int] = []
    committed: dict[int, float] = {}
    while len(ids) < count:
        n = min(batch, count - len(ids))
        with app.begin() as conn:
            rows = conn.execute(
                sa.text(
                    "INSERT INTO orders (customer_id, status, total) SELECT 1, 'pending', 10 "
                    "FROM generate_series(1, :n) RETURNING id"
                ),
                {"n": n},
            )
            new = [int(r[0]) for r in rows]
        now = time.perf_counter()
        ids += new
        committed.update(dict.fromkeys(new, now))
    return ids, committed


def _watch(app: sa.Engine, ids: list[int], note: str, timeout: float, stall: float = 60) -> dict[int, float]:
    """When each row first showed ``note`` (perf_counter), polled every 0.1 s until all, the timeout,
    or ``stall`` seconds without a new one (what is left then waits for something that never comes)."""
    seen: dict[int, float] = {}
    deadline = time.perf_counter() + timeout
    last_progress = time.perf_counter()
    with app.connect() as conn:
        while len(seen) < len(ids) and time.perf_counter() < min(deadline, last_progress + stall):
            rows = conn.execute(
                sa.text("SELECT id FROM orders WHERE id = ANY(:ids) AND note = :note"),
                {"ids": ids, "note": note},
            )
            now = time.perf_counter()
            for (order_id,) in rows:
                if int(order_id) not in seen:
                    seen[int(order_id)] = now
                    last_progress = now
            conn.rollback()
            time.sleep(0.1)
    return seen


def _summary(
    ids: list[int], started: dict[int, float], seen: dict[int, float], app: sa.Engine, note: str
) -> dict[str, Any]:
    latencies = sorted(seen[i] - started[i] for i in ids if i in seen)
    with app.connect() as conn:
        doubled = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT order_id FROM scale_updates WHERE order_id = ANY(:ids) "
                "AND note = :note GROUP BY order_id HAVING count(*) > 1) AS d"
            ),
            {"ids": ids, "note": note},
        ).scalar_one()
    span = (max(seen.values()) - min(started.values())) if seen else float("inf")
    return {
        "events": len(ids),
        "applied": len(seen),
        "lost": len(ids) - len(seen),
        "doubled": int(doubled),
        "events_per_s": len(seen) / span if seen else 0.0,
        "span_s": span,
        "latency_p50_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "latency_max_s": latencies[-1] if latencies else None,
    }


def run_events(events: int, timeout: float, work: Path, admin_url: str) -> dict[str, Any]:
    dags = work / "dags"
    dags.mkdir()
    (dags / "automation_dags.py").symlink_to(ROOT / "dags" / "automation_dags.py")
    with database_factory(admin_url) as create:
        app_url: dict[str, str] = {}

        def create_and_note() -> str:
            url = create()
            app_url["last"] = url
            return url

        overrides = {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
        progress("starting the celery profile as local processes (init, 2 workers, 2 triggerers)")
        started = time.perf_counter()
        with celery_stack(work, create_and_note, overrides=overrides) as cluster:
            progress(f"  up in {time.perf_counter() - started:.0f} s")
            return _measure(cluster, events, timeout, dags, app_url["last"])


def _measure(cluster: Cluster, events: int, timeout: float, dags: Path, app_url: str) -> dict[str, Any]:
    floor_url = (
        sa.make_url(app_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    )
    (dags / "scale_events_floor.py").write_text(FLOOR_DAG.format(url=floor_url, dag_id=FLOOR_DAG_ID))
    with cluster.app.begin() as conn:
        conn.exec_driver_sql(COUNT_SQL)
    client = cluster.client()
    _switch_off_demo(client)
    made = client.post(f"{API}/rules", json=RULE)
    made.raise_for_status()
    rule_dag = made.json()["dag_id"]
    for dag_id in (rule_dag, FLOOR_DAG_ID):
        cluster.wait_for(
            f"{dag_id} parsed and unpaused",
            lambda d=dag_id: client.get(f"/api/v2/dags/{d}").json().get("is_paused") is False,
            300,
            2,
        )
    cluster.wait_for("the outbox trigger listening", lambda: outbox_trigger_listening(cluster.app), 300, 2)
    assets = client.get("/api/v2/assets", params={"name_pattern": "scale_events_floor"}).json()["assets"]
    [asset] = assets
    progress("warm-up: 5 events through each path")
    ids, _ = _insert(cluster.app, 5)
    _watch(cluster.app, ids, "rule", 300)

    progress(f"event rule: a burst of {events:,} new orders")
    ids, committed = _insert(cluster.app, events)
    rule = _summary(ids, committed, _watch(cluster.app, ids, "rule", timeout), cluster.app, "rule")
    progress(f"  {rule['events_per_s']:.1f} events/s, p50 {rule['latency_p50_s']}, lost {rule['lost']}")

    deactivate(client, "rule", RULE_NAME)
    progress(f"floor: {events:,} asset events posted to a hand-written DAG")
    ids, _ = _insert(cluster.app, events)
    posted: dict[int, float] = {}
    for order_id in ids:
        client.post(
            "/api/v2/assets/events", json={"asset_id": asset["id"], "extra": {"order_id": order_id}}
        ).raise_for_status()
        posted[order_id] = time.perf_counter()
    floor = _summary(ids, posted, _watch(cluster.app, ids, "floor", timeout), cluster.app, "floor")
    progress(f"  {floor['events_per_s']:.1f} events/s, p50 {floor['latency_p50_s']}, lost {floor['lost']}")
    return {
        "rule": rule,
        "floor": floor,
        "ratio": rule["events_per_s"] / floor["events_per_s"] if floor["events_per_s"] else None,
    }
