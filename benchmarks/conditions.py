"""Condition benchmark: the Python evaluator and the SQL translation against hand-written lambdas.

One nested rule of 10 conditions (``RULE`` below: ``all`` of 7 comparisons and an ``any`` group of
two comparisons and a ``not``), over N deterministic rows (``random.Random(--seed)``; every column a
condition reads is NULL in about 5% of rows, independently), evaluated by:

1. ``lambdas`` (the baseline): the same checks written by hand as one plain Python lambda following
   the nested structure, with the engine's NULL semantics spelled out (a comparison with NULL is
   false, ``not`` of it is true);
2. ``engine``: ``compile_condition(RULE, column_types=...).matches(row, now=NOW)``, compiled once;
3. ``sqlite`` (and ``postgres`` with ``--postgres URL``): ``SELECT count(*) FROM rows WHERE
   <condition_to_sql(RULE)>`` over the same rows loaded into a table (SQLite in memory with
   ``register_sqlite_functions``; Postgres in a temporary database created on that server and
   dropped at the end, ``VACUUM ANALYZE``-d after loading). rows/s = rows / query time.

Before timing, every path must select the same rows, for the whole rule and for each of its
leaves, its ``any`` and its ``not`` alone (ids compared, not just counts); any difference stops the
run (exit status 2). Method: one untimed warm-up run of each path, then ``--repeat`` timed runs
(``time.perf_counter``), the two Python paths alternating, garbage collection off during a timed
loop (as ``timeit`` does). Both Python loops are the same ``for row in rows: if check(...): n += 1``.
ratio = median(engine) / median(lambdas) (= lambdas rows/s / engine rows/s); target 3.0 (PASS when
the engine is at most 3x slower). ``--leaves`` adds the same comparison for each leaf alone.

    .venv/bin/python benchmarks/conditions.py                  # 100,000 rows, 5 repetitions, SQLite
    .venv/bin/python benchmarks/conditions.py --rows 20000 --repeat 9 --leaves
    .venv/bin/python benchmarks/conditions.py --postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/conditions.py --json               # JSON on stdout instead of the table
    .venv/bin/python benchmarks/conditions.py --json result.json   # the table, and JSON into a file

Progress goes to stderr; the table (or ``--json -``) to stdout. Imports no Airflow.
"""

from __future__ import annotations

import argparse
import functools
import gc
import platform
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from bench_common import add_json_option, aligned, emit, progress, seconds, temporary_postgres_database
from conditions_workload import (
    CHECKED_NODES,
    COLUMN_TYPES,
    METADATA,
    NOW,
    NULL_RATE,
    RULE,
    TABLE,
    Row,
    count_leaves,
    hand_written,
    leaf_evaluations,
    make_rows,
    parse_rule,
    resolve,
)

from rule_compiler.conditions import compile_condition, condition_to_sql, register_sqlite_functions

TARGET = 3.0
# -- the Python paths ----------------------------------------------------------------------------------


def count_engine(matches: Callable[..., bool], rows: list[dict[str, Any]], now: datetime) -> int:
    n = 0
    for row in rows:
        if matches(row, now=now):
            n += 1
    return n


def count_lambda(check: Callable[[Row], bool], rows: list[dict[str, Any]]) -> int:
    n = 0
    for row in rows:
        if check(row):
            n += 1
    return n


@dataclass
class Timing:
    """One evaluated path: its timed runs and what each counted."""

    name: str
    label: str
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def summary(self, rows: int) -> dict[str, Any]:
        median = statistics.median(self.times)
        return {
            "path": self.name,
            "label": self.label,
            "times_s": self.times,
            "cpu_times_s": self.cpu_times,
            "median_s": median,
            "min_s": min(self.times),
            "cpu_median_s": statistics.median(self.cpu_times),
            "rows_per_s": rows / median,
            "ns_per_row": median / rows * 1e9,
            "matches": self.counts[0],
        }


def timed(path: Timing, run: Callable[[], int]) -> None:
    gc.collect()
    gc.disable()
    try:
        cpu, start = time.process_time(), time.perf_counter()
        count = run()
        path.times.append(time.perf_counter() - start)
        path.cpu_times.append(time.process_time() - cpu)
    finally:
        gc.enable()
    path.counts.append(count)


