"""Canonical JSON and content hashes: the same value gives the same bytes in every process."""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: The largest compiled spec (its canonical JSON, UTF-8) registration stores and the DAG loader renders.
#: The largest example's is about 7 KB; a rule at the 1,000-leaf limit is about 250 KB.
MAX_SPEC_BYTES = 256 * 1024


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 kept, NaN refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON, as 64 hex characters."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
