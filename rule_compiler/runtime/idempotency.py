"""Idempotency keys: from (rule, event or run, action, row), never try number or version.

See docs/architecture.md §3.5 and ADR 0003.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rule_compiler.canonical import canonical_json


def key_values(row: Any, primary_key: list[str]) -> list[Any]:
    """A row's primary-key values as JSON-safe values (decimals, dates as text)."""
    return [_plain(row[column]) for column in primary_key]


def row_key(row: Any, primary_key: list[str]) -> str:
    """A row's stable key text: its primary-key values as canonical JSON (``[42]``)."""
    return canonical_json(key_values(row, primary_key))


def idempotency_key(rule_id: str, occurrence_id: str, action_id: str, key_of_row: str | None) -> str:
    """64 hex characters naming one effect; equal inputs give equal keys in every process."""
    material = canonical_json([rule_id, occurrence_id, action_id, key_of_row])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