def time_python_pair(
    engine_run: Callable[[], int], lambda_run: Callable[[], int], repeat: int, what: str, quiet: bool = False
) -> tuple[Timing, Timing]:
    """Warm up both, then ``repeat`` alternating timed runs; (engine, lambdas)."""
    engine = Timing("engine", "engine: compile_condition(...).matches")
    lambdas = Timing("lambdas", "hand-written lambdas (baseline)")
    engine_run()  # warm-up
    lambda_run()
    for rep in range(repeat):
        order = ((engine, engine_run), (lambdas, lambda_run))
        for path, run in order if rep % 2 == 0 else order[::-1]:
            timed(path, run)
        if not quiet:
            progress(
                f"{what}: repetition {rep + 1}/{repeat}: engine {engine.times[-1]:.4f} s, "
                f"lambdas {lambdas.times[-1]:.4f} s"
            )
    return engine, lambdas


# -- the SQL paths -------------------------------------------------------------------------------------


@contextmanager
def sql_database(backend: str, admin_url: str | None) -> Iterator[sa.Engine]:
    """An engine on an empty database: SQLite in memory, or a temporary database on ``admin_url``."""
    if backend == "sqlite":
        engine = sa.create_engine("sqlite://")
        sa.event.listen(engine, "connect", lambda conn, _record: register_sqlite_functions(conn))
        try:
            yield engine
        finally:
            engine.dispose()
        return
    assert admin_url is not None
    with temporary_postgres_database(admin_url, "conditions_bench") as url:
        engine = sa.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def load_rows(engine: sa.Engine, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Create the table and insert ``rows``; what the server is."""
    METADATA.create_all(engine)
    start = time.perf_counter()
    with engine.begin() as conn:
        for offset in range(0, len(rows), 10_000):
            conn.execute(TABLE.insert(), rows[offset : offset + 10_000])
    info: dict[str, Any] = {"load_s": time.perf_counter() - start, "database": engine.url.database}
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE bench_rows"))
            info["server"] = conn.execute(sa.text("SHOW server_version")).scalar_one()
            info["max_parallel_workers_per_gather"] = conn.execute(
                sa.text("SHOW max_parallel_workers_per_gather")
            ).scalar_one()
        else:
            info["server"] = f"SQLite {sqlite3.sqlite_version} (in memory)"
        loaded = conn.execute(sa.select(sa.func.count()).select_from(TABLE)).scalar_one()
    if loaded != len(rows):
        raise SystemExit(f"{engine.dialect.name}: loaded {loaded} rows, not {len(rows)}")
    return info


def where(data: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    return condition_to_sql(parse_rule(data), resolve, now=NOW, column_types=COLUMN_TYPES)


def sql_ids(conn: sa.Connection, data: Mapping[str, Any]) -> list[int]:
    return list(conn.scalars(sa.select(TABLE.c.id).where(where(data)).order_by(TABLE.c.id)))


def time_sql(engine: sa.Engine, backend: str, repeat: int) -> tuple[Timing, dict[str, Any]]:
    label = "SQL sqlite (in memory): count(*)" if backend == "sqlite" else "SQL postgres: count(*)"
    path = Timing(backend, label)
    node = parse_rule(RULE)
    start = time.perf_counter()
    condition = condition_to_sql(node, resolve, now=NOW, column_types=COLUMN_TYPES)
    translate_s = time.perf_counter() - start
    statement = sa.select(sa.func.count()).select_from(TABLE).where(condition)
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        conn.execute(statement).scalar_one()  # warm-up: compiles and caches the statement
        prefix = "EXPLAIN" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"{prefix} {sql}"))
        for rep in range(repeat):
            timed(path, lambda: conn.execute(statement).scalar_one())
            progress(f"{backend}: repetition {rep + 1}/{repeat}: {path.times[-1]:.4f} s")
    return path, {"translate_s": translate_s, "sql": sql, "plan": plan}


# -- the checks ----------------------------------------------------------------------------------------


def mismatch(message: str) -> None:
    print(f"MISMATCH: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def python_checks(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every checked node: the engine and its lambda select the same rows; ids per node."""
    found: dict[str, dict[str, Any]] = {}
    for label, data, check in CHECKED_NODES:
        compiled = compile_condition(parse_rule(data), column_types=COLUMN_TYPES)
        by_engine = [row["id"] for row in rows if compiled.matches(row, now=NOW)]
        by_lambda = [row["id"] for row in rows if check(row)]
        if by_engine != by_lambda:
            differ = sorted(set(by_engine) ^ set(by_lambda))[:5]
            mismatch(f"{label}: engine {len(by_engine)} rows, lambda {len(by_lambda)}; e.g. ids {differ}")
        found[label] = {"ids": by_engine, "matches": len(by_engine)}
    return found


def sql_checks(engine: sa.Engine, expected: dict[str, dict[str, Any]]) -> None:
    with engine.connect() as conn:
        for label, data, _check in CHECKED_NODES:
            ids = sql_ids(conn, data)
            if ids != expected[label]["ids"]:
                differ = sorted(set(ids) ^ set(expected[label]["ids"]))[:5]
                mismatch(
                    f"{label}: {engine.dialect.name} {len(ids)} rows, Python {expected[label]['matches']}; "
                    f"e.g. ids {differ}"
                )


# -- per leaf ------------------------------------------------------------------------------------------


def time_leaves(rows: list[dict[str, Any]], repeat: int) -> list[dict[str, Any]]:
    """Each checked node alone: engine vs its lambda (``--leaves``)."""
    results = []
    for label, data, check in CHECKED_NODES:
        matches = compile_condition(parse_rule(data), column_types=COLUMN_TYPES).matches
        engine, lambdas = time_python_pair(
            functools.partial(count_engine, matches, rows, NOW),
            functools.partial(count_lambda, check, rows),
            repeat,
            label,
            quiet=True,
        )
        e, lam = statistics.median(engine.times), statistics.median(lambdas.times)
        results.append(
            {
                "node": label,
                "engine_ns_per_row": e / len(rows) * 1e9,
                "lambda_ns_per_row": lam / len(rows) * 1e9,
                "extra_ns_per_row": (e - lam) / len(rows) * 1e9,
                "ratio": e / lam,
            }
        )
        progress(f"leaves: {label}: {e / lam:.2f}x")
    return results


# -- output --------------------------------------------------------------------------------------------


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    lines = aligned(rows)
    return [line.rstrip() for line in lines]


def table(result: dict[str, Any]) -> str:
    header = ("path", "matches", "median", "min", "rows/s", "ns/row", "vs lambdas", "target", "verdict")
    rows = [header]
    baseline = result["paths"][0]["median_s"]
    for path in result["paths"]:
        is_engine = path["path"] == "engine"
        rows.append(
            (
                path["label"],
                f"{path['matches']:,}",
                f"{path['median_s']:.4f} s",
                f"{path['min_s']:.4f} s",
                f"{path['rows_per_s']:,.0f}",
                f"{path['ns_per_row']:,.0f}",
                f"{path['median_s'] / baseline:.2f}x",
                f"<= {result['target']:.1f}x" if is_engine else "-",
                result["verdict"] if is_engine else "-",
            )
        )
    setup = result["setup"]
    notes = [
        f"ratio (engine / lambdas) = {result['ratio']:.2f}x: median engine time / median lambda time over "
        f"the same rows (= lambda rows/s / engine rows/s); target <= {result['target']:.1f}x -> "
        f"{result['verdict']}",
        f"the same ratio of CPU times {result['cpu_ratio']:.2f}x, of the fastest runs "
        f"{result['min_ratio']:.2f}x, median of the runs paired in time {result['paired_ratio_median']:.2f}x "
        f"{_ratios(result['paired_ratios'])} (load on the machine moves these; the verdict uses the first)",
        f"matches: {result['matches']:,} of {setup['rows']:,} rows "
        f"({result['matches'] / setup['rows']:.1%}), "
        f"the same rows on every path ({', '.join(result['match_counts'])}); "
        f"{len(result['checked_nodes'])} nodes checked alone (each leaf, the not, the any, the rule)",
        f"rule: {setup['leaves']} leaves; {setup['leaf_evaluations_per_row']:.2f} evaluated per row on "
        f"average (short-circuit); NULL in ~{NULL_RATE:.0%} of each column; seed {setup['seed']}; "
        f"timed runs per path: {setup['repeat']}; Python {setup['python']}, SQLAlchemy {setup['sqlalchemy']}",
        f"compile_condition: {setup['compile_s'] * 1e6:,.0f} us once; SQL rows/s = rows / time of one "
        "SELECT count(*) ... WHERE <condition_to_sql> (statement built and compiled once, warm-up run)",
    ]
    for path in result["paths"]:
        notes.append(
            f"{path['path']}: wall s {seconds(path['times_s'])}; CPU s {seconds(path['cpu_times_s'])}"
            + (" (this process only, not the server's)" if path["path"] == "postgres" else "")
        )
    for backend, info in result["sql"].items():
        notes.append(
            f"{backend}: {info['server']}; rows loaded in {info['load_s']:.2f} s; condition_to_sql "
            f"{info['translate_s'] * 1e3:.2f} ms; plan: {plan_summary(info['plan'])}"
            + (
                f"; max_parallel_workers_per_gather {info['max_parallel_workers_per_gather']}"
                if "max_parallel_workers_per_gather" in info
                else ""
            )
        )
    lines = [*_columns(rows), "", *notes]
    if result.get("leaves"):
        leaf_rows: list[tuple[str, ...]] = [
            ("node alone", "engine ns/row", "lambda ns/row", "extra ns/row", "ratio")
        ]
        for leaf in result["leaves"]:
            leaf_rows.append(
                (
                    leaf["node"],
                    f"{leaf['engine_ns_per_row']:.0f}",
                    f"{leaf['lambda_ns_per_row']:.0f}",
                    f"{leaf['extra_ns_per_row']:.0f}",
                    f"{leaf['ratio']:.2f}x",
                )
            )
        lines += ["", *_columns(leaf_rows), "(each node alone over all rows, the same loops; medians)"]
    return "\n".join(lines)


def plan_summary(plan: str) -> str:
    """The scan of a query plan, without costs: ``Seq Scan on bench_rows``, ``SCAN bench_rows``..."""
    lines = [re.sub(r"\s+\(cost=[^)]*\)", "", line).strip(" ->") for line in plan.splitlines()]
    scans = [line for line in lines if "scan" in line.lower() or line.startswith("Workers Planned")]
    return "; ".join(scans or lines[:1])


def _ratios(values: list[float]) -> str:
    return "[" + ", ".join(f"{value:.2f}" for value in values) + "]"


# -- main ----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows to evaluate (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each path (5)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the generated rows")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also time Postgres: a postgresql URL of a server (a temporary database is created there "
        "and dropped at the end), e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument(
        "--leaves", action="store_true", help="also time each leaf, the not and the any alone"
    )
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    progress(f"generating {args.rows:,} rows (seed {args.seed})")
    rows = make_rows(args.rows, args.seed)
    setup: dict[str, Any] = {
        "rows": args.rows,
        "repeat": args.repeat,
        "seed": args.seed,
        "now": NOW.isoformat(),
        "leaves": count_leaves(RULE),
        "leaf_evaluations_per_row": leaf_evaluations(rows),
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
    }
    progress("checking that the engine and the lambdas select the same rows (each node, then the rule)")
    expected = python_checks(rows)
    checked = {label: found["matches"] for label, found in expected.items()}
    for label, count in checked.items():
        progress(f"  {label}: {count:,} rows")

    start = time.perf_counter()
    compiled = compile_condition(parse_rule(RULE), column_types=COLUMN_TYPES)
    setup["compile_s"] = time.perf_counter() - start
    check = hand_written(NOW)
    matches = compiled.matches
    progress(f"timing the Python paths: {args.repeat} runs each over {args.rows:,} rows")
    engine, lambdas = time_python_pair(
        lambda: count_engine(matches, rows, NOW),
        lambda: count_lambda(check, rows),
        args.repeat,
        "python",
    )
    paths = [lambdas, engine]
    sql: dict[str, dict[str, Any]] = {}
    backends = [("sqlite", None)] + ([("postgres", args.postgres)] if args.postgres else [])
    for backend, url in backends:
        with sql_database(backend, url) as db:
            progress(f"{backend}: loading {args.rows:,} rows")
            info = load_rows(db, rows)
            progress(f"{backend}: loaded in {info['load_s']:.2f} s; checking each node against Python")
            sql_checks(db, expected)
            progress(f"{backend}: timing SELECT count(*): {args.repeat} runs")
            path, details = time_sql(db, backend, args.repeat)
            paths.append(path)
            sql[backend] = {**info, **details}

    counts = {path.name: set(path.counts) for path in paths}
    whole = checked["the whole rule"]
    if any(found != {whole} for found in counts.values()):
        mismatch(f"a timed run counted other matches than {whole}: {counts}")
    leaves = time_leaves(rows, args.repeat) if args.leaves else []
    summaries = [path.summary(args.rows) for path in paths]
    ratio = statistics.median(engine.times) / statistics.median(lambdas.times)
    cpu_ratio = statistics.median(engine.cpu_times) / statistics.median(lambdas.cpu_times)
    paired = [e / lam for e, lam in zip(engine.times, lambdas.times, strict=True)]
    return {
        "setup": setup,
        "rule": RULE,
        "column_types": COLUMN_TYPES,
        "matches": whole,
        "match_counts": [f"{path.name} {path.counts[0]:,}" for path in paths],
        "checked_nodes": checked,
        "paths": summaries,
        "sql": sql,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "min_ratio": min(engine.times) / min(lambdas.times),
        "paired_ratios": paired,
        "paired_ratio_median": statistics.median(paired),
        "target": TARGET,
        "verdict": "PASS" if ratio <= TARGET else "FAIL",
        "leaves": leaves,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    emit(result, args.json, table)
    return result


if __name__ == "__main__":
    main()
