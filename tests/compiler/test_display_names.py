"""Readable in the Airflow UI: ``title``, the DAG and task display names the compiler builds, and ids
that never change with them (issue 14)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DagSpec
from rule_compiler.definitions import RuleDefinition
from rule_compiler.definitions.common import MAX_TITLE_LENGTH, TITLE_PATTERN
from rule_compiler.errors import RuleValidationError
from rule_compiler.json_schemas import render_schemas
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import Compiled, compile_document
from tests.conftest import DEMO_CATALOG, LOCAL_FIXTURES, ROOT

GOLDEN = ROOT / "tests" / "golden"
ESCALATE = ROOT / "include" / "rules" / "escalate-vip-orders.yaml"
WEEKLY = ROOT / "include" / "reports" / "weekly-sales.yaml"
DATA_RULE = LOCAL_FIXTURES / "good" / "failed-payments-spike.yaml"

#: The DAG and task ids of every golden file, written out: display names, titles and time zones may
#: change what the UI shows, never these (runs, logs, ledgers and links are keyed by them).
GOLDEN_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "good-archive-cancelled": (
        "rule__acme__archive-cancelled",
        ("evaluate_conditions", "archive", "tell-crm", "record_outcome"),
    ),
    "good-escalate-vip-orders": (
        "rule__acme__escalate-vip-orders",
        ("evaluate_conditions", "flag", "tell-manager", "crm", "record_outcome"),
    ),
    "good-failed-payments-spike": (
        "rule__acme__failed-payments-spike",
        ("wait_for_data", "evaluate_conditions", "page", "record_outcome"),
    ),
    "good-local-uses-templates": (
        "rule__acme__local-uses-templates",
        ("evaluate_conditions", "mark", "record_outcome"),
    ),
    "good-remind-stale-orders": (
        "rule__acme__remind-stale-orders",
        ("evaluate_conditions", "nudge", "mark", "record_outcome"),
    ),
    "reports-weekly-sales": (
        "report__acme__weekly-sales",
        ("run_queries", "render_csv", "render_xlsx", "render_html", "render_pdf", "deliver", "record_report"),
    ),
    "rules-archive-void-orders": (
        "rule__acme__archive-void-orders",
        ("evaluate_conditions", "archive", "record_outcome"),
    ),
    "rules-escalate-vip-orders": (
        "rule__acme__escalate-vip-orders",
        ("evaluate_conditions", "escalate", "annotate", "record_outcome"),
    ),
    "rules-expedite-vip-payments": (
        "rule__acme__expedite-vip-payments",
        ("evaluate_conditions", "expedite", "record_outcome"),
    ),
    "rules-flag-big-paid-orders": (
        "rule__acme__flag-big-paid-orders",
        ("evaluate_conditions", "flag", "record_outcome"),
    ),
    "rules-nudge-stale-pending": (
        "rule__acme__nudge-stale-pending",
        ("evaluate_conditions", "mark-stale", "record_outcome"),
    ),
    "rules-using-templates-note-big-vip-orders": (
        "rule__acme__note-big-vip-orders",
        ("evaluate_conditions", "note", "record_outcome"),
    ),
    "rules-using-templates-tell-vip-account-managers": (
        "rule__acme__tell-vip-account-managers",
        ("evaluate_conditions", "tell-manager", "record_outcome"),
    ),
}


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _compile(path: Path, **changes: Any) -> DagSpec:
    from tests.compiler.test_fixtures import fixture_templates

    compiled = compile_document(
        {**read_definition_file(path), **changes}, _catalog(), templates=fixture_templates()
    )
    assert isinstance(compiled, Compiled)
    return compiled.spec


def _title_issues(title: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(RuleValidationError) as caught:
        _compile(ESCALATE, title=title)
    return [(issue.path, issue.code, issue.message) for issue in caught.value.issues]


def test_golden_files_keep_their_dag_and_task_ids() -> None:
    goldens = {path.stem: json.loads(path.read_text()) for path in sorted(GOLDEN.glob("*.json"))}
    assert set(GOLDEN_IDS) <= set(goldens), "a golden file was removed: its DAG can no longer be checked"
    for name, spec in goldens.items():
        if name in GOLDEN_IDS:  # a new golden file's ids are guarded once they are listed above
            assert (spec["dag_id"], tuple(t["task_id"] for t in spec["tasks"])) == GOLDEN_IDS[name], name
        assert spec["display_name"], name  # and every one has a UI name now
        assert all(task["display_name"] for task in spec["tasks"]), name


def test_a_rule_without_title_is_shown_as_name_and_organization() -> None:
    spec = _compile(ESCALATE)
    assert spec.dag_id == "rule__acme__escalate-vip-orders"
    assert spec.display_name == "escalate-vip-orders (acme)"
    assert [(t.task_id, t.display_name) for t in spec.tasks] == [
        ("evaluate_conditions", "evaluate conditions"),
        ("escalate", "update_record: escalate"),
        ("annotate", "update_record: annotate"),
        ("record_outcome", "record outcome"),
    ]
    assert spec.description.startswith("Every 15 minutes")


def test_a_title_names_the_dag_and_changes_no_id() -> None:
    plain, titled = _compile(ESCALATE), _compile(ESCALATE, title="  Escalate VIP orders ")
    assert titled.display_name == "Escalate VIP orders"  # surrounding spaces dropped
    assert titled.dag_id == plain.dag_id
    assert [t.task_id for t in titled.tasks] == [t.task_id for t in plain.tasks]
    assert [t.display_name for t in titled.tasks] == [t.display_name for t in plain.tasks]
    assert titled.source_hash != plain.source_hash  # a new version when the title changes


def test_a_definition_without_title_hashes_as_before() -> None:
    """``title`` is left out of the dump when absent, so stored definitions keep their source hashes."""
    data = read_definition_file(ESCALATE)
    dumped = RuleDefinition.model_validate(data).model_dump(
        mode="json", by_alias=True, exclude_defaults=False
    )
    assert "title" not in dumped
    titled = RuleDefinition.model_validate({**data, "title": "Escalate"}).model_dump(mode="json")
    assert titled["title"] == "Escalate" and content_hash(titled) != content_hash(dumped)


def test_a_data_rule_labels_its_sensor() -> None:
    spec = _compile(DATA_RULE)
    assert spec.display_name == "failed-payments-spike (acme)"
    assert spec.task("wait_for_data").display_name == "wait for data"
    assert spec.task("page").display_name == "send_notification: page"
    assert "every `*/15 * * * *` (UTC), check gt" in spec.doc_md  # the zone next to the cron


def test_a_report_is_named_by_its_title_which_also_heads_its_files() -> None:
    plain = _compile(WEEKLY)
    assert plain.display_name == "weekly-sales (acme)"
    assert [(t.task_id, t.display_name) for t in plain.tasks] == [
        ("run_queries", "run queries"),
        ("render_csv", "render csv"),
        ("render_xlsx", "render xlsx"),
        ("render_html", "render html"),
        ("render_pdf", "render pdf"),
        ("deliver", "deliver"),
        ("record_report", "record report"),
    ]
    assert plain.task("render_pdf").params["title"] == "weekly-sales"  # shown as "Weekly sales"
    titled = _compile(WEEKLY, title="Sales of the week")
    assert titled.display_name == "Sales of the week"
    assert {t.params["title"] for t in titled.tasks if t.kind == "report_render"} == {"Sales of the week"}
    assert [t.task_id for t in titled.tasks] == [t.task_id for t in plain.tasks]


@pytest.mark.parametrize(
    ("title", "found"),
    [
        ("two\nlines", "U+000A"),
        ("tab\there", "U+0009"),
        ("escape \x1b[31m red", "U+001B"),
        ("C1 \x85 next line", "U+0085"),
        ("invoice \u202egnp.exe", "U+202E"),
        ("isolate \u2066x\u2069", "U+2066"),
    ],
)
def test_a_title_is_one_line_without_control_characters(title: str, found: str) -> None:
    [(path, code, message)] = _title_issues(title)
    assert (path, code) == ("title", "title")
    assert "one line of text" in message and found in message


def test_a_title_is_not_blank_and_bounded() -> None:
    [(path, code, message)] = _title_issues("   ")
    assert (path, code) == ("title", "title") and "may not be empty" in message
    [(path, code, message)] = _title_issues("x" * (MAX_TITLE_LENGTH + 1))
    assert (path, code) == ("title", "title") and f"at most {MAX_TITLE_LENGTH} characters" in message
    assert _compile(ESCALATE, title="x" * MAX_TITLE_LENGTH).display_name == "x" * MAX_TITLE_LENGTH
    assert _compile(ESCALATE, title="Überfällige Bestellungen ⚠").display_name == "Überfällige Bestellungen ⚠"
    [(path, code, _)] = _title_issues(42)
    assert path == "title" and code == "string_type"


def test_templates_take_a_title_too() -> None:
    from rule_compiler.definitions import ConditionTemplateDefinition, NotificationTemplateDefinition

    for model in (ConditionTemplateDefinition, NotificationTemplateDefinition):
        assert "title" in model.model_fields
    template = yaml.safe_load((ROOT / "include" / "templates" / "big-order.yaml").read_text())
    parsed = ConditionTemplateDefinition.model_validate({**template, "title": "Big order"})
    assert parsed.title == "Big order"
    assert "title" not in ConditionTemplateDefinition.model_validate(template).model_dump(mode="json")


def test_the_schemas_state_the_same_title_rule() -> None:
    for name in ("rule", "report", "condition_template", "notification_template"):
        schema = json.loads(render_schemas()[f"{name}.schema.json"])
        [text] = [branch for branch in schema["properties"]["title"]["anyOf"] if branch["type"] == "string"]
        assert text == {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TITLE_LENGTH,
            "pattern": TITLE_PATTERN,
        }
    pattern = re.compile(TITLE_PATTERN)  # the schema's pattern, read by Python as editors read it
    assert pattern.fullmatch("Escalate VIP orders (Berlin)") and not pattern.fullmatch("a\u202eb")
