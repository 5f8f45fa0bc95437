"""JSON Schemas of the definition format, exported to ``include/schemas/`` for editors and clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    Event,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.report import ReportDefinition

SCHEMAS: dict[str, Any] = {
    "rule.schema.json": RuleDefinition,
    "event.schema.json": Event,
    "catalog.schema.json": Catalog,
    "condition_template.schema.json": ConditionTemplateDefinition,
    "notification_template.schema.json": NotificationTemplateDefinition,
    "report.schema.json": ReportDefinition,
}


def render_schemas() -> dict[str, str]:
    """File name → schema text (stable: sorted keys, trailing newline)."""
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema(by_alias=True)
        schema["$id"] = f"https://automation-rule-engine.invalid/schemas/{name}"
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export_schemas(folder: Path) -> list[Path]:
    """Write every schema into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
