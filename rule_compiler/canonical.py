"""Canonical JSON and content hashes: the same value gives the same bytes in every process."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 kept, NaN refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON, as 64 hex characters."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
