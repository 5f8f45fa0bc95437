"""API benchmark: p50/p95 of rule creation and of filtered automation-log queries through the REST view,
with a large log in Postgres, each against a baseline measured in the same run.

Everything goes through the real app in this process (``rule_engine.api.create_app`` served by
FastAPI's ``TestClient``) with a real Airflow token: a JWT issued by Airflow's auth manager and checked
by Airflow's ``get_user`` as in the api-server (a temporary ``AIRFLOW_HOME`` whose metadata DB is
migrated first, for the token checks). Every request also passes the per-user rate limit, counted in
the store (``rulestore://``) with a limit too high to refuse anything (``--rate-limit``).

The rule store is a temporary Postgres database (created on the ``--postgres`` server, dropped at the
end unless ``--keep``) holding the demo catalog of ``acme``, whose editor makes every request. Its
automation log gets ``--rows`` runs (default 1,000,000, in 10 organizations, 50 rules each, 90 days)
and an action result for each run that matched, generated inside Postgres with ``generate_series``
(see ``api_workload.py``), then ``VACUUM ANALYZE``-d; the row counts are printed.

1. ``rule creation``: ``--creates`` (200) ``POST /api/v1/rules`` of the example rule
   ``flag-big-paid-orders`` under new names; baseline: the same compile and store write called
   directly (``definition_ops.compile_for`` + ``RuleStore.apply``), alternating with the API.
2. ``log queries``: ``--queries`` (200) ``GET /api/v1/logs`` per filter case (the organization alone;
   and a rule, a status, a time range, all three), each drawing its filters from ``random.Random
   (--seed)``; baseline: the same page as plain SQL through SQLAlchemy (``api_workload.baseline``),
   issued right after each request with the same filters, which must return the same run ids.

Then ``EXPLAIN (ANALYZE, BUFFERS)`` of the SQL the store really ran for one request of each case
(captured from its engine): with 100,000 rows or more every plan must use indexes and no sequential
scan (exit status 2 otherwise; smaller logs are too small for the planner to prefer an index).
ratio = API / baseline, at p50 and at p95; p50/p95 are nearest-rank percentiles.

    .venv/bin/python benchmarks/api.py                      # 1,000,000 log rows (~3 min)
    .venv/bin/python benchmarks/api.py --rows 20000 --creates 50 --queries 50
    .venv/bin/python benchmarks/api.py --postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/api.py --json result.json   # the table, and JSON into a file

Progress goes to stderr; the table and the plans (or ``--json -``) to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api_report import table
from api_workload import CASES, ORG, Case, baseline, captured_statements, explain, load_log
from bench_common import add_json_option, emit, progress, temporary_postgres_database

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
RULE_FILE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"
CATALOG_FILE = ROOT / "include" / "catalog" / "acme.yaml"
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
EDITOR = "bench-editor"
WARM_UP = 3
PLAN_CHECK_MIN_ROWS = 100_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="automation-log runs to load (1,000,000)")
    parser.add_argument("--creates", type=int, default=200, help="timed rule creations, each side (200)")
    parser.add_argument(
        "--queries", type=int, default=200, help="timed log queries per case, each side (200)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AUTOMATION_TEST_PG_URL", DEFAULT_POSTGRES),
        help="a postgresql URL of the server to create the temporary store database on "
        f"(default $AUTOMATION_TEST_PG_URL or {DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--rate-limit",
        default="1000000/minute",
        help="the app's per-user rate limit (counted in the store; '' switches it off) (1000000/minute)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the query filters (1)")
    add_json_option(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and database")
    args = parser.parse_args(argv)
    for name in ("rows", "creates", "queries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


# -- environment (before anything imports airflow) ---------------------------------------------------


def prepare_airflow(work: Path, store_url: str) -> None:
    """A throwaway Airflow home, metadata DB migrated (token checks read it); before ``import airflow``."""
    if "airflow" in sys.modules:
        raise RuntimeError("airflow was imported before the benchmark set its environment; run it alone")
    home = work / "airflow_home"
    (work / "dags").mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    passwords = (
        home / "passwords.json"
    )  # a password for Airflow's default user: none is generated and printed
    passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}), encoding="utf-8")
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AUTOMATION_STORE_URL": store_url,
            "AUTOMATION_SNAPSHOT_PATH": str(work / "specs-snapshot.json"),
        }
    )
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    for path in (str(PLUGINS), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    progress("airflow: migrating the temporary metadata DB (token checks read it)")
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )


# -- timing ------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats(times: list[float]) -> dict[str, Any]:
    return {
        "n": len(times),
        "p50_ms": percentile(times, 50) * 1000,
        "p95_ms": percentile(times, 95) * 1000,
        "mean_ms": statistics.fmean(times) * 1000,
        "min_ms": min(times) * 1000,
        "max_ms": max(times) * 1000,
    }


def compared(api: list[float], base: list[float]) -> dict[str, Any]:
    a, b = stats(api), stats(base)
    return {
        "api": a,
        "baseline": b,
        "ratio_p50": a["p50_ms"] / b["p50_ms"],
        "ratio_p95": a["p95_ms"] / b["p95_ms"],
    }


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def fail(message: str) -> None:
    progress(f"CHECK FAILED: {message}")
    raise SystemExit(2)


# -- the two workloads ---------------------------------------------------------------------------------------


def bench_creation(client: Any, headers: dict[str, str], store: Any, count: int) -> dict[str, Any]:
    from rule_engine.api import definition_ops

    from rule_compiler.loading import read_definition_file

    template = read_definition_file(RULE_FILE)
    template.pop("organization")

    def through_api(name: str) -> None:
        response = client.post("/api/v1/rules", json={**template, "name": name}, headers=headers)
        if response.status_code != 201:
            fail(f"POST /rules {name}: {response.status_code} {response.text[:500]}")

    def direct(name: str) -> None:
        data = definition_ops.with_organization({**template, "name": name}, ORG, kind="rule")
        compiled = definition_ops.compile_for(store, ORG, data)
        if store.apply(compiled.write(EDITOR)).status != "created":
            fail(f"direct apply of {name} did not create it")

    for i in range(WARM_UP):
        through_api(f"warm-api-{i}")
        direct(f"warm-direct-{i}")
    api_times: list[float] = []
    base_times: list[float] = []
    for i in range(count):
        pair = ((api_times, through_api, f"api-{i:04d}"), (base_times, direct, f"direct-{i:04d}"))
        for times, create, name in pair if i % 2 == 0 else pair[::-1]:
            times.append(timed(functools.partial(create, name))[0])
        if (i + 1) % max(1, count // 4) == 0:
            progress(f"rule creation: {i + 1}/{count}")
    stored = len(store.list(organization=ORG, kind="rule"))
    if stored != 2 * (count + WARM_UP):
        fail(f"the store holds {stored} rules, not {2 * (count + WARM_UP)}")
    return {
        "operation": "rule creation (POST /rules)",
        **compared(api_times, base_times),
        "rules_stored": stored,
    }


def bench_rate_limit(store: Any, count: int) -> dict[str, Any]:
    """One request's rate-limit check counted in the store (``rulestore://``) against ``memory://``."""
    from rule_engine.api.limits import RateLimiter

    shared = RateLimiter("1000000/minute", "rulestore://", store)
    local = RateLimiter("1000000/minute", "memory://")
    times: dict[str, list[float]] = {"shared": [], "local": []}
    for i in range(count + WARM_UP):
        pair = (("shared", shared), ("local", local))
        for name, limiter in pair if i % 2 == 0 else pair[::-1]:
            elapsed, wait = timed(functools.partial(limiter.retry_after, "bench-rate-limit"))
            if wait is not None:
                fail(f"the {name} rate limiter refused a request")
            if i >= WARM_UP:
                times[name].append(elapsed)
    return {
        "operation": "rate-limit check: rulestore:// (baseline memory://)",
        **compared(times["shared"], times["local"]),
    }


