"""What the rule routes do besides HTTP: compile against the organization's catalog and templates,
ETags, JSON merge patch, version diffs and next run times. Pure functions over the store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from rule_compiler.canonical import content_hash
from rule_compiler.catalog import Catalog
from rule_compiler.compiler import COMPILER_VERSION
from rule_compiler.definitions import ConditionTemplateDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.registration import TEMPLATE_KIND, Compiled, compile_document
from rule_compiler.store import RuleStore, StoredDefinition
from rule_compiler.validation.paths import join
from rule_engine.api.schemas import Change, RulePublic, RuleSummary

RULE_KIND = "rule"
MAX_NEXT_RUNS = 50


def etag_of(version: int, active: bool, source_hash: str) -> str:
    """A strong ETag for a rule's current state (version, active flag and content)."""
    digest = hashlib.sha256(f"{version}:{int(active)}:{source_hash}".encode()).hexdigest()[:32]
    return f'"{digest}"'


def etag_matches(if_match: str, etag: str) -> bool:
    """RFC 9110 ``If-Match``: ``*`` or a list of strong tags, one equal to ``etag``."""
    if if_match.strip() == "*":
        return True
    return any(tag.strip() == etag for tag in if_match.split(",") if not tag.strip().startswith("W/"))


def catalog_of(store: RuleStore, organization: str) -> Catalog | None:
    """The organization's catalog, or None when it has none (validation then says so)."""
    raw = store.get_catalog(organization)
    return None if raw is None else Catalog.model_validate(raw)


def templates_of(store: RuleStore, organization: str) -> dict[str, ConditionTemplateDefinition]:
    """The organization's stored condition templates by name."""
    return {
        row.name: ConditionTemplateDefinition.model_validate(row.source)
        for row in store.definitions_of_kind(organization, TEMPLATE_KIND)
    }


def with_organization(body: dict[str, Any], organization: str, *, name: str | None = None) -> dict[str, Any]:
    """The body as a rule of ``organization`` (and ``name``); 422 issues when it names others."""
    issues = []
    given = body.get("organization")
    if given is not None and given != organization:
        issues.append(
            Issue(
                "organization",
                f"the organization comes from your membership ('{organization}'); leave it out or "
                f"give '{organization}'",
                "organization",
            )
        )
    if body.get("kind", RULE_KIND) != RULE_KIND:
        issues.append(Issue("kind", f"this route takes rules (kind: rule), not '{body.get('kind')}'", "kind"))
    if name is not None and body.get("name", name) != name:
        issues.append(Issue("name", f"the name is the one in the path ('{name}'); renaming is not supported"))
    if issues:
        raise RuleValidationError(issues)
    data = {**body, "organization": organization, "kind": RULE_KIND}
    if name is not None:
        data["name"] = name
    return data


def compile_rule_for(store: RuleStore, organization: str, data: dict[str, Any]) -> Compiled:
    """Validate and compile a rule of ``organization``; RuleValidationError lists every problem."""
    compiled = compile_document(
        data, catalog_of(store, organization), templates=templates_of(store, organization)
    )
    if not isinstance(compiled, Compiled):  # pragma: no cover - with_organization forces kind: rule
        raise RuleValidationError([Issue("kind", "not a rule")])
    return compiled


def apply_args(compiled: Compiled, actor: str) -> dict[str, Any]:
    """:meth:`RuleStore.apply` arguments for a compiled rule (as :func:`registration.register` stores it)."""
    definition = compiled.definition
    source = definition.model_dump(mode="json", by_alias=True)
    return {
        "organization": definition.organization,
        "kind": definition.kind,
        "name": definition.name,
        "dag_id": compiled.dag_id,
        "source": source,
        "source_hash": content_hash(source),
        "spec_json": compiled.spec_json,
        "spec_hash": compiled.spec_hash,
        "active": definition.active,
        "actor": actor,
        "compiler_version": COMPILER_VERSION,
    }


def trigger_type(source: dict[str, Any]) -> str:
    trigger = source.get("trigger")
    return str(trigger.get("type", "")) if isinstance(trigger, dict) else ""


def summary_of(stored: StoredDefinition) -> RuleSummary:
    """A listing entry."""
    return RuleSummary(
        name=stored.name,
        organization=stored.organization,
        dag_id=stored.dag_id,
        active=stored.active,
        trigger_type=trigger_type(stored.source),
        description=str(stored.source.get("description", "")),
        version=stored.version,
        etag=etag_of(stored.version, stored.active, stored.source_hash),
        updated_at=stored.updated_at,
    )


def public_of(stored: StoredDefinition) -> RulePublic:
    """A rule as the API shows it."""
    return RulePublic(
        **summary_of(stored).model_dump(),
        definition=stored.source,
        source_hash=stored.source_hash,
        spec_hash=stored.spec_hash,
        compiler_version=stored.compiler_version,
        updated_by=stored.actor,
        created_at=stored.created_at,
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every difference between two JSON values, at JSON paths (``actions[0].values.priority``)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for key in sorted(set(before) | set(after)):
            where = join(path, key)
            if key not in before:
                changes.append(Change(path=where, op="added", after=after[key]))
            elif key not in after:
                changes.append(Change(path=where, op="removed", before=before[key]))
            else:
                changes += diff(before[key], after[key], where)
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            where = join(path, index)
            if index >= len(before):
                changes.append(Change(path=where, op="added", after=after[index]))
            elif index >= len(after):
                changes.append(Change(path=where, op="removed", before=before[index]))
            else:
                changes += diff(before[index], after[index], where)
        return changes
    if json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True):
        return []
    return [Change(path=path or "(document)", op="changed", before=before, after=after)]


def schedule_of(source: dict[str, Any]) -> tuple[str, str] | None:
    """(cron, timezone) of a schedule or data trigger; None for event and manual rules."""
    trigger = source.get("trigger")
    if not isinstance(trigger, dict):
        return None
    cron = trigger.get("cron") if trigger.get("type") == "schedule" else None
    if trigger.get("type") == "data":
        cron = trigger.get("schedule")
    if not isinstance(cron, str):
        return None
    return cron, str(trigger.get("timezone") or "UTC")


def next_runs(cron: str, timezone: str, count: int, now: dt.datetime) -> list[dt.datetime]:
    """The next ``count`` times ``cron`` fires in ``timezone`` after ``now`` (as Airflow's cron timetable)."""
    start = now.astimezone(ZoneInfo(timezone))
    iterator = croniter(cron, start)
    return [iterator.get_next(dt.datetime) for _ in range(count)]
