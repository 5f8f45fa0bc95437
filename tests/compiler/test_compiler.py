"""The compiler: golden outputs, determinism across processes, stable ids, DAG shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DagSpec
from rule_compiler.definitions.definition_template import RuleTemplateDefinition, WorkflowTemplateDefinition
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document
from tests.conftest import DEMO_CATALOG, LOCAL_FIXTURES, ROOT

GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = [
    path
    for path in sorted((ROOT / "include" / "rules").glob("*.yaml"))
    + sorted((ROOT / "include" / "rules-using-templates").glob("*.yaml"))
    + sorted((ROOT / "include" / "reports").glob("*.yaml"))
    + sorted((ROOT / "include" / "workflows").glob("*.yaml"))
    + sorted((ROOT / "include" / "workflows-waiting").glob("*.yaml"))
    + sorted((LOCAL_FIXTURES / "good").glob("*.yaml"))
    if read_definition_file(path)["kind"] in ("rule", "report", "workflow")
]
#: The stored definitions the examples start or run (a workflow's report node).
STORED = {"report": ["weekly-sales"]}


def _templates() -> dict[str, Any]:
    from tests.compiler.test_fixtures import fixture_templates

    return fixture_templates()


def _notification_templates() -> dict[str, Any]:
    from tests.compiler.test_notification_templates import example_notification_templates

    return example_notification_templates()


def _definition_templates() -> dict[str, dict[str, Any]]:
    """The example rule and workflow templates (include/rule-templates/, include/templates/), by kind
    and name."""
    folders = [ROOT / "include" / "rule-templates", ROOT / "include" / "templates"]
    found = [read_definition_file(p) for folder in folders for p in sorted(folder.glob("*.yaml"))]
    models = {"rule_template": RuleTemplateDefinition, "workflow_template": WorkflowTemplateDefinition}
    return {
        kind: {d["name"]: model.model_validate(d) for d in found if d["kind"] == kind}
        for kind, model in models.items()
    }


def _compile(path: Path) -> tuple[str, str]:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    compiled = compile_document(
        read_definition_file(path),
        catalog,
        templates=_templates(),
        notification_templates=_notification_templates(),
        stored=STORED,
        definition_templates=_definition_templates(),
    )
    return compiled.spec_json, compiled.spec_hash


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_golden(path: Path) -> None:
    """Changing compiled output needs a COMPILER_VERSION bump and new goldens together (regenerate:
    `UPDATE_GOLDENS=1 .venv/bin/pytest tests/compiler/test_compiler.py -k golden`)."""
    spec_json, spec_hash = _compile(path)
    golden = GOLDEN / f"{path.parent.name}-{path.stem}.json"
    if os.environ.get("UPDATE_GOLDENS") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(json.loads(spec_json), indent=2, sort_keys=True) + "\n")
    expected = json.loads(golden.read_text())
    assert json.loads(spec_json) == expected, f"compiled output of {path.name} changed; see {golden}"
    assert DagSpec.model_validate(expected).spec_hash == spec_hash


def test_same_bytes_across_processes_and_hash_seeds() -> None:
    script = (
        "import sys, yaml; from pathlib import Path\n"
        "from rule_compiler.catalog import Catalog\n"
        "from rule_compiler.loading import read_definition_file\n"
        "from rule_compiler.registration import compile_document\n"
        "from tests.compiler.test_fixtures import fixture_templates\n"
        "from tests.compiler.test_notification_templates import example_notification_templates\n"
        "from tests.compiler.test_compiler import _definition_templates\n"
        f"cat = Catalog.model_validate(yaml.safe_load(Path({str(DEMO_CATALOG)!r}).read_text()))\n"
        "for p in sys.argv[1:]:\n"
        "    print(compile_document(read_definition_file(Path(p)), cat, templates=fixture_templates(),"
        " notification_templates=example_notification_templates(),"
        f" stored={STORED!r},"
        " definition_templates=_definition_templates()).spec_hash)\n"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script, *map(str, EXAMPLES)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert len(next(iter(outputs)).split()) == len(EXAMPLES)


def test_dag_shape_follows_depends_on() -> None:
    spec = DagSpec.model_validate_json(_compile(ROOT / "include" / "rules" / "escalate-vip-orders.yaml")[0])
    assert spec.dag_id == "rule__acme__escalate-vip-orders"
    assert [t.task_id for t in spec.tasks] == [
        "evaluate_conditions",
        "escalate",
        "annotate",
        "record_outcome",
    ]
    assert spec.task("escalate").upstream == ("evaluate_conditions",)
    assert spec.task("annotate").upstream == ("escalate",)
    assert spec.task("record_outcome").upstream == ("annotate", "escalate")
    assert spec.task("record_outcome").trigger_rule == "all_done"
    assert set(spec.tags) == {"automation", "org:acme", "trigger:schedule"}
    assert spec.schedule.cron == "*/15 * * * *" and spec.schedule.timezone == "Europe/Berlin"
    assert "customer__tier" in spec.task("evaluate_conditions").params["row_source"]["paths"]  # type: ignore[operator,index]


def test_doc_md_renders_the_rule_for_humans() -> None:
    spec = DagSpec.model_validate_json(_compile(ROOT / "include" / "rules" / "escalate-vip-orders.yaml")[0])
    assert '`customer__tier` equals "vip"' in spec.doc_md
    assert "- not:" in spec.doc_md and "`annotate`: update record (orders) after `escalate`" in spec.doc_md


def test_description_change_changes_hash_but_not_ids() -> None:
    path = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    data = read_definition_file(path)
    first = compile_document(data, catalog)
    second = compile_document({**data, "description": "changed"}, catalog)
    assert first.spec_hash != second.spec_hash
    assert [t.task_id for t in first.spec.tasks] == [t.task_id for t in second.spec.tasks]
    assert first.spec.dag_id == second.spec.dag_id
