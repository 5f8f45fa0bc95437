"""Event latency benchmark: row commit to the event rule's effect, against a hand-written floor.

Under one ``airflow standalone`` (SQLite metadata DB in a temporary home, ``parallelism`` 4, no
examples), with the demo application database on a temporary Postgres database and change capture
on ``orders``, two paths are timed one event at a time, alternating:

1. ``event rule``: ``expedite-vip-payments`` (``include/rules``) is the only stored rule. An ``UPDATE``
   moves a VIP order from pending to paid and commits; the clock starts after the commit and stops
   when the row shows the action's effect (``priority = 'high'``), polled every ``--poll`` seconds.
   In between: the outbox trigger (LISTEN/NOTIFY), the asset event, the scheduler's run, the evaluate
   task and the ``update_record`` task.
2. ``floor``: a hand-written DAG of the same shape (a first task that reads the triggering asset
   event, then a second that makes the same row change with plain SQLAlchemy), scheduled on a plain
   ``Asset`` and started by ``POST /api/v2/assets/events``; the clock starts before the POST and stops
   when the row shows the change.

Before each measurement the system must be idle (every outbox event handed on, no queued asset
event, no queued or running run), so one event's runs never queue behind another's; then a random
pause of up to ``--jitter`` seconds (1 s) unties the event from Airflow's once-a-second loops, which
the idle check is otherwise in step with (without it a run's medians drift by ±0.2 s with the
phase). The first ``--warmup`` events of each path are not counted. The dags folder is a temporary
folder holding a symlink to ``dags/automation_dags.py`` and the floor DAG's file.

ratio = median(event rule) / median(floor); target 1.3.

    .venv/bin/python benchmarks/event_latency.py                 # 20 events per path (~15 min here)
    .venv/bin/python benchmarks/event_latency.py --events 5 --warmup 1
    .venv/bin/python benchmarks/event_latency.py --json result.json

Progress goes to stderr; the table (or ``--json -``) to stdout.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from bench_common import add_json_option, aligned, emit, progress, seconds, temporary_postgres_database

from rule_compiler.catalog import Catalog
from rule_compiler.events import install
from rule_compiler.events.outbox_rows import cursor_position
from rule_compiler.events.watch import Watch
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document, register
from rule_compiler.store import RuleStore

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the standalone launcher is shared with the end-to-end tests
    sys.path.insert(0, str(ROOT))
from tests.demo_db import demo_db_module  # noqa: E402
from tests.standalone import (  # noqa: E402
    Standalone,
    connection_env,
    dags_idle,
    dags_unpaused,
    outbox_trigger_listening,
    run_standalone,
)

TARGET = 1.3
RULE_FILE = ROOT / "include" / "rules" / "expedite-vip-payments.yaml"
RULE_DAG_ID = "rule__acme__expedite-vip-payments"
FLOOR_DAG_ID = "event_latency_floor"
FLOOR_ASSET = "event_latency_floor"
#: The durable cursor of the rule's trigger (its watch: orders, updated, status; ADR 0008).
_TRIGGER = read_definition_file(RULE_FILE)["trigger"]
RULE_CONSUMER = Watch.of(
    _TRIGGER["connection"], _TRIGGER["table"], _TRIGGER.get("events"), _TRIGGER.get("fields")
).consumer
DEMO_CATALOG = ROOT / "include" / "catalog" / "acme.yaml"
ADMIN = ("admin", "admin-password")
VIP_CUSTOMERS = (1, 2, 5)
DEMO_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

FLOOR_DAG = '''\
"""The floor of benchmarks/event_latency.py: the event rule's shape, written by hand."""

import datetime as dt

import sqlalchemy as sa
from airflow.sdk import DAG, Asset, task

URL = {url!r}
FLOOR = Asset(name={asset!r}, uri="bench://event-latency/floor")

with DAG(
    dag_id={dag_id!r},
    schedule=[FLOOR],
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
):

    @task
    def first(**context):
        return [int(e.extra["order_id"]) for events in context["triggering_asset_events"].values()
                for e in events]

    @task
    def second(order_ids):
        engine = sa.create_engine(URL)
        try:
            with engine.begin() as conn:
                for order_id in order_ids:
                    conn.execute(
                        sa.text("UPDATE orders SET priority = 'high', note = :n WHERE id = :i"),
                        {{"i": order_id, "n": f"floor: order {{order_id}} expedited"}},
                    )
        finally:
            engine.dispose()

    second(first())
