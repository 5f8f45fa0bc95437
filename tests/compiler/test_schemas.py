"""The exported JSON Schemas in include/schemas are current (regenerate: `rule-compiler schema export`)."""

from __future__ import annotations

from rule_compiler.schema_export import render_schemas
from tests.conftest import ROOT


def test_exported_schemas_are_current() -> None:
    for name, text in render_schemas().items():
        path = ROOT / "include" / "schemas" / name
        assert path.exists(), f"{path} missing: run `rule-compiler schema export`"
        assert path.read_text() == text, f"{path} is stale: run `rule-compiler schema export`"


def test_rule_schema_forbids_unknown_keys() -> None:
    import json

    schema = json.loads(render_schemas()["rule.schema.json"])
    assert schema["additionalProperties"] is False
    assert "trigger" in schema["required"] and "actions" in schema["required"]
