"""Every difference between two JSON documents, at JSON paths: what version diffs and the audit log show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from rule_compiler.validation.paths import join

__all__ = ["JsonChange", "diff"]


@dataclass(frozen=True)
class JsonChange:
    """One difference: at ``path`` (``actions[0].values.priority``), ``added``, ``removed`` or ``changed``."""

    path: str
    op: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None


def diff(before: Any, after: Any, path: str = "") -> list[JsonChange]:
    """Every difference between two JSON values: objects by key (sorted), lists by position."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[JsonChange] = []
        for key in sorted(set(before) | set(after)):
            where = join(path, key)
            if key not in before:
                changes.append(JsonChange(where, "added", after=after[key]))
            elif key not in after:
                changes.append(JsonChange(where, "removed", before=before[key]))
            else:
                changes += diff(before[key], after[key], where)
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            where = join(path, index)
            if index >= len(before):
                changes.append(JsonChange(where, "added", after=after[index]))
            elif index >= len(after):
                changes.append(JsonChange(where, "removed", before=before[index]))
            else:
                changes += diff(before[index], after[index], where)
        return changes
    if json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True):
        return []
    return [JsonChange(path or "(document)", "changed", before, after)]
