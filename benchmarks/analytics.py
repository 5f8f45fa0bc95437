"""Analytics benchmark: p50/p95 of each analytics query read from the rollups, side by side with the
same numbers computed by a raw ``GROUP BY`` over the automation log, with a large log in Postgres.

The rule store is a temporary Postgres database (created on the ``--postgres`` server, dropped at the
end unless ``--keep``). Its automation log gets ``--rows`` runs (default 1,000,000: 5 organizations,
20 definitions each, 30 days) and their action results, generated inside Postgres (see
``analytics_workload.py``). The rollups are then built from that log by ``RuleStore.rebuild_rollups``
(the path ``rule-compiler stats rebuild`` takes; its time is printed), and both sides are
``VACUUM ANALYZE``-d.

Queries, each ``--repeats`` (30) times per side, alternating, over ``acme`` (a fifth of the log):

1. ``overview, 30 days by day``: ``RuleStore.organization_analytics``; raw: per definition, per day and
   in total, with ``percentile_cont``, and the top errors (``analytics_workload.raw_organization``).
2. ``overview, 7 days by hour``: the same over the last week.
3. ``definition, 30 days by day``: ``RuleStore.definition_analytics`` of one rule; raw: per day, in
   total, per action, and its errors (``analytics_workload.raw_definition``).

Every answer is checked against the raw one: counts and rates exactly equal, p50 and p95 within one
histogram bin (about 19 %) of ``percentile_cont``; any difference is printed and the exit status is 1.
Then ``EXPLAIN (ANALYZE, BUFFERS)`` of each statement the store ran for one request of each query.
ratio = raw / rollups (how many times faster the rollups are); p50/p95 are nearest-rank percentiles.

    .venv/bin/python benchmarks/analytics.py                 # 1,000,000 runs (~6 min)
    .venv/bin/python benchmarks/analytics.py --rows 20000 --repeats 5
    .venv/bin/python benchmarks/analytics.py --json result.json

Progress goes to stderr; the table and the plans (or ``--json -``) to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import sqlalchemy as sa
from analytics_workload import (
    DAYS,
    NOW,
    ORG,
    analyze_rollups,
    compare,
    load_log,
    raw_definition,
    raw_organization,
    raw_triggers,
    rollup_definition,
    rollup_organization,
    rollup_triggers,
    trigger_watches,
)
from api_workload import captured_statements, explain
from bench_common import add_json_option, aligned, emit, progress, temporary_postgres_database

from rule_compiler.store import RuleStore
from rule_compiler.store.analytics import TimeRange
from rule_compiler.store.trigger_analytics import trigger_analytics

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
GOAL_MS = 100.0
DEFINITION = ("rule", "def-03")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="automation-log runs to load (1,000,000)")
    parser.add_argument("--repeats", type=int, default=30, help="timed requests per query, each side (30)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a server's admin URL")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    add_json_option(parser)
    return parser.parse_args(argv)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Query(NamedTuple):
    """A timed analytics query: the store's call, the raw GROUP BY, and how the store's answer is
    keyed for ``analytics_workload.compare``."""

    name: str
    rollups: Callable[[], Any]
    raw: Callable[[sa.Connection], Any]
    comparable: Callable[[Any], Any]


def queries(
    store: RuleStore,
) -> list[tuple[str, Callable[[], Any], Callable[[sa.Connection], Any], Any, Any]]:
    """(name, rollup call, raw call, how each answer becomes comparable)."""
    month = TimeRange.of(NOW - dt.timedelta(days=DAYS), NOW, "day")
    week = TimeRange.of(NOW - dt.timedelta(days=7), NOW, "hour")
    kind, name = DEFINITION
    return [
        Query(
            "overview, 30 days by day",
            lambda: store.organization_analytics(ORG, month),
            lambda conn: raw_organization(conn, month.since, month.until, "day"),
            rollup_organization,
        ),
        Query(
            "overview, 7 days by hour",
            lambda: store.organization_analytics(ORG, week),
            lambda conn: raw_organization(conn, week.since, week.until, "hour"),
            rollup_organization,
        ),
        Query(
            "triggers, 30 days",
            lambda: _triggers(store, month),
            lambda conn: raw_triggers(conn, month.since, month.until),
            rollup_triggers,
        ),
        Query(
            "definition, 30 days by day",
            lambda: store.definition_analytics(ORG, kind, name, month),
            lambda conn: raw_definition(conn, month.since, month.until, "day", kind=kind, name=name),
            rollup_definition,
        ),
    ]


def _triggers(store: RuleStore, span: TimeRange) -> Any:
    """What ``GET /analytics/triggers`` reads (the benchmark stores no definitions: the watches are given)."""
    with store.engine.connect() as conn:
        return trigger_analytics(conn, ORG, span, trigger_watches())


def measure(store: RuleStore, repeats: int) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for name, rollup_call, raw_call, comparable in queries(store):
        progress(f"timing {name}")
        rollup_times: list[float] = []
        raw_times: list[float] = []
        for i in range(repeats + 1):  # the first of each is a warm-up
            started = time.perf_counter()
            found = rollup_call()
            rollup_seconds = time.perf_counter() - started
            with store.engine.connect() as conn:
                started = time.perf_counter()
                raw = raw_call(conn)
                raw_seconds = time.perf_counter() - started
            if i == 0:
                problems += [f"{name}: {p}" for p in compare(raw, comparable(found))]
                continue
            rollup_times.append(rollup_seconds * 1000)
            raw_times.append(raw_seconds * 1000)
        rows.append(
            {
                "query": name,
                "rollups_p50_ms": nearest_rank(rollup_times, 0.5),
                "rollups_p95_ms": nearest_rank(rollup_times, 0.95),
                "raw_p50_ms": nearest_rank(raw_times, 0.5),
                "raw_p95_ms": nearest_rank(raw_times, 0.95),
            }
        )
    return rows, problems


def plans(store: RuleStore) -> dict[str, list[dict[str, Any]]]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of every statement one request of each query ran."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, rollup_call, _, _ in queries(store):
        with captured_statements(store.engine) as statements:
            rollup_call()
        found[name] = [explain(store.engine, statement, parameters) for statement, parameters in statements]
    return found


def table(result: dict[str, Any]) -> str:
    counts, rollup_rows = result["rows"], ", ".join(f"{k} {v:,}" for k, v in result["rollup_rows"].items())
    lines = [
        f"analytics over {counts['runs']:,} runs ({counts['runs_of_the_organization']:,} of {ORG}), "
        f"{counts['action_results']:,} action results; rollups built in {result['rebuild_seconds']:.1f} s "
        f"({rollup_rows})",
        f"{result['repeats']} requests per query and side; {result['machine']}",
        "",
    ]
    rows = [
        ["query", "rollups p50", "rollups p95", "raw GROUP BY p50", "raw p95", "raw / rollups (p50, p95)"]
    ]
    for row in result["queries"]:
        rows.append(
            [
                row["query"],
                f"{row['rollups_p50_ms']:.1f} ms",
                f"{row['rollups_p95_ms']:.1f} ms",
                f"{row['raw_p50_ms']:.1f} ms",
                f"{row['raw_p95_ms']:.1f} ms",
                f"{row['raw_p50_ms'] / row['rollups_p50_ms']:.0f}x (p50), "
                f"{row['raw_p95_ms'] / row['rollups_p95_ms']:.0f}x (p95)",
            ]
        )
    lines += aligned(rows)
    slowest = max(row["rollups_p95_ms"] for row in result["queries"])
    lines += ["", f"slowest rollup p95: {slowest:.1f} ms (goal <= {GOAL_MS:.0f} ms)"]
    lines += [
        "answers: " + ("counts equal, percentiles within one bin" if not result["problems"] else "DIFFER")
    ]
    lines += [f"  {problem}" for problem in result["problems"][:20]]
    for name, explained in result["plans"].items():
        lines += ["", f"plans of {name}:"]
        for plan in explained:
            lines += [f"    {line}" for line in plan["plan"]] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with temporary_postgres_database(args.postgres, "analytics_bench", keep=args.keep) as url:
        store = RuleStore(url)
        store.upgrade()
        progress(f"loading {args.rows:,} runs")
        counts = load_log(store.engine, args.rows)
        progress(f"loaded {counts}")
        started = time.perf_counter()
        store.rebuild_rollups()
        rebuild_seconds = time.perf_counter() - started
        rollup_rows = analyze_rollups(store.engine)
        progress(f"rollups built in {rebuild_seconds:.1f} s: {rollup_rows}")
        rows, problems = measure(store, args.repeats)
        result = {
            "rows": counts,
            "rebuild_seconds": rebuild_seconds,
            "rollup_rows": rollup_rows,
            "repeats": args.repeats,
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "queries": rows,
            "problems": problems,
            "plans": plans(store),
        }
        store.close()
    emit(result, args.json, table)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
