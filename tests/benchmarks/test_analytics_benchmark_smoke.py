"""Smoke test of ``benchmarks/analytics.py`` on the real Postgres: the generated log has the documented
shape, the rollups built from it answer exactly what the raw ``GROUP BY`` answers (percentiles within
one bin of ``percentile_cont``), and the comparison does see a difference when the rollups are wrong.

Never asserts a time: this machine's load decides those, not the code.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from rule_compiler.store.analytics import TimeRange
from tests.conftest import PG_ADMIN_URL, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROWS = 3000


def workload() -> ModuleType:
    """``benchmarks/analytics_workload.py`` (``benchmarks`` is a folder of scripts, not a package)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module("analytics_workload")


def test_the_rollups_answer_what_the_raw_log_answers(postgres_url: str) -> None:
    bench = workload()
    store = RuleStore(postgres_url)
    store.upgrade()
    counts = bench.load_log(store.engine, ROWS)
    assert counts["runs"] == ROWS and counts["runs_of_the_organization"] == ROWS // bench.ORGANIZATIONS
    assert store.rebuild_rollups() == ROWS
    month = TimeRange.of(bench.NOW - bench.dt.timedelta(days=bench.DAYS), bench.NOW, "day")
    with store.engine.connect() as conn:
        raw = bench.raw_organization(conn, month.since, month.until, "day")
        detail = bench.raw_definition(conn, month.since, month.until, "day", kind="rule", name="def-03")
    found = bench.rollup_organization(store.organization_analytics(bench.ORG, month))
    assert bench.compare(raw, found) == []
    assert raw.errors and {e[3] for e in raw.errors} >= {"TimeoutError", "SMTPException"}
    one = store.definition_analytics(bench.ORG, "rule", "def-03", month)
    assert one.summary.runs > 0 and [s.step for s in one.steps] == ["flag", "notify"]
    assert bench.compare(detail, bench.rollup_definition(one)) == []

    with store.engine.begin() as conn:  # one run too many in one hour: the comparison must see it
        conn.execute(
            sa.text("UPDATE analytics_runs SET runs = runs + 1 WHERE status = 'failed' AND grain = 'day'")
        )
    wrong = bench.rollup_organization(store.organization_analytics(bench.ORG, month))
    assert any("counts of" in problem for problem in bench.compare(raw, wrong))
    store.close()


def test_the_benchmark_runs_and_reports_every_query(tmp_path: Path, postgres_databases: object) -> None:
    result_file = tmp_path / "result.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "analytics.py"),
            *("--rows", str(ROWS), "--repeats", "2", "--postgres", PG_ADMIN_URL, "--json", str(result_file)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:] + completed.stdout[-4000:]
    result = json.loads(result_file.read_text())
    assert result["rows"]["runs"] == ROWS and result["problems"] == []
    assert [q["query"] for q in result["queries"]] == [
        "overview, 30 days by day",
        "overview, 7 days by hour",
        "triggers, 30 days",
        "definition, 30 days by day",
    ]
    for query in result["queries"]:
        assert all(query[key] > 0 for key in ("rollups_p50_ms", "rollups_p95_ms", "raw_p50_ms", "raw_p95_ms"))
    assert all(plans for plans in result["plans"].values())
    assert "analytics over 3,000 runs" in completed.stdout
