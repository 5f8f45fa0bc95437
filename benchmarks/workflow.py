"""Workflow benchmark: workflows against the same DAGs written by hand, side by side in one run.

Two ratios, each against a baseline measured in the same run (after every import):

1. ``run``: the 6-node workflow ``include/workflows/route-new-orders.yaml`` (event trigger; the
   condition ``is-big`` using the template ``big-order``; ``make-high`` / ``make-normal``; the join
   ``routed``; ``stamp``; and the engine's ``record_outcome``) run with
   ``dag.test(run_conf={"event_ids": [...]})`` over ``--orders`` new orders of the demo database
   (SQLite, change capture on ``orders``), against ``benchmarks/workflow_floor_dag.py``: the same
   shape as plain PythonOperator / BranchPythonOperator tasks doing the same row changes with plain
   SQLAlchemy. Fresh orders (and events) every run; both sides' row changes must be equal and as the
   workflow promises (priority by big-order, then the note), else the run stops (exit status 2).
   After an untimed warm-up run of each, ``--runs`` alternating timed runs of each side.
   ``dag.test`` re-parses the dags folder (the loader with that one workflow, and the floor's file)
   and writes the run's rows in the metadata DB on both sides; the table also gives the ratio of the
   task span (first task's start to last task's end), which leaves that out.
2. ``parse``: ``--workflows`` stored copies of ``route-new-orders`` and ``monday-sales-review``
   (round robin, named ``bench-NNNN-<example>``; stored after the template and the report
   ``weekly-sales`` they use, whose DAG is in both bags too) parsed by the loader
   (``dags/automation_dags.py``) against one generated file holding the same DAGs written by hand
   (``parse_floor.py``; the same operators, edges, trigger rules, timetables and params, checked);
   ``--repeat`` alternating timed parses, as ``benchmarks/parse.py`` does.

ratio = median(workflow side) / median(hand-written side); target 1.1 for both.

    .venv/bin/python benchmarks/workflow.py                         # ~3 min; 1,000 workflows, 20 orders a run
    .venv/bin/python benchmarks/workflow.py --workflows 200 --runs 3 --repeat 3
    .venv/bin/python benchmarks/workflow.py --profile 30             # and cProfile one run of each side
    .venv/bin/python benchmarks/workflow.py --json result.json       # the table, and JSON into a file

Progress goes to stderr; the table (or ``--json -``) to stdout. Tests never assert its times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from bench_common import add_json_option, emit, progress
from parse import (
    LOADER_FILE,
    QueryCounter,
    Side,
    env_override,
    loader_only_steps,
    parse,
    prepare_environment,
    profile_parse,
    run_case,
)
from parse_floor import write_hand_written
from parse_store import WORKFLOWS, build_store, check_store_is_reread, rule_store_database
from workflow_report import table
from workflow_run import (
    FLOOR_DAG_ID,
    WORKFLOW_DAG_ID,
    CommitCounter,
    RunSide,
    build_app_db,
    build_run_store,
    compare_runs,
    dags_folder,
    profile_run,
)

TARGET = 1.1
APP_URL_ENV = "WORKFLOW_BENCH_APP_URL"  # read by the floor's DAG file


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=1000, help="stored workflows to parse (1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed parses of each side (5)")
    parser.add_argument("--runs", type=int, default=11, help="timed dag.test runs of each side (11)")
    parser.add_argument("--orders", type=int, default=20, help="new orders (items) per run (20)")
    parser.add_argument(
        "--store-url",
        help="the parse's rule store server: a postgresql URL (a temporary database is made there), or a "
        "sqlite URL of a file that does not exist yet; default: a temporary SQLite file",
    )
    add_json_option(parser)
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=30,
        default=0,
        metavar="LINES",
        help="after timing, cProfile (CPU time) one run and 3 parses of each side; top LINES (30) on stderr",
    )
    parser.add_argument(
        "--tmp",
        type=Path,
        help="where the temporary folder (its SQLite files: metadata DB, store, demo database) goes; "
        "default: the system's; /dev/shm (tmpfs) takes the disk's commit latency out",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and database)")
    args = parser.parse_args(argv)
    for name in ("workflows", "repeat", "runs", "orders"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="workflow-bench-", dir=args.tmp))
    progress(f"working in {work}")
    try:
        # Airflow logs (its dependencies' deprecation warnings, dag.test) on stdout: keep that for the table
        with (
            redirect_stdout(sys.stderr),
            rule_store_database(args.store_url, work, keep=args.keep) as store_url,
        ):
            result = run(args, work, store_url)
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    emit(result, args.json, table)
    return result


def prepare(work: Path, store_url: str) -> dict[str, str]:
    """parse.py's environment, then the run phase's: its dags folder (which dag.test re-parses), the
    application database behind ``app_db``, and a metadata DB migrated before ``import airflow``."""
    prepare_environment(work, store_url)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder(work, LOADER_FILE))
    app_path = work / "demo_app.db"
    os.environ["AIRFLOW_CONN_APP_DB"] = json.dumps({"conn_type": "sqlite", "host": str(app_path)})
    os.environ[APP_URL_ENV] = f"sqlite:///{app_path}"
    progress("migrating a fresh Airflow metadata DB (SQLite)")
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ
    )
    return {
        "app_db": str(app_path),
        "run_store": f"sqlite:///{work / 'run-store.db'}",
        "run_snapshot": str(work / "run-snapshot.json"),
    }


def run(args: argparse.Namespace, work: Path, store_url: str) -> dict[str, Any]:
    paths = prepare(work, store_url)
    progress("importing airflow and the rule engine")
    import airflow
    import sqlalchemy as sa
    from rule_engine import loader as _loader  # noqa: F401 - imported before timing

    setup: dict[str, Any] = {
        "workflows": args.workflows,
        "repeat": args.repeat,
        "runs": args.runs,
        "orders": args.orders,
        "store_backend": sa.make_url(store_url).get_backend_name(),
        "temporary_folder": str(work.parent),
        "python": platform.python_version(),
        "airflow": airflow.__version__,
    }
    with (
        env_override("AUTOMATION_STORE_URL", paths["run_store"]),  # type: ignore[arg-type]
        env_override("AUTOMATION_SNAPSHOT_PATH", Path(paths["run_snapshot"])),
    ):
        run_case_result = _run_phase(args, paths)
    cases = [run_case_result, _parse_phase(args, work, store_url, setup)]
    return {"setup": setup, "cases": cases, "store_reread_check": setup.pop("store_reread_check")}


def _run_phase(args: argparse.Namespace, paths: dict[str, str]) -> dict[str, Any]:
    progress("run: the demo database, and a store holding big-order and route-new-orders")
    engine = build_app_db(Path(paths["app_db"]))
    build_run_store(paths["run_store"]).close()
    bag = parse(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]))
    if bag.import_errors or {WORKFLOW_DAG_ID, FLOOR_DAG_ID} - set(bag.dag_ids):
        raise SystemExit(f"run: the dags folder did not give both DAGs: {bag.dag_ids} {bag.import_errors}")
    workflow, floor = RunSide("workflow", bag.dags[WORKFLOW_DAG_ID]), RunSide("floor", bag.dags[FLOOR_DAG_ID])
    commits = CommitCounter(
        {paths["app_db"]: "app_db", paths["run_store"].removeprefix("sqlite:///"): "rule_store"}
        | {str(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"): "airflow_db"}
    )
    result = compare_runs(workflow, floor, engine, args.orders, args.runs, commits=commits)
    result["target"] = TARGET
    result["verdict"] = "PASS" if result["ratio"] <= TARGET else "FAIL"
    if args.profile:
        for side in (workflow, floor):
            profile_run(side, engine, args.orders, args.profile)
    engine.dispose()
    return result


def _parse_phase(
    args: argparse.Namespace, work: Path, store_url: str, setup: dict[str, Any]
) -> dict[str, Any]:
    progress(f"parse: building a {setup['store_backend']} store with {args.workflows} workflows")
    start = time.perf_counter()
    store, dag_ids = build_store(store_url, args.workflows, WORKFLOWS)
    setup["build_store_s"] = time.perf_counter() - start
    specs = store.loadable_specs()
    if sorted(dag_ids) != [row.dag_id for row in specs]:
        raise SystemExit("the store does not hold exactly the registered workflows (and their report)")
    loader_folder = work / "loader"
    loader_folder.mkdir(exist_ok=True)
    shutil.copy2(LOADER_FILE, loader_folder / LOADER_FILE.name)
    setup["floor_bytes"] = write_hand_written(
        work / "floor_all" / "hand_written_dags.py",
        specs,
        f"{len(specs)} workflow DAGs (and the report they run), written by hand.",
    )
    sys.pycache_prefix = str(work / "pycache")  # the floor's bytecode cached, as in benchmarks/parse.py
    sys.dont_write_bytecode = False
    case = run_case(
        "parse",
        None,
        loader=Side("loader", loader_folder),
        floor=Side("floor", work / "floor_all"),
        repeat=args.repeat,
        counter=QueryCounter(),
    )
    case["trigger_rules"] = _trigger_rules(parse(work / "floor_all"))
    case["loader_only_steps"] = loader_only_steps(None, max(args.repeat, 5))
    if args.profile:
        case["profile"] = {
            "loader": profile_parse(loader_folder, args.profile, "parse: loader", None),
            "floor": profile_parse(work / "floor_all", args.profile, "parse: floor", None),
        }
    progress("parse: checking that the loader follows the store (add a workflow, parse, delete it, parse)")
    setup["store_reread_check"] = check_store_is_reread(store, loader_folder, len(specs), parse, WORKFLOWS)
    store.close()
    return case


def _trigger_rules(bag: Any) -> dict[str, str]:
    """Task → its operator class and trigger rule, in one route-new-orders copy."""
    dag = next(bag.dags[d] for d in sorted(bag.dag_ids) if d.endswith("route-new-orders"))
    return {
        task.task_id: f"{type(task).__name__} ({getattr(task.trigger_rule, 'value', task.trigger_rule)})"
        for task in sorted(dag.tasks, key=lambda t: t.task_id)
    }


if __name__ == "__main__":
    main()
