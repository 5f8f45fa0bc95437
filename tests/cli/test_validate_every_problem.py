"""`rule-compiler validate` lists every problem of a file at once, each once (issue 14, 7)."""

from __future__ import annotations

import json

import pytest

from rule_compiler.cli import main
from tests.compiler.test_every_problem import expected_issues
from tests.conftest import DEMO_CATALOG, LOCAL_FIXTURES

RULE = LOCAL_FIXTURES / "bad" / "local-every-problem-at-once.yaml"
REPORT = LOCAL_FIXTURES / "bad" / "report-every-problem-at-once.yaml"


def test_validate_prints_every_problem_of_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--catalog", str(DEMO_CATALOG), str(RULE)]) == 1
    out = capsys.readouterr().out
    expected = expected_issues(RULE)
    assert f"{len(expected)} problems" in out and "0 valid, 1 invalid" in out
    for path, words in expected.items():
        assert f"    {path}: " in out and words in out, path
    assert "trigger.cron: '61 * * * *' is not a valid cron" in out and "actions: dependency cycle" in out


def test_validate_json_lists_a_reports_problems_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", "--catalog", str(DEMO_CATALOG), str(REPORT)]) == 1
    errors = json.loads(capsys.readouterr().out)[0]["errors"]
    assert sorted(e["path"] for e in errors) == sorted(expected_issues(REPORT))
