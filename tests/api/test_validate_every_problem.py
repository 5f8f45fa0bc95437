"""``POST .../validate`` answers every problem of a body at once, each once (issue 14, 7 and 8)."""

from __future__ import annotations

from typing import Any

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore
from tests.api.conftest import Api, rule_body
from tests.compiler.test_every_problem import expected_issues
from tests.conftest import LOCAL_FIXTURES

BAD = LOCAL_FIXTURES / "bad"


def _body(name: str) -> dict[str, Any]:
    data = read_definition_file(BAD / f"{name}.yaml")
    data.pop("organization")
    return data


def test_validate_a_rule_lists_every_problem_of_every_part(api: Api, store: RuleStore) -> None:
    response = api.as_("vera").post("/rules/validate", json=_body("local-every-problem-at-once"))
    assert response.status_code == 200
    assert response.json()["valid"] is False
    errors = response.json()["errors"]
    expected = expected_issues(BAD / "local-every-problem-at-once.yaml")
    assert sorted(e["path"] for e in errors) == sorted(expected)
    assert all(expected[e["path"]].lower() in e["message"].lower() for e in errors)
    assert store.list() == []


def test_validate_a_report_lists_every_problem_of_every_part(api: Api) -> None:
    response = api.as_("vera").post("/reports/validate", json=_body("report-every-problem-at-once"))
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert sorted(e["path"] for e in errors) == sorted(
        expected_issues(BAD / "report-every-problem-at-once.yaml")
    )


def test_a_rule_generating_a_report_that_is_not_stored_is_refused_at_its_report(
    api: Api, store: RuleStore
) -> None:
    action = {"id": "sales", "type": "generate_report", "report": "weekly-sales"}
    body = rule_body(actions=[*rule_body()["actions"], action])
    response = api.as_("ed").post("/rules", json=body)
    assert response.status_code == 422
    # the REST view looks the organization's stored reports up (the kinds table: a rule uses reports)
    [missing] = response.json()["errors"]
    assert (
        missing["path"] == "actions[1].report" and "report 'weekly-sales' is not stored" in missing["message"]
    )
    assert store.list() == []