'''

# -- arguments ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20, help="timed events per path (20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed events per path first (2)")
    parser.add_argument("--poll", type=float, default=0.02, help="row poll interval in seconds (0.02)")
    parser.add_argument(
        "--jitter",
        type=float,
        default=1.0,
        help="a random pause of up to this many seconds before each event, so events arrive at random "
        "points of Airflow's once-a-second loops (1.0; 0 sends each event as soon as the system is idle)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the jitter (1)")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds one effect may take before the run stops (300)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "AUTOMATION_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
        ),
        help="Postgres server (admin URL) for the temporary application database",
    )
    add_json_option(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and database")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


# -- setup -------------------------------------------------------------------------------------------


def build_app_db(url: str, orders_per_path: int) -> tuple[sa.Engine, list[int], list[int]]:
    """The demo data plus ``orders_per_path`` VIP pending orders per path, then capture on ``orders``;
    returns the engine and the order ids for each path."""
    app = sa.create_engine(url)
    demo_db_module().create_demo_db(app, DEMO_NOW)
    ids: list[int] = []
    with app.begin() as conn:
        for i in range(2 * orders_per_path):
            ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO orders (customer_id, status, total, priority) "
                        "VALUES (:c, 'pending', :t, 'normal') RETURNING id"
                    ),
                    {"c": VIP_CUSTOMERS[i % len(VIP_CUSTOMERS)], "t": 500 + i},
                ).scalar_one()
            )
    install(app, "orders")
    progress(f"app db: demo data, {len(ids)} VIP pending orders for the benchmark, capture on orders")
    return app, ids[:orders_per_path], ids[orders_per_path:]


def build_store(url: str) -> None:
    store = RuleStore(url)
    try:
        store.upgrade()
        catalog = yaml.safe_load(DEMO_CATALOG.read_text())
        store.put_catalog(organization="acme", catalog=catalog, actor="bench")
        compiled = compile_document(read_definition_file(RULE_FILE), Catalog.model_validate(catalog))
        register(store, compiled, actor="bench")
    finally:
        store.close()
    progress(f"store: demo catalog and {RULE_FILE.name}")


def dags_folder(work: Path, app_url: str) -> Path:
    folder = work / "dags"
    folder.mkdir()
    (folder / "automation_dags.py").symlink_to(ROOT / "dags" / "automation_dags.py")
    (folder / "event_latency_floor.py").write_text(
        FLOOR_DAG.format(url=app_url, asset=FLOOR_ASSET, dag_id=FLOOR_DAG_ID)
    )
    return folder


# -- timing ------------------------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], interval: float, timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds (polled every ``interval``); SystemExit after ``timeout``."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter() - started


class Bench:
    """One standalone, the two paths, and the idle check between measurements."""

    def __init__(self, standalone: Standalone, app: sa.Engine, args: argparse.Namespace) -> None:
        self.standalone = standalone
        self.app = app
        self.args = args
        self.poller = sa.create_engine(app.url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.client = standalone.client()
        self.client.headers["Authorization"] = f"Bearer {standalone.token(*ADMIN)}"
        self.floor_asset_id: int | None = None
        self.started_at = datetime.now(UTC)
        self.random = random.Random(args.seed)

    def prepare(self) -> None:
        dag_ids = (RULE_DAG_ID, FLOOR_DAG_ID)
        self.standalone.wait_for("both DAGs, unpaused", lambda: dags_unpaused(self.client, dag_ids), 300)
        progress("both DAGs parsed and unpaused")
        self.standalone.wait_for(
            "the outbox trigger in the triggerer", lambda: outbox_trigger_listening(self.app), 300
        )
        progress("the outbox trigger is running")
        assets = self.client.get("/api/v2/assets", params={"name_pattern": FLOOR_ASSET}).json()["assets"]
        [asset] = [a for a in assets if a["name"] == FLOOR_ASSET]
        self.floor_asset_id = int(asset["id"])

    def idle(self) -> bool:
        with self.poller.connect() as conn:
            last = conn.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM rule_engine_outbox")).scalar_one()
            if cursor_position(conn, RULE_CONSUMER) != last:
                return False
        return dags_idle(self.client, (RULE_DAG_ID, FLOOR_DAG_ID))

    def wait_idle(self) -> None:
        self.standalone.wait_for("an idle system", self.idle, self.args.timeout, interval=0.5)

    def pause(self) -> None:
        """Idle is noticed at a moment tied to Airflow's own loops (the scheduler's and the
        triggerer's run about once a second); a random pause unties the next event from them, as
        real changes are."""
        time.sleep(self.random.uniform(0, self.args.jitter))

    def effect_seen(self, order_id: int) -> Callable[[], bool]:
        query = sa.text("SELECT priority FROM orders WHERE id = :i")

        def check() -> bool:
            with self.poller.connect() as conn:
                return bool(conn.execute(query, {"i": order_id}).scalar_one() == "high")

        return check

    def event_rule(self, order_id: int) -> float:
        with self.app.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE id = :i"), {"i": order_id})
        self.started_at = datetime.now(UTC)
        return wait_until(self.effect_seen(order_id), self.args.poll, self.args.timeout, f"order {order_id}")

    def floor(self, order_id: int) -> float:
        check = self.effect_seen(order_id)
        self.started_at = datetime.now(UTC)
        started = time.perf_counter()
        response = self.client.post(
            "/api/v2/assets/events", json={"asset_id": self.floor_asset_id, "extra": {"order_id": order_id}}
        )
        response.raise_for_status()
        remaining = self.args.timeout - (time.perf_counter() - started)
        return (time.perf_counter() - started) + wait_until(
            check, self.args.poll, remaining, f"floor order {order_id}"
        )

    def phases(self, dag_id: str, latency: float) -> dict[str, float]:
        """Where one measured event's time went, from Airflow's own records (call once idle): start →
        asset event → run queued → first task start/end → second task start → effect seen."""
        runs = self.client.get(
            f"/api/v2/dags/{dag_id}/dagRuns",
            params={"start_date_gte": self.started_at.isoformat(), "order_by": "start_date", "limit": 1},
        ).json()["dag_runs"]
        if not runs:
            return {}
        run = runs[0]
        run_path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
        events = self.client.get(f"{run_path}/upstreamAssetEvents").json()["asset_events"]
        tasks = sorted(
            (
                ti
                for ti in self.client.get(f"{run_path}/taskInstances").json()["task_instances"]
                if ti["start_date"]
            ),
            key=lambda ti: ti["start_date"],
        )[:2]
        if not events or len(tasks) < 2:
            return {}
        at = [
            _instant(min(event["timestamp"] for event in events)),
            _instant(run["queued_at"]),
            _instant(tasks[0]["start_date"]),
            _instant(tasks[0]["end_date"]),
            _instant(tasks[1]["start_date"]),
        ]
        start = self.started_at.timestamp()
        return {
            "to_asset_event_s": at[0] - start,
            "to_run_queued_s": at[1] - at[0],
            "to_first_task_s": at[2] - at[1],
            "first_task_s": at[3] - at[2],
            "between_tasks_s": at[4] - at[3],
            "second_task_to_effect_s": start + latency - at[4],
        }


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


PHASES = (
    ("to_asset_event_s", "start -> asset event"),
    ("to_run_queued_s", "asset event -> run queued"),
    ("to_first_task_s", "run queued -> first task starts"),
    ("first_task_s", "first task"),
    ("between_tasks_s", "first task ends -> second starts"),
    ("second_task_to_effect_s", "second task starts -> effect seen"),
)


def summary(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "median_s": statistics.median(ordered),
        "p95_s": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],  # nearest rank
        "min_s": ordered[0],
        "max_s": ordered[-1],
        "times_s": times,
    }


def table(result: dict[str, Any]) -> str:
    event, floor = result["event_rule"], result["floor"]
    rows = [
        ("path", "events", "median", "p95", "median vs floor", "p95 vs floor"),
        (
            "event rule (outbox trigger)",
            str(len(event["times_s"])),
            f"{event['median_s']:.2f} s",
            f"{event['p95_s']:.2f} s",
            f"{result['ratio']:.2f}x",
            f"{result['p95_ratio']:.2f}x",
        ),
        (
            "floor (hand-written DAG, REST asset event)",
            str(len(floor["times_s"])),
            f"{floor['median_s']:.2f} s",
            f"{floor['p95_s']:.2f} s",
            "1.00x",
            "1.00x",
        ),
    ]
    lines = aligned(rows, rule=False)
    lines.append(f"target: median ratio <= {TARGET}x -> {result['verdict']}")
    if result.get("phases"):
        lines.append("")
        lines.append("median of each phase (Airflow's timestamps)   event rule   floor")
        for key, label in PHASES:
            event_phase = result["phases"]["event_rule"].get(key)
            floor_phase = result["phases"]["floor"].get(key)
            if event_phase is not None and floor_phase is not None:
                lines.append(f"  {label:<44}{event_phase:>8.2f} s  {floor_phase:>6.2f} s")
    return "\n".join(lines)


def _phase_medians(rows: list[dict[str, float]]) -> dict[str, float]:
    found = [row for row in rows if row]
    return {key: statistics.median(row[key] for row in found) for key, _ in PHASES} if found else {}


# -- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="event-latency-"))
    progress(f"work folder {work}")
    per_path = args.warmup + args.events
    try:
        with (
            temporary_postgres_database(args.pg_url, "event_latency", keep=args.keep) as app_url,
            temporary_postgres_database(args.pg_url, "event_latency_airflow", keep=args.keep) as meta_url,
        ):
            app, rule_orders, floor_orders = build_app_db(app_url, per_path)
            store_url = f"sqlite:///{work / 'automation.db'}"
            build_store(store_url)
            env = {
                "AUTOMATION_STORE_URL": store_url,
                "AUTOMATION_SNAPSHOT_PATH": str(work / "snapshot.json"),
                "AIRFLOW_CONN_APP_DB": connection_env(app_url),
            }
            progress("starting airflow standalone")
            with run_standalone(
                work / "airflow",
                metadata_url=meta_url,
                users={ADMIN[0]: ("admin", ADMIN[1])},
                dags_folder=dags_folder(work, app_url),
                parallelism=4,
                env=env,
            ) as standalone:
                progress(f"api-server healthy after {standalone.wait_healthy(300):.1f} s")
                bench = Bench(standalone, app, args)
                bench.prepare()
                times: dict[str, list[float]] = {"event_rule": [], "floor": []}
                phases: dict[str, list[dict[str, float]]] = {"event_rule": [], "floor": []}
                for i in range(per_path):
                    for name, measure, order_id, dag_id in (
                        ("event_rule", bench.event_rule, rule_orders[i], RULE_DAG_ID),
                        ("floor", bench.floor, floor_orders[i], FLOOR_DAG_ID),
                    ):
                        bench.wait_idle()
                        bench.pause()
                        elapsed = measure(order_id)
                        label = "warm-up" if i < args.warmup else f"{i - args.warmup + 1}/{args.events}"
                        if i >= args.warmup:
                            times[name].append(elapsed)
                            bench.wait_idle()
                            phases[name].append(bench.phases(dag_id, elapsed))
                        progress(f"{name:<10} {label:>7}: {elapsed:.2f} s")
                bench.wait_idle()
                progress("stopping airflow standalone")
            app.dispose()
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    event, floor = summary(times["event_rule"]), summary(times["floor"])
    ratio = event["median_s"] / floor["median_s"]
    result: dict[str, Any] = {
        "setup": {
            "events": args.events,
            "warmup": args.warmup,
            "poll_s": args.poll,
            "jitter_s": args.jitter,
            "parallelism": 4,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        },
        "event_rule": event,
        "floor": floor,
        "ratio": ratio,
        "p95_ratio": event["p95_s"] / floor["p95_s"],
        "target": TARGET,
        "verdict": "PASS" if ratio <= TARGET else "FAIL",
        "phases": {name: _phase_medians(rows) for name, rows in phases.items()},
    }
    progress(f"event rule {seconds(times['event_rule'])}")
    progress(f"floor      {seconds(times['floor'])}")
    emit(result, args.json, table)
    return result


if __name__ == "__main__":
    main()
