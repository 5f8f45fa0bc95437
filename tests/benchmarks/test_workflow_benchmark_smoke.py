"""Smoke test of ``benchmarks/workflow.py``: a tiny run completes, both sides of each case did the same
work (the same row changes; the same DAGs), and the table prints both ratios.

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

WORKFLOWS = 6
ORDERS = 5


def test_workflow_benchmark_runs_and_both_sides_do_the_same_work(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    # A subprocess: the benchmark sets AIRFLOW_HOME, the store and app_db before importing airflow.
    env = {key: value for key, value in os.environ.items() if key != "_AIRFLOW_PARSING_CONTEXT_DAG_ID"}
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "workflow.py"),
            *("--workflows", str(WORKFLOWS), "--repeat", "1", "--runs", "1", "--orders", str(ORDERS)),
            *("--json", str(result_file)),
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
    assert set(cases) == {"run", "parse"}

    run = cases["run"]
    assert run["identical_row_changes"] is True
    assert run["orders_per_run"] == ORDERS
    assert run["big_orders_per_run"] == 2  # ORDER_MIX: paid 5000 and paid 1500 of the first five
    assert len(run["workflow"]["times_s"]) == len(run["floor"]["times_s"]) == 1
    nodes = ("start", "is-big", "make-high", "make-normal", "routed", "stamp")
    assert run["workflow"]["task_states"] == dict.fromkeys((*nodes, "record_outcome"), "success")
    assert run["floor"]["task_states"] == dict.fromkeys(nodes, "success")

    parse = cases["parse"]
    dags = WORKFLOWS + 1  # the copies and the report weekly-sales that monday-sales-review runs
    assert parse["identical_dag_ids"] is parse["identical_task_ids"] is parse["identical_dags"] is True
    assert parse["dags"] == dags
    assert parse["loader"]["dags_found"] == parse["floor"]["dags_found"] == [dags]
    assert parse["trigger_rules"]["is-big"] == "WorkflowConditionOperator (all_success)"
    assert parse["trigger_rules"]["routed"] == "WorkflowJoinOperator (none_failed_min_one_success)"
    assert result["store_reread_check"] == {
        "dags_after_adding_a_rule": dags + 1,
        "dags_after_deleting_it": dags,
    }
    for case in cases.values():
        assert isinstance(case["ratio"], float)

    table = completed.stdout
    assert re.search(r"^case\s+size\s+workflow median\s+hand-written median\s+ratio\b", table, re.MULTILINE)
    assert re.search(rf"^run\s+{ORDERS} orders\s+.*\s\d+\.\d\dx\s", table, re.MULTILINE), table
    assert re.search(rf"^parse\s+{dags} DAGs\s+.*\s\d+\.\d\dx\s", table, re.MULTILINE), table
