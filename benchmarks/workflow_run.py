"""The run-time half of benchmarks/workflow.py: ``route-new-orders`` against the same DAG written by hand.

Both run with ``dag.test(run_conf={"event_ids": [...]})`` on one demo application database (SQLite,
change capture on ``orders``): before each run, ``--orders`` new orders are inserted (their capture
events are the run's items) with the same mix of statuses and totals for both sides. Each run's row
changes are read back and must be the same on both sides and what route-new-orders promises.
"""

from __future__ import annotations

import gc
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_common import progress
from parse_store import INCLUDE, ExampleSet, store_prerequisites

HERE = Path(__file__).resolve().parent
FLOOR_FILE = HERE / "workflow_floor_dag.py"
ROUTE = INCLUDE / "workflows" / "route-new-orders.yaml"
#: The stored workflow and what it uses (its condition template first).
RUN_SET = ExampleSet("route-new-orders", (), prerequisites=(INCLUDE / "templates" / "big-order.yaml", ROUTE))
WORKFLOW_DAG_ID = "workflow__acme__route-new-orders"
FLOOR_DAG_ID = "route_new_orders_by_hand"
DEMO_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
#: (status, total) of the new orders, round robin: big-order holds for paid orders of at least 1000.
ORDER_MIX = (("paid", 5000), ("pending", 20), ("paid", 1500), ("cancelled", 3000), ("paid", 999))
COMPARED = ("priority", "note")


def is_big(status: str, total: float) -> bool:
    return status == "paid" and total >= 1000


# -- setup -----------------------------------------------------------------------------------------------


def build_app_db(path: Path) -> Any:
    """The demo data, with change capture on ``orders``."""
    import sqlalchemy as sa

    from rule_compiler.events import install

    if str(HERE.parent) not in sys.path:  # the demo database's script is loaded as the tests load it
        sys.path.insert(0, str(HERE.parent))
    from tests.demo_db import demo_db_module

    engine = sa.create_engine(f"sqlite:///{path}")
    demo_db_module().create_demo_db(engine, DEMO_NOW)
    install(engine, "orders")
    return engine


def build_run_store(url: str) -> Any:
    """A store holding the demo catalog, the condition template big-order and route-new-orders."""
    import yaml

    from rule_compiler.store import RuleStore

    store = RuleStore(url)
    store.upgrade()
    catalog = yaml.safe_load((INCLUDE / "catalog" / "acme.yaml").read_text())
    store.put_catalog(organization="acme", catalog=catalog, actor="benchmark")
    if store_prerequisites(store, RUN_SET) != [WORKFLOW_DAG_ID]:
        raise SystemExit(f"storing {ROUTE.name} did not give the DAG {WORKFLOW_DAG_ID}")
    return store


def dags_folder(work: Path, loader_file: Path) -> Path:
    """The run phase's dags folder (dag.test re-parses it on every run): the loader and the floor."""
    folder = work / "run_dags"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(loader_file, folder / loader_file.name)
    shutil.copy2(FLOOR_FILE, folder / FLOOR_FILE.name)
    return folder


def new_orders(engine: Any, count: int) -> list[tuple[int, int]]:
    """Insert ``count`` new orders (ORDER_MIX); (order id, its capture event id) of each, in order."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        last_event = conn.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM rule_engine_outbox")).scalar()
        order_ids = []
        for index in range(count):
            status, total = ORDER_MIX[index % len(ORDER_MIX)]
            order_ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO orders (customer_id, status, total, priority, deleted) "
                        "VALUES (1, :s, :t, 'low', false) RETURNING id"
                    ),
                    {"s": status, "t": total},
                ).scalar_one()
            )
        events = conn.execute(
            sa.text("SELECT id, key_json FROM rule_engine_outbox WHERE id > :last AND operation = 'created'"),
            {"last": last_event},
        ).all()
    event_of = {int(json.loads(key)["id"]): int(event_id) for event_id, key in events}
    return [(order_id, event_of[order_id]) for order_id in order_ids]


def order_rows(engine: Any, order_ids: list[int]) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    query = sa.text("SELECT * FROM orders WHERE id IN :ids ORDER BY id").bindparams(
        sa.bindparam("ids", value=order_ids, expanding=True)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def row_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per order, in order: the columns the run changed and their new values, the order's own id in
    a note written as ``{id}`` (so that both sides' changes compare)."""
    changes = []
    for old, new in zip(before, after, strict=True):
        changed = {key: new[key] for key in new if new[key] != old[key]}
        if isinstance(changed.get("note"), str):
            changed["note"] = changed["note"].replace(str(new["id"]), "{id}")
        changes.append(changed)
    return changes


