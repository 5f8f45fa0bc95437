"""Task start cost: a task parses only what its DAG needs, and the scheduler preloads the rest.

Each check runs in a fresh interpreter (``sys.modules`` is the thing under test), with this repo's
``plugins`` on the path and Airflow's plugins folder pointing at it, as in a deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rule_engine.operators.base import RuleTaskOperator
from rule_engine.preload import preload, task_modules
from rule_engine.render.registry import OPERATOR_PATHS, operator_class

from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow
EVENT_RULE = ROOT / "include" / "rules" / "expedite-vip-payments.yaml"
EVENT_DAG_ID = "rule__acme__expedite-vip-payments"
HEAVY = ("rule_engine.operators.reports", "rule_engine.operators.notify", "sqlglot", "matplotlib")


def _modules_after(
    code: str, *, argv: list[str] | None = None, env: dict[str, str] | None = None
) -> set[str]:
    """The module names loaded after ``code`` runs in a fresh interpreter."""
    script = (
        f"import sys, json\nsys.argv = {argv or ['python']!r}\n{code}\n"
        "print('MODULES=' + json.dumps(sorted(sys.modules)))"
    )
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("MODULES=")]
    return set(json.loads(line.removeprefix("MODULES=")))


def test_every_kind_resolves_to_a_rule_engine_operator() -> None:
    for kind in OPERATOR_PATHS:
        assert issubclass(operator_class(kind), RuleTaskOperator), kind
    with pytest.raises(KeyError):
        operator_class("os.system")


def test_a_starting_task_imports_only_what_its_dag_uses(store: RuleStore, tmp_path: Path) -> None:
    apply_rules(store, EVENT_RULE)
    loaded = _modules_after(
        f"import runpy; ns = runpy.run_path({str(ROOT / 'dags' / 'automation_dags.py')!r}); "
        f"assert [k for k in ns if k.startswith('automation_dag__')] == ['automation_dag__{EVENT_DAG_ID}']",
        env={
            "_AIRFLOW_PARSING_CONTEXT_DAG_ID": EVENT_DAG_ID,
            "_AIRFLOW_PARSING_CONTEXT_TASK_ID": "evaluate_conditions",
            "AUTOMATION_STORE_URL": str(store.engine.url.render_as_string(hide_password=False)),
            "AUTOMATION_SNAPSHOT_PATH": os.environ["AUTOMATION_SNAPSHOT_PATH"],
        },
    )
    assert {"rule_engine.operators.evaluate", "rule_engine.operators.records"} <= loaded
    assert not loaded & set(HEAVY), "a rule's task must not import the report and notification machinery"


def test_the_scheduler_preloads_every_task_module_when_its_job_starts() -> None:
    # Airflow calls the listener from Job.__init__, before the scheduler forks its executor's workers
    loaded = _modules_after("from airflow.jobs.job import Job; Job()", argv=["airflow", "scheduler"])
    assert set(task_modules()) <= loaded


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["airflow", "triggerer"], {}),
        (["airflow", "scheduler"], {"AUTOMATION_PRELOAD": "false"}),
    ],
    ids=["not-the-scheduler", "turned-off"],
)
def test_other_components_and_a_turned_off_preload_stay_light(argv: list[str], env: dict[str, str]) -> None:
    loaded = _modules_after("from airflow.jobs.job import Job; Job()", argv=argv, env=env)
    assert "rule_engine.operators.evaluate" not in loaded
    assert "rule_compiler.store.rule_store" not in loaded


def test_a_module_that_fails_to_import_is_reported_not_raised() -> None:
    assert preload(["rule_engine.no_such_module", "rule_engine.loader"]) == ["rule_engine.no_such_module"]
