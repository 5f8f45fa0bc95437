"""Scale benchmark: what a large deployment costs, side by side with the same DAGs written by hand.

``parse``: N stored rules (default 10,000; copies of ``include/rules/``, registered as the CLI does,
exactly as ``benchmarks/parse.py`` builds them). Each repetition starts a fresh process per side, as
the DAG processor does for every file: a ``DagBag`` over a folder with the loader
(``dags/automation_dags.py``) against a folder with one generated file of the same N DAGs written
by hand, then every DAG serialized as the DAG processor does before writing it. Timed after the
imports (both sides pay them alike); the process's peak resident memory is read from the kernel.
ratio = median(loader parse + serialization) / median(floor); target 1.1. It also says how many
loader files (shards) keep one parse under ``--timeout`` (``dag_file_processor_timeout``) with a
50 % margin.

    .venv/bin/python benchmarks/scale.py parse                     # 10,000 rules, 3 repetitions
    .venv/bin/python benchmarks/scale.py parse --rules 2000 --repeat 5 --json result.json

``events``: a burst of N events (default 1,000) through one event rule on the Celery profile, beside
the same burst through a hand-written DAG (benchmarks/scale_events.py says how). It prints events/s,
p50/p95 latency, lost and doubled; ratio = events/s of the rule / events/s of the floor. Goal: at
least 100 events/s, 0 lost, 0 doubled.

    .venv/bin/python benchmarks/scale.py events --events 1000

``schedule``: N schedule rules firing every minute (default 1,000), the scheduling delay (a run's start
minus its cron tick, Airflow's ``dagrun.schedule_delay``) against the same DAGs written by hand
(benchmarks/scale_schedule.py says how); ratio = p50 and p95 of the rules' delays / the floor's.

    .venv/bin/python benchmarks/scale.py schedule --schedule-rules 1000 --minutes 5

Progress goes to stderr; the table (or ``--json -``) to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import add_json_option, aligned, emit, progress
from parse import LOADER_FILE, prepare_environment
from parse_floor import write_hand_written
from parse_store import build_store, rule_store_database

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("scale_child.py")
TARGET = 1.1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=["parse", "events", "schedule"], help="what to measure")
    parser.add_argument("--schedule-rules", type=int, default=1000, help="rules firing every minute (1,000)")
    parser.add_argument("--minutes", type=int, default=5, help="minutes of runs watched per side (5)")
    parser.add_argument("--events", type=int, default=1000, help="events per burst (1,000)")
    parser.add_argument("--event-timeout", type=float, default=900, help="seconds a burst may take (900)")
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        help="Postgres server for the events case's temporary databases",
    )
    parser.add_argument("--rules", type=int, default=10_000, help="stored rules (10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed fresh-process parses per side (3)")
    parser.add_argument("--timeout", type=float, default=120.0, help="dag_file_processor_timeout, s (120)")
    parser.add_argument("--store-url", help="a postgresql URL (a temporary database is made there)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.rules < 1 or args.repeat < 1:
        parser.error("--rules and --repeat must be at least 1")
    return args


def child_parse(folder: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(folder)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the parse of {folder} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _side(runs: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [r["parse_s"] + r["serialize_s"] for r in runs]
    return {
        "dags": runs[0]["dags"],
        "parse_median_s": statistics.median(r["parse_s"] for r in runs),
        "serialize_median_s": statistics.median(r["serialize_s"] for r in runs),
        "total_median_s": statistics.median(totals),
        "totals_s": totals,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "rss_after_imports_mb": statistics.median(r["rss_after_imports_mb"] for r in runs),
        "serialized_bytes": runs[0]["serialized_bytes"],
    }


def run_parse(args: argparse.Namespace, work: Path, store_url: str) -> dict[str, Any]:
    prepare_environment(work, store_url)
    os.environ["SCALE_PYCACHE_PREFIX"] = str(work / "pycache")
    progress(f"building a store with {args.rules:,} rules")
    start = time.perf_counter()
    store, dag_ids = build_store(store_url, args.rules)
    build_s = time.perf_counter() - start
    specs = store.loadable_specs()
    loader = work / "loader"
    loader.mkdir()
    shutil.copy2(LOADER_FILE, loader / LOADER_FILE.name)
    floor_bytes = write_hand_written(
        work / "floor" / "hand_written_dags.py", specs, f"{len(specs)} automation DAGs, written by hand."
    )
    sides = {"loader": loader, "floor": work / "floor"}
    progress("warming up (bytecode caches, the loader's snapshot): one untimed parse per side")
    for folder in sides.values():
        child_parse(folder)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for rep in range(args.repeat):
        for name in sides if rep % 2 == 0 else reversed(list(sides)):
            runs[name].append(child_parse(sides[name]))
        progress(
            f"repetition {rep + 1}/{args.repeat}: loader {runs['loader'][-1]['parse_s']:.1f}+"
            f"{runs['loader'][-1]['serialize_s']:.1f} s, floor {runs['floor'][-1]['parse_s']:.1f}+"
            f"{runs['floor'][-1]['serialize_s']:.1f} s"
        )
    result = {name: _side(found) for name, found in runs.items()}
    if result["loader"]["dags"] != result["floor"]["dags"] or result["loader"]["dags"] != len(dag_ids):
        raise SystemExit(
            f"the sides found different DAGs: {result['loader']['dags']} {result['floor']['dags']}"
        )
    ratio = result["loader"]["total_median_s"] / result["floor"]["total_median_s"]
    per_file = result["loader"]["total_median_s"]
    shards = max(1, math.ceil(per_file * 1.5 / args.timeout))
    return {
        "case": "parse",
        "setup": {
            "rules": args.rules,
            "dags": len(dag_ids),
            "repeat": args.repeat,
            "build_store_s": build_s,
            "floor_file_bytes": floor_bytes,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        **result,
        "ratio": ratio,
        "target": TARGET,
        "memory_ratio": result["loader"]["peak_rss_mb"] / result["floor"]["peak_rss_mb"],
        "timeout_s": args.timeout,
        "shards_for_timeout": shards,
    }


def events_table(result: dict[str, Any]) -> str:
    rows = [("path", "events", "applied", "lost", "doubled", "events/s", "p50", "p95", "max")]
    for name in ("rule", "floor"):
        side = result[name]
        rows.append(
            (
                "event rule" if name == "rule" else "hand-written DAG",
                f"{side['events']:,}",
                f"{side['applied']:,}",
                str(side["lost"]),
                str(side["doubled"]),
                f"{side['events_per_s']:.1f}",
                *(
                    f"{side[k]:.2f} s" if side[k] is not None else "-"
                    for k in ("latency_p50_s", "latency_p95_s", "latency_max_s")
                ),
            )
        )
    ratio = result["ratio"]
    return "\n".join(
        [
            "scale: a burst of events on the Celery profile (2 workers x 4 slots, 2 triggerers)",
            *aligned(rows),
            f"ratio (events/s, rule / hand-written): {ratio:.2f}" if ratio else "ratio: -",
        ]
    )


def schedule_table(result: dict[str, Any]) -> str:
    rows = [("side", "runs expected", "runs started", "delay p50", "delay p95", "max")]
    for name in ("loader", "floor"):
        side = result[name]
        rows.append(
            (
                "schedule rules" if name == "loader" else "hand-written DAGs",
                f"{side['runs_expected']:,}",
                f"{side['runs_started']:,}",
                *(
                    f"{side[k]:.2f} s" if side[k] is not None else "-"
                    for k in ("delay_p50_s", "delay_p95_s", "delay_max_s")
                ),
            )
        )
    ratios = ", ".join(
        f"{key.removeprefix('delay_').removesuffix('_s')} {value:.2f}"
        for key, value in result["ratio"].items()
    )
    return "\n".join(
        [
            f"scale: {result['rules']:,} rules every minute, {result['minutes']} minute(s) per side",
            *aligned(rows),
            f"ratio (rules / hand-written): {ratios or '-'}",
        ]
    )


def table(result: dict[str, Any]) -> str:
    if result.get("case") == "events":
        return events_table(result)
    if result.get("case") == "schedule":
        return schedule_table(result)
    setup = result["setup"]
    rows = [("side", "DAGs", "parse p50", "serialize p50", "total p50", "peak RSS", "after imports")]
    for name in ("loader", "floor"):
        side = result[name]
        rows.append(
            (
                name,
                f"{side['dags']:,}",
                f"{side['parse_median_s']:.2f} s",
                f"{side['serialize_median_s']:.2f} s",
                f"{side['total_median_s']:.2f} s",
                f"{side['peak_rss_mb']:,.0f} MB",
                f"{side['rss_after_imports_mb']:,.0f} MB",
            )
        )
    lines = [
        f"scale: parse + serialization of {setup['rules']:,} stored rules ({setup['repeat']} fresh-process "
        f"parses per side, Python {setup['python']}, {setup['cpus']} CPUs)",
        *aligned(rows),
        f"ratio (loader / hand-written, parse + serialization): {result['ratio']:.2f}  (target {TARGET})",
        f"peak memory ratio: {result['memory_ratio']:.2f}",
        f"one loader file under dag_file_processor_timeout={result['timeout_s']:.0f} s with a 50 % margin: "
        f"{result['shards_for_timeout']} shard(s)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    progress(f"working in {work}")
    try:
        if args.case == "schedule":
            from scale_schedule import run_schedule

            result = {
                "case": "schedule",
                **run_schedule(args.schedule_rules, args.minutes, work, args.pg_admin_url),
            }
        elif args.case == "events":
            from scale_events import run_events

            result = {
                "case": "events",
                **run_events(args.events, args.event_timeout, work, args.pg_admin_url),
            }
        else:
            with rule_store_database(args.store_url, work, keep=args.keep) as store_url:
                result = run_parse(args, work, store_url)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    emit(result, args.json, table)
    return result


if __name__ == "__main__":
    main()