def expected_changes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What route-new-orders promises for new orders that start with priority ``low`` and no note."""
    return [
        {
            "priority": "high" if is_big(row["status"], float(row["total"])) else "normal",
            "note": f"routed: order {{id}} ({row['status']})",
        }
        for row in rows
    ]


# -- timing ----------------------------------------------------------------------------------------------


class CommitCounter:
    """Transactions committed through SQLAlchemy in this process, by database file (the application
    database, the rule store with the automation log, Airflow's metadata DB)."""

    def __init__(self, names: dict[str, str]) -> None:
        import sqlalchemy as sa

        self.names = names  # database file → label
        self.counts: dict[str, int] = dict.fromkeys(names.values(), 0)
        sa.event.listen(sa.Engine, "commit", self._committed)

    def _committed(self, conn: Any) -> None:
        label = self.names.get(str(conn.engine.url.database))
        if label is not None:
            self.counts[label] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


@dataclass
class RunSide:
    """One side of the run-time comparison: its DAG and what its runs took."""

    name: str
    dag: Any
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    task_spans: list[float] = field(default_factory=list)
    task_times: dict[str, list[float]] = field(default_factory=dict)
    states: list[dict[str, str]] = field(default_factory=list)
    commits: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag.dag_id,
            "median_s": statistics.median(self.times),
            "min_s": min(self.times),
            "times_s": self.times,
            "cpu_median_s": statistics.median(self.cpu_times),
            "cpu_times_s": self.cpu_times,
            "task_span_median_s": statistics.median(self.task_spans),
            "task_spans_s": self.task_spans,
            "task_median_s": {task: statistics.median(v) for task, v in sorted(self.task_times.items())},
            "task_states": self.states[-1],
            "commits_per_run": self.commits,
        }


def run_once(
    side: RunSide,
    engine: Any,
    orders: int,
    *,
    timed: bool = True,
    commits: CommitCounter | None = None,
    profiler: Any = None,
) -> list[dict[str, Any]]:
    """One ``dag.test`` over ``orders`` new orders; the row changes it made (checked to be expected)."""
    from airflow.utils.state import DagRunState

    created = new_orders(engine, orders)
    order_ids = [order_id for order_id, _ in created]
    before = order_rows(engine, order_ids)
    gc.collect()
    committed = commits.snapshot() if commits else {}
    if profiler is not None:
        profiler.enable()
    start, cpu_start = time.perf_counter(), time.process_time()
    dag_run = side.dag.test(run_conf={"event_ids": [str(event_id) for _, event_id in created]})
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if profiler is not None:
        profiler.disable()
    if commits:
        side.commits = {name: n - committed[name] for name, n in commits.snapshot().items()}
    instances = dag_run.get_task_instances()
    states = {ti.task_id: str(ti.state) for ti in instances}
    if dag_run.state != DagRunState.SUCCESS:
        raise SystemExit(f"{side.name}: the run ended {dag_run.state}: {states}")
    changes = row_changes(before, order_rows(engine, order_ids))
    if changes != expected_changes(before):
        raise SystemExit(f"{side.name}: unexpected row changes: {changes[:5]}")
    if timed:
        side.times.append(wall)
        side.cpu_times.append(cpu)
        ran = [ti for ti in instances if ti.start_date and ti.end_date]
        side.task_spans.append(
            (max(ti.end_date for ti in ran) - min(ti.start_date for ti in ran)).total_seconds()
        )
        for ti in ran:
            side.task_times.setdefault(ti.task_id, []).append((ti.end_date - ti.start_date).total_seconds())
        side.states.append(states)
    return changes


def compare_runs(
    workflow: RunSide, floor: RunSide, engine: Any, orders: int, repeat: int, *, commits: CommitCounter
) -> dict[str, Any]:
    """A warm-up run of each side (untimed; their row changes must be equal), then ``repeat``
    alternating timed runs of each (the last counting its transactions)."""
    progress(f"run: warm-up run of each side ({orders} new orders each), then comparing their changes")
    mine, theirs = (
        run_once(workflow, engine, orders, timed=False),
        run_once(floor, engine, orders, timed=False),
    )
    if mine != theirs:
        raise SystemExit(f"the two sides changed the rows differently: {mine[:3]} against {theirs[:3]}")
    for rep in range(repeat):
        for side in (workflow, floor) if rep % 2 == 0 else (floor, workflow):
            changes = run_once(side, engine, orders, commits=commits if rep >= repeat - 2 else None)
            if changes != mine:
                raise SystemExit(f"{side.name}: repetition {rep + 1} changed the rows differently")
        progress(
            f"run: repetition {rep + 1}/{repeat}: workflow {workflow.times[-1]:.3f} s, "
            f"floor {floor.times[-1]:.3f} s"
        )
    ratio = statistics.median(workflow.times) / statistics.median(floor.times)
    return {
        "case": "run",
        "orders_per_run": orders,
        "big_orders_per_run": sum(1 for change in mine if change["priority"] == "high"),
        "identical_row_changes": True,
        "row_changes_per_run": sum(len(change) for change in mine),
        "workflow": workflow.summary(),
        "floor": floor.summary(),
        "ratio": ratio,
        "cpu_ratio": statistics.median(workflow.cpu_times) / statistics.median(floor.cpu_times),
        "task_span_ratio": statistics.median(workflow.task_spans) / statistics.median(floor.task_spans),
    }


def profile_run(side: RunSide, engine: Any, orders: int, lines: int) -> None:
    """cProfile (CPU time) one run of a side; the top functions on stderr."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile(time.process_time)
    run_once(side, engine, orders, timed=False, profiler=profiler)  # profiles dag.test alone
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    print(f"\n===== cProfile, CPU time, one run: {side.name} =====\n{stream.getvalue()}", file=sys.stderr)
