"""``rule-compiler audit``: the audit log newest first, filtered, with diffs as lines and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rule_compiler.cli import main
from tests.conftest import DEMO_CATALOG, ROOT

RULE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    assert main([*store, "db", "upgrade"]) == 0
    assert main([*store, "catalog", "apply", "--actor", "carol", str(DEMO_CATALOG)]) == 0
    assert main([*store, "apply", "--actor", "alice", str(RULE)]) == 0
    data = yaml.safe_load(RULE.read_text())
    data["description"] = "now with a new description"
    changed = tmp_path / RULE.name
    changed.write_text(yaml.safe_dump(data))
    assert main([*store, "apply", "--actor", "bob", str(changed)]) == 0
    return store


def test_the_audit_as_a_table_with_diffs(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main([*store_args, "audit", "--diff"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["when", "(UTC)", "organization", "actor", "action", "kind"]
    entries = [line.split() for line in lines[2:] if not line.startswith("    ")]
    assert [(e[2], e[3], e[4], e[5]) for e in entries] == [
        ("acme", "bob", "update", "rule"),
        ("acme", "alice", "create", "rule"),
        ("acme", "carol", "catalog", "catalog"),
    ]
    assert '    ~ description: "' in "\n".join(lines)
    assert '-> "now with a new description"' in "\n".join(lines)


def test_filters_and_json(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main([*store_args, "audit", "--org", "acme", "--actor", "bob", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    [entry] = data["items"]
    assert (entry["action"], entry["version"], data["has_more"]) == ("update", 2, False)
    assert entry["diff"] == [
        {
            "path": "description",
            "op": "changed",
            "before": yaml.safe_load(RULE.read_text())["description"],
            "after": "now with a new description",
        }
    ]
    assert main([*store_args, "audit", "--kind", "rule", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "bob" in out and "alice" not in out and "more entries" in out
    assert main([*store_args, "audit", "--org", "globex"]) == 0
    assert "no audit entries match" in capsys.readouterr().out
    assert main([*store_args, "audit", "--since", "soon"]) != 0
    assert "duration back from now" in capsys.readouterr().err
