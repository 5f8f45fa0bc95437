"""The change each audit entry records, as a diff at JSON paths (``GET /audit``, ``rule-compiler audit``).

A definition's create or update is the diff between its stored version and the one before (a create:
from nothing); a catalog's, between its catalog versions; activate and deactivate change ``active``;
a membership change, ``role``; a delete removes the document. Entries that change no document (a run
started, an approval answered) have no diff (None), and neither has a version no longer stored (a
hard-deleted definition).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rule_compiler.json_diff import JsonChange, diff
from rule_compiler.kinds import KINDS
from rule_compiler.store import AuditEntry, RuleStore

__all__ = ["changes_of"]

_VERSIONED = {*KINDS, "catalog"}


def changes_of(store: RuleStore, entries: Sequence[AuditEntry]) -> dict[int, list[JsonChange] | None]:
    """Each entry's diff by its id, reading every stored version the entries need once."""
    wanted: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for entry in entries:
        if _needs_versions(entry):
            assert entry.version is not None  # noqa: S101 - _needs_versions checked it
            wanted[(entry.organization, entry.kind, entry.name)] |= {entry.version, entry.version - 1}
    sources = {
        key: store.version_sources(organization=key[0], kind=key[1], name=key[2], versions=versions)
        for key, versions in wanted.items()
    }
    return {
        entry.id: _change(entry, sources.get((entry.organization, entry.kind, entry.name), {}))
        for entry in entries
    }


def _needs_versions(entry: AuditEntry) -> bool:
    return (
        entry.kind in _VERSIONED
        and entry.version is not None
        and entry.action in ("create", "update", "catalog", "delete")
    )


def _change(entry: AuditEntry, sources: dict[int, Any]) -> list[JsonChange] | None:
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    if entry.action in ("activate", "deactivate"):
        return [JsonChange("active", "changed", detail.get("active_before"), detail.get("active_after"))]
    if entry.kind == "membership":
        before, after = detail.get("role_before"), detail.get("role_after")
        if before is None:
            return [JsonChange("role", "added", after=after)]
        if entry.action == "delete":
            return [JsonChange("role", "removed", before=before)]
        return [JsonChange("role", "changed", before, after)]
    if not _needs_versions(entry) or entry.version is None:
        return None
    if entry.action == "delete":
        return [JsonChange("(document)", "removed", sources.get(entry.version))]
    after = sources.get(entry.version)
    if after is None:
        return None
    return diff(sources.get(entry.version - 1) or {}, after)
