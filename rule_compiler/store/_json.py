"""JSON as stored in TEXT columns, so SQLite and Postgres hold (and hash) the same bytes.

Definitions and catalogs go through :func:`rule_compiler.canonical.canonical_json` (strict: a value
that is not plain JSON is a bug). Automation-log values (trigger context, traces, action outputs)
come from databases and webhooks at run time, so :func:`log_json` is lenient: anything JSON does not
know (datetimes, decimals, UUIDs) is written as its ``str()`` rather than failing the run.
"""

from __future__ import annotations

import json
from typing import Any

from rule_compiler.canonical import canonical_json, content_hash

__all__ = ["canonical_json", "content_hash", "loads", "log_json"]


def log_json(value: Any) -> str:
    """Canonical JSON that never refuses a value: unknown types become strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def loads(text: str | None) -> Any:
    """Parse a stored JSON column; ``NULL`` stays ``None``."""
    return None if text is None else json.loads(text)
