"""JSON paths in the form the fixtures and the REST errors use: ``actions[1].values.priority``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DOCUMENT = "(document)"


def join(base: str, key: str | int) -> str:
    """Append a key or list index to a path."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def from_loc(loc: Iterable[Any], data: Any) -> str:
    """Turn a pydantic error location into a JSON path, dropping union tags (``#event``) and ``[key]``."""
    path = ""
    current = data
    for part in loc:
        if isinstance(part, str) and (part.startswith("#") or part == "[key]"):
            continue  # a union tag, or the mark of an error in a mapping's key (at the key's path)
        if isinstance(part, str) and part == "not_" and isinstance(current, dict) and "not" in current:
            part = "not"  # noqa: PLW2901 - the model field `not_` is the key `not` in documents
        path = join(path, part)
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            current = None
    return path or DOCUMENT
