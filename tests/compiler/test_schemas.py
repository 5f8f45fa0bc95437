"""The exported JSON Schemas in include/schemas are current (regenerate: `rule-compiler schema export`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rule_compiler.cli import main
from rule_compiler.json_schemas import render_schemas
from rule_compiler.kinds import KINDS
from tests.conftest import ROOT

SCHEMAS = ROOT / "include" / "schemas"


def test_exported_schemas_are_current() -> None:
    for name, text in render_schemas().items():
        path = SCHEMAS / name
        assert path.exists(), f"{path} missing: run `rule-compiler schema export`"
        assert path.read_text() == text, f"{path} is stale: run `rule-compiler schema export`"


def test_schema_export_reproduces_every_file_in_include_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command as a user runs it: the same files, byte for byte, and none missing or extra."""
    out = tmp_path / "schemas"
    assert main(["schema", "export", "--out", str(out)]) == 0
    written = {path.name for path in out.iterdir()}
    committed = {path.name for path in SCHEMAS.glob("*.json")}
    assert written == committed, f"exported {sorted(written)}, include/schemas holds {sorted(committed)}"
    for name in sorted(committed):
        assert (out / name).read_bytes() == (SCHEMAS / name).read_bytes(), (
            f"include/schemas/{name} differs from `rule-compiler schema export`: run it and commit the result"
        )
    assert capsys.readouterr().out.count("wrote ") == len(committed)


def test_every_supported_kind_has_a_schema() -> None:
    schemas = render_schemas()
    assert "report.schema.json" in schemas
    for kind in KINDS:
        schema = json.loads(schemas[f"{kind}.schema.json"])
        assert schema["properties"]["kind"]["const"] == kind


def test_rule_schema_forbids_unknown_keys() -> None:
    schema = json.loads(render_schemas()["rule.schema.json"])
    assert schema["additionalProperties"] is False
    assert "trigger" in schema["required"] and "actions" in schema["required"]
