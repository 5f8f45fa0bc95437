"""Smoke test of ``benchmarks/parse.py``: a tiny run completes, both sides build the same DAGs, ratios print.

Never asserts a time or a ratio's value: this machine's load decides those, not the code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

RULES = 20


def test_parse_benchmark_runs_and_both_sides_build_the_same_dags(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    # A subprocess: the benchmark sets AIRFLOW_HOME and the store's variables before importing airflow,
    # which this test session has already done with its own settings.
    env = {key: value for key, value in os.environ.items() if key != "_AIRFLOW_PARSING_CONTEXT_DAG_ID"}
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "parse.py"),
            "--rules",
            str(RULES),
            "--repeat",
            "1",
            "--json",
            str(result_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    result = json.loads(result_file.read_text())
    cases = {case["case"]: case for case in result["cases"]}
    assert set(cases) == {"all", "one", "one-store"}
    assert result["setup"]["rules"] == RULES
    for name, expected_dags in (("all", RULES), ("one", 1), ("one-store", 1)):
        case = cases[name]
        assert case["identical_dag_ids"] is True
        assert case["identical_task_ids"] is True
        assert case["identical_dags"] is True
        assert case["dags"] == expected_dags
        assert case["loader"]["dags_found"] == case["floor"]["dags_found"] == [expected_dags]
        assert all(count >= 1 for count in case["loader"]["spec_queries_per_parse"])  # a spec was read
        assert isinstance(case["ratio"], float)
    assert cases["one"]["parsing_context_dag_id"] is not None
    assert result["store_reread_check"] == {
        "dags_after_adding_a_rule": RULES + 1,
        "dags_after_deleting_it": RULES,
    }

    table = completed.stdout
    assert re.search(r"^case\s+DAGs\s+loader median.*\bratio\b", table, re.MULTILINE)
    for name in ("all", "one", "one-store"):
        assert re.search(rf"^{name}\s+\d+\s+.*\s\d+\.\d\dx\s", table, re.MULTILINE), table
