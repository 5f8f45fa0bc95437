"""Smoke test of ``benchmarks/api.py``: the generated log has the documented shape, the plain-SQL baseline
returns the same pages as the store's query, and a tiny run (2,000 log rows) completes, reports p50/p95
of every operation with its plan, and drops its database.

Never asserts a time or a ratio's value: this machine's load decides those, not the code.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore, RunQuery
from tests.conftest import PG_ADMIN_URL, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROWS = 2000


def workload() -> ModuleType:
    """``benchmarks/api_workload.py`` (``benchmarks`` is a folder of scripts, not a package)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module("api_workload")


def test_the_log_has_the_documented_shape_and_the_baseline_matches_the_store(postgres_url: str) -> None:
    bench = workload()
    store = RuleStore(postgres_url)
    store.upgrade()
    counts = bench.load_log(store.engine, ROWS)
    assert counts["runs"] == ROWS
    assert counts["runs_of_the_organization"] == ROWS // bench.ORGANIZATIONS
    with store.engine.connect() as conn:
        statuses: dict[str, int] = dict(
            conn.execute(
                sa.text("SELECT status, count(*) FROM automation_runs WHERE organization = :o GROUP BY 1"),
                {"o": bench.ORG},
            ).all()
        )
        organizations = conn.execute(sa.text("SELECT count(DISTINCT organization) FROM automation_runs"))
        assert organizations.scalar_one() == bench.ORGANIZATIONS
        span = conn.execute(sa.text("SELECT min(started_at), max(started_at) FROM automation_runs")).one()
    assert set(statuses) == set(bench.STATUSES)  # every status occurs within one organization
    assert statuses["success"] > statuses["no_match"] > statuses["failed"] > statuses["running"]
    assert counts["action_results"] == ROWS - sum(
        n for status, n in _all_statuses(store).items() if status in ("no_match", "running")
    )
    assert bench.NOW - dt.timedelta(days=bench.DAYS) < span[0] < span[1] <= bench.NOW

    rng = random.Random(3)  # noqa: S311 - query filters, not secrets
    compared = 0
    for case in bench.CASES:
        for _ in range(5):
            params = case.params(rng)
            with store.engine.connect() as conn:
                expected = bench.baseline(conn, params)
            since = dt.datetime.fromisoformat(params["since"]) if "since" in params else None
            until = dt.datetime.fromisoformat(params["until"]) if "until" in params else None
            page = store.query_runs(
                RunQuery(
                    bench.ORG,
                    rule_name=params.get("rule"),
                    statuses=params.get("status"),
                    started_after=since,
                    started_before=until,
                ),
                limit=params["limit"],
            )
            assert [run.id for run in page.runs] == expected, (case.name, params)
            compared += bool(expected)
    assert compared > 10
    store.close()


def _all_statuses(store: RuleStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT status, count(*) FROM automation_runs GROUP BY 1")).all())


@pytest.mark.airflow
def test_api_benchmark_runs_and_reports_every_operation(tmp_path: Path, postgres_databases: object) -> None:
    result_file = tmp_path / "result.json"
    # A subprocess: the benchmark sets AIRFLOW_HOME and the store's variables before importing airflow.
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "api.py"),
            *("--rows", str(ROWS), "--creates", "4", "--queries", "4"),
            *("--postgres", PG_ADMIN_URL, "--json", str(result_file)),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(result_file.read_text())

    setup = result["setup"]
    assert setup["rows"] == setup["runs"] == ROWS
    assert 0 < setup["action_results"] < ROWS
    assert result["creation"]["rules_stored"] == 2 * (4 + 3)  # timed and warm-up, through the API and direct
    operations = [result["creation"], result["rate_limit_check"], *result["log_queries"]]
    assert len(result["log_queries"]) == 5
    for op in operations:
        for side in ("api", "baseline"):
            assert op[side]["n"] == 4
            assert 0 < op[side]["min_ms"] <= op[side]["p50_ms"] <= op[side]["p95_ms"] <= op[side]["max_ms"]
        assert op["ratio_p50"] > 0 and op["ratio_p95"] > 0
    for query in result["log_queries"]:
        plan = "\n".join(query["runs_query"]["plan"])
        assert "automation_runs" in plan and "Execution Time" in plan
        assert "FROM automation_runs" in query["runs_query"]["sql"]
    assert result["plan_check"]["enforced"] is False  # 2,000 rows: too few to require index plans

    table = completed.stdout
    assert f"{ROWS:,} runs" in table
    assert "GET /logs: + rule, status, time range (7 days)" in table
    assert "EXPLAIN (ANALYZE, BUFFERS)" in table
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": setup["database"]}
            )
            assert left.scalar_one() == 0
    finally:
        admin.dispose()