def bench_case(
    client: Any, headers: dict[str, str], engine: Any, case: Case, *, count: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{case.name}")

    def through_api(params: dict[str, Any]) -> list[int]:
        response = client.get("/api/v1/logs", params=params, headers=headers)
        if response.status_code != 200:
            fail(f"GET /logs {params}: {response.status_code} {response.text[:500]}")
        return [item["id"] for item in response.json()["items"]]

    def direct(params: dict[str, Any]) -> list[int]:
        with engine.connect() as conn:
            return baseline(conn, params)

    for _ in range(WARM_UP):
        params = case.params(rng)
        through_api(params)
        direct(params)
    api_times: list[float] = []
    base_times: list[float] = []
    page_sizes: list[int] = []
    for i in range(count):
        params = case.params(rng)
        results: dict[str, list[int]] = {}
        pair = (("api", api_times, through_api), ("baseline", base_times, direct))
        for name, times, query in pair if i % 2 == 0 else pair[::-1]:
            elapsed, results[name] = timed(functools.partial(query, params))
            times.append(elapsed)
        if results["api"] != results["baseline"]:
            fail(f"{case.name}: the API and the baseline returned other runs for {params}")
        page_sizes.append(len(results["api"]))
    progress(f"log queries, {case.name}: {count} requests, mean page {statistics.fmean(page_sizes):.1f} runs")
    explained = case.params(rng)
    with captured_statements(engine) as statements:
        through_api(explained)
    runs_sql = [(s, p) for s, p in statements if "FROM automation_runs" in s]
    actions_sql = [(s, p) for s, p in statements if "FROM automation_action_results" in s]
    if len(runs_sql) != 1:
        fail(f"{case.name}: expected one runs query per request, saw {len(runs_sql)}")
    return {
        "operation": f"GET /logs: {case.name}",
        "case": case.name,
        **compared(api_times, base_times),
        "mean_page_size": statistics.fmean(page_sizes),
        "explained_params": explained,
        "runs_query": {"sql": runs_sql[0][0], **explain(engine, *runs_sql[0])},
        "actions_query": explain(engine, *actions_sql[0]) if actions_sql else None,
    }


# -- main ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="api-bench-"))
    progress(f"working in {work}")
    try:
        # Airflow's logging binds to the stdout of its first import: stderr here, so stdout stays the table's.
        with (
            temporary_postgres_database(args.postgres, "api_bench", keep=args.keep) as store_url,
            contextlib.redirect_stdout(sys.stderr),
        ):
            result = run(args, work, store_url)
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    emit(result, args.json, table)
    if result["plan_check"]["enforced"] and not result["plan_check"]["passed"]:
        fail("a log query plan does not use an index (see the plans above)")
    return result


def run(args: argparse.Namespace, work: Path, store_url: str) -> dict[str, Any]:
    prepare_airflow(work, store_url)
    progress("importing airflow and the REST view")
    import airflow
    import sqlalchemy as sa
    import yaml
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    from rule_compiler.store import RuleStore

    store = RuleStore(store_url)
    store.upgrade()
    catalog = yaml.safe_load(CATALOG_FILE.read_text())
    store.put_catalog(organization=ORG, catalog={**catalog, "organization": ORG}, actor="bench")
    store.put_membership(organization=ORG, username=EDITOR, role="editor", actor="bench")
    progress(f"loading {args.rows:,} automation-log runs into Postgres (generate_series)")
    load_s, counts = timed(lambda: load_log(store.engine, args.rows))
    progress(
        f"loaded {counts['runs']:,} runs and {counts['action_results']:,} action results in {load_s:.1f} s "
        f"({counts['runs_of_the_organization']:,} runs of {ORG})"
    )
    with store.engine.connect() as conn:
        server_version = conn.execute(sa.text("SHOW server_version")).scalar_one()
    token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username=EDITOR, role="viewer"))
    headers = {"Authorization": f"Bearer {token}"}
    settings = ApiSettings(rate_limit=args.rate_limit, rate_limit_storage="rulestore://")
    app = create_app(store, settings=settings, on_change=None)
    result: dict[str, Any] = {
        "setup": {
            "rows": args.rows,
            "database": sa.make_url(store_url).database,
            **counts,
            "load_s": load_s,
            "creates": args.creates,
            "queries": args.queries,
            "seed": args.seed,
            "rate_limit": args.rate_limit or None,
            "postgres": server_version,
            "python": platform.python_version(),
            "airflow": airflow.__version__,
        }
    }
    with TestClient(app, raise_server_exceptions=True) as client:
        progress(f"rule creation: {args.creates} through the API, {args.creates} direct, alternating")
        result["creation"] = bench_creation(client, headers, store, args.creates)
        progress(f"rate-limit checks: {args.queries} counted in the store, {args.queries} in memory")
        result["rate_limit_check"] = bench_rate_limit(store, args.queries)
        result["log_queries"] = [
            bench_case(client, headers, store.engine, case, count=args.queries, seed=args.seed)
            for case in CASES
        ]
    plans = [q["runs_query"] for q in result["log_queries"]] + [
        q["actions_query"] for q in result["log_queries"] if q["actions_query"] is not None
    ]
    result["plan_check"] = {
        "enforced": args.rows >= PLAN_CHECK_MIN_ROWS,
        "passed": all(plan["uses_index"] for plan in plans),
        "min_rows": PLAN_CHECK_MIN_ROWS,
    }
    store.close()
    return result


if __name__ == "__main__":
    main()
