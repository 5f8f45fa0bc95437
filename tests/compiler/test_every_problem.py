"""Every problem at once: the semantic checks run on the parts of a document that parse (issue 14, 7),
(actions starting stored definitions: tests/compiler/test_start_actions.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import RuleDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.loading import read_definition_file
from rule_compiler.schedules import MIN_INTERVAL_ENV
from rule_compiler.validation import validate_document
from rule_compiler.validation.partial import WHOLE, salvage
from tests.conftest import DEMO_CATALOG, LOCAL_FIXTURES, ROOT

RULE = ROOT / "include" / "rules" / "escalate-vip-orders.yaml"
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"


def expected_issues(path: Path) -> dict[str, str]:
    """path → words of a fixture's ``# expect-error-at``/``# expect-message`` and ``# expect-error-also:
    PATH: WORDS`` lines: every problem it must report, and the only ones."""
    head = [line[2:] for line in path.read_text().splitlines() if line.startswith("# expect-")]
    pairs = [line.split(": ", 1) for line in head]
    expected = {pairs[0][1]: pairs[1][1]}
    for key, value in pairs[2:]:
        if key == "expect-error-also":
            where, words = value.split(": ", 1)
            expected[where] = words
    return expected


MULTI = sorted(p for p in (LOCAL_FIXTURES / "bad").glob("*.yaml") if "# expect-error-also:" in p.read_text())


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _issues(data: dict[str, Any], **kwargs: Any) -> list[Issue]:
    with pytest.raises(RuleValidationError) as caught:
        validate_document(data, _catalog(), **kwargs)
    return list(caught.value.issues)


def _paths(data: dict[str, Any], **kwargs: Any) -> list[str]:
    return [issue.path for issue in _issues(data, **kwargs)]


def _rule() -> dict[str, Any]:
    return copy.deepcopy(read_definition_file(RULE))


def test_the_multi_problem_fixtures_exist() -> None:
    assert {p.stem for p in MULTI} >= {"local-every-problem-at-once", "report-every-problem-at-once"}


@pytest.mark.parametrize("path", MULTI, ids=[p.stem for p in MULTI])
def test_a_fixture_reports_every_problem_once(path: Path) -> None:
    expected = expected_issues(path)
    issues = _issues(read_definition_file(path))
    assert sorted(issue.path for issue in issues) == sorted(expected), issues  # each once, nothing else
    for issue in issues:
        assert expected[issue.path].lower() in issue.message.lower(), issue


def test_a_bad_cron_hides_neither_conditions_nor_actions() -> None:
    data = _rule()
    data["trigger"]["cron"] = "61 * * * *"
    data["conditions"]["all"][1]["field"] = "totl"
    data["actions"][0]["depends_on"] = ["annotate"]
    data["actions"][1]["values"] = {"notes": "x"}
    assert _paths(data) == ["actions", "actions[1].values", "conditions.all[1].field", "trigger.cron"]


def test_a_value_standing_in_for_a_bad_cron_is_never_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIN_INTERVAL_ENV, str(7 * 86_400))  # the stand-in (daily) runs too often
    data = _rule()
    data["trigger"]["cron"] = "0 0 31 2 *"
    data["actions"][1]["values"] = {"notes": "x"}
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [
        ("actions[1].values", "unknown_column"),
        ("trigger.cron", "cron_never_fires"),
    ]


def test_an_unparsed_trigger_skips_only_what_needs_its_row() -> None:
    data = _rule()
    data["trigger"] = {"type": "sometimes", "target": {"connection": "app_db", "table": "orders"}}
    data["conditions"]["all"][1]["field"] = "totl"  # needs the row's table: not checked
    data["actions"][1]["values"] = {"notes": "x"}  # checked against its own table
    assert _paths(data) == ["actions[1].values", "trigger.type"]


def test_a_target_that_did_not_parse_asks_for_no_target() -> None:
    data = _rule()
    data["trigger"]["target"]["table"] = "orders; drop table orders"
    data["actions"][1]["values"] = {"notes": "x"}
    assert _paths(data) == ["actions[1].values", "trigger.target.table"]


def test_a_dependency_on_an_action_that_did_not_parse_is_not_unknown() -> None:
    data = _rule()
    data["actions"][0]["values"] = {}  # too short: the action is left out of the checks
    data["actions"][1]["values"] = {"notes": "x"}
    data["actions"].append({**data["actions"][1], "id": "third", "depends_on": ["nobody"]})
    issues = _issues(data)
    assert [i.path for i in issues] == [
        "actions[0].values",
        "actions[1].values",
        "actions[2].depends_on[0]",  # the document's index, though the first action was left out
        "actions[2].values",
    ]
    assert "'nobody'" in issues[2].message


def test_a_value_that_did_not_parse_does_not_count_as_absent() -> None:
    data = _rule()
    data["actions"][0]["where"] = {"field": "status", "operator": "is", "value": "paid"}
    data["actions"][0]["table"] = "customers"  # without where it would act on the triggering row
    data["actions"].append(
        {"id": "tell", "type": "send_notification", "channel": "email", "to": ["a@acme.example"]}
    )
    data["actions"][2]["template"] = "Not A Slug"  # not "give a template or a body"
    data["actions"][2]["to"] = [5]  # not "an email needs at least one recipient"
    assert _paths(data) == [
        "actions[0].values",
        "actions[0].where.operator",
        "actions[2].template",
        "actions[2].to[0]",
    ]


def test_structural_and_semantic_problems_of_one_value_are_reported_once() -> None:
    data = _rule()
    data["actions"].append({"id": "page", "type": "send_notification", "channel": "slack", "body": "hi"})
    data["actions"][2]["connection"] = "on call"  # not "a slack notification needs a connection"
    data["actions"][1]["values"] = {"notes": "x"}
    issues = _issues(data)
    assert [(i.path, i.code) for i in issues] == [
        ("actions[1].values", "unknown_column"),
        ("actions[2].connection", "identifier"),
    ]


def test_an_organization_that_did_not_parse_stops_the_catalog_checks() -> None:
    data = _rule()
    data["organization"] = "Acme"
    data["actions"][1]["values"] = {"notes": "x"}
    assert _paths(data) == ["organization"]


def test_unknown_keys_no_longer_hide_the_semantic_problems() -> None:
    data = _rule()
    data["colour"] = "blue"
    data["actions"][1]["values"] = {"notes": "x"}
    assert _paths(data) == ["actions[1].values", "colour"]


def test_report_parts_that_did_not_parse_hide_only_their_own_checks() -> None:
    data = copy.deepcopy(read_definition_file(REPORT))
    data["schedule"] = "0 7 * * 1"  # not a mapping: no interval check
    data["formats"] = "pdf"  # not a list: no check of charts or attachments against the formats
    data["queries"][0]["connection"] = "billing_db"
    data["deliver"][0]["attach"] = ["xlsx"]
    assert _paths(data) == ["formats", "queries[0].connection", "schedule"]


def test_templates_report_their_structure_first() -> None:
    data = yaml.safe_load((LOCAL_FIXTURES / "templates" / "big-order.yaml").read_text())
    data["title"] = 5
    data["parameters"] = {"Bad Name": {"type": "number"}}
    assert [i.path for i in _issues(data)] == ["parameters.Bad Name", "title"]


def test_salvage_maps_paths_back_to_the_document() -> None:
    data = _rule()
    data["actions"].insert(0, {"id": "x", "type": "nope"})
    rule, parts = salvage(RuleDefinition, data)
    assert [a.id for a in rule.actions] == ["escalate", "annotate"]
    assert parts.original("actions[1].depends_on[0]") == "actions[2].depends_on[0]"
    assert parts.original("actions[0]") == "actions[1]" and parts.parsed("actions[0]")
    assert not parts.intact("actions")
    assert parts.dropped_names("actions", "id") == {"x"}
    assert (
        parts.intact("trigger") and WHOLE.intact("anything") and WHOLE.dropped_names("actions", "id") == set()
    )
