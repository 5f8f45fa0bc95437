"""JSON Schemas of the definition format, exported to ``include/schemas/`` for editors and clients.

One file per definition kind this release accepts (``<kind>.schema.json``, from the same models
validation uses, so a new kind cannot be left out), plus the catalog and the ``Event`` of
``test-rule`` and ``POST /events``. ``tests/compiler/test_schemas.py`` proves that
``rule-compiler schema export`` reproduces every file in ``include/schemas/`` byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import Event
from rule_compiler.kinds import KINDS

SCHEMAS: dict[str, Any] = {
    **{f"{name}.schema.json": kind.model for name, kind in KINDS.items()},
    "event.schema.json": Event,
    "catalog.schema.json": Catalog,
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
