"""What every stored-definition resource (rules, reports, templates) answers the same way: its
compiled spec, its versions and a diff between two, and the notice to Airflow after a write."""

from __future__ import annotations

import json

from fastapi import Request

from rule_compiler.store import RuleStore, StoredDefinition
from rule_engine.api import rule_ops
from rule_engine.api.airflow_sync import RuleChange
from rule_engine.api.schemas import RuleSpecPublic, VersionDiff, VersionPublic


def spec_public(stored: StoredDefinition) -> RuleSpecPublic:
    """The compiled spec of ``stored`` and its DAG id."""
    return RuleSpecPublic(
        name=stored.name,
        dag_id=stored.dag_id,
        version=stored.version,
        spec_hash=stored.spec_hash,
        compiler_version=stored.compiler_version,
        spec=json.loads(stored.spec_json),
    )


def versions_public(store: RuleStore, organization: str, kind: str, name: str) -> list[VersionPublic]:
    """Every stored version of a definition, oldest first."""
    return [
        VersionPublic(
            version=v.version,
            source_hash=v.source_hash,
            spec_hash=v.spec_hash,
            compiler_version=v.compiler_version,
            actor=v.actor,
            created_at=v.created_at,
        )
        for v in store.versions(organization=organization, kind=kind, name=name)
    ]


def version_diff(
    store: RuleStore, organization: str, kind: str, name: str, versions: tuple[int, int]
) -> VersionDiff:
    """What changed between two versions (from, to) of a definition, at JSON paths."""
    from_version, to_version = versions
    before = store.get(organization=organization, kind=kind, name=name, version=from_version)
    after = store.get(organization=organization, kind=kind, name=name, version=to_version)
    return VersionDiff(
        name=name,
        from_version=from_version,
        to_version=to_version,
        changes=rule_ops.diff(before.source, after.source),
    )


def notify(request: Request, organization: str, name: str, dag_id: str, active: bool | None) -> None:
    """Tell Airflow about a stored change (re-parse, pause state), through the app's ``on_change``."""
    on_change = request.app.state.on_change
    if on_change is not None:
        on_change(RuleChange(organization, name, dag_id, active))
