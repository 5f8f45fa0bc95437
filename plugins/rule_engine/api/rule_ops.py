"""What the rule routes do besides HTTP: compile against the organization's catalog and templates,
ETags, JSON merge patch, version diffs and next run times. Pure functions over the store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any
from zoneinfo import ZoneInfo

from rule_compiler import schedules
from rule_compiler.catalog import Catalog
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
)
from rule_compiler.definitions.report import ReportDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import CONDITION_TEMPLATE as TEMPLATE_KIND
from rule_compiler.notification_templates import NOTIFICATION_TEMPLATE_KIND, raw_notification_uses
from rule_compiler.registration import Compiled, CompiledDefinition, compile_document
from rule_compiler.store import DefinitionWrite, RuleStore, StoredDefinition
from rule_compiler.validation.paths import join
from rule_engine.api.schemas import Change, IssueOut, RulePublic, RuleSummary

RULE_KIND = "rule"
REPORT_KIND = "report"
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


def precondition(stored: StoredDefinition, if_match: str | None, noun: str = "rule") -> tuple[int, bool]:
    """The (version, active) a write must still find; 428/412 when If-Match is missing or stale."""
    from fastapi import HTTPException, status

    etag = etag_of(stored.version, stored.active, stored.source_hash)
    if if_match is None:
        raise HTTPException(
            status.HTTP_428_PRECONDITION_REQUIRED,
            f"send If-Match with the {noun}'s ETag (GET it first); it is now {etag}",
        )
    if not etag_matches(if_match, etag):
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED,
            f"the {noun} changed since you read it (its ETag is now {etag}); GET it again",
            headers={"ETag": etag},
        )
    return stored.version, stored.active


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


def notification_templates_of(
    store: RuleStore, organization: str
) -> dict[str, NotificationTemplateDefinition]:
    """The organization's stored notification templates by name."""
    return {
        row.name: NotificationTemplateDefinition.model_validate(row.source)
        for row in store.definitions_of_kind(organization, NOTIFICATION_TEMPLATE_KIND)
    }


def with_organization(
    body: dict[str, Any], organization: str, *, name: str | None = None, kind: str = RULE_KIND
) -> dict[str, Any]:
    """The body as a ``kind`` (a rule) of ``organization`` (and ``name``); 422 issues when it names others."""
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
    if body.get("kind", kind) != kind:
        noun = kind.replace("_", " ")
        issues.append(
            Issue("kind", f"this route takes {noun}s (kind: {kind}), not '{body.get('kind')}'", "kind")
        )
    if name is not None and body.get("name", name) != name:
        issues.append(Issue("name", f"the name is the one in the path ('{name}'); renaming is not supported"))
    if issues:
        raise RuleValidationError(issues)
    data = {**body, "organization": organization, "kind": kind}
    if name is not None:
        data["name"] = name
    return data


def compile_rule_for(
    store: RuleStore,
    organization: str,
    data: dict[str, Any],
    *,
    templates: dict[str, ConditionTemplateDefinition] | None = None,
    notification_templates: dict[str, NotificationTemplateDefinition] | None = None,
) -> Compiled:
    """Validate and compile a rule of ``organization``; RuleValidationError lists every problem.

    The templates are the organization's stored ones unless given (a template change being tried).
    """
    if templates is None:
        templates = templates_of(store, organization)
    if notification_templates is None:
        uses = raw_notification_uses(data)
        notification_templates = notification_templates_of(store, organization) if uses else {}
    compiled = compile_document(
        data,
        catalog_of(store, organization),
        templates=templates,
        notification_templates=notification_templates,
    )
    if not isinstance(compiled, Compiled) or compiled.rule is None:  # pragma: no cover - kind: rule
        raise RuleValidationError([Issue("kind", "not a rule")])
    return compiled


def compile_report_for(store: RuleStore, organization: str, data: dict[str, Any]) -> Compiled:
    """Validate and compile a report of ``organization`` against its catalog (SQL files are read from
    ``include/sql/reports/``); RuleValidationError lists every problem."""
    compiled = compile_document(data, catalog_of(store, organization))
    if not isinstance(compiled, Compiled) or not isinstance(compiled.definition, ReportDefinition):
        raise RuleValidationError([Issue("kind", "not a report")])  # pragma: no cover - kind is forced
    return compiled


def warnings_of(compiled: Compiled) -> list[IssueOut]:
    """The non-blocking problems of a compiled rule, as the API shows them."""
    return [IssueOut(**issue.as_dict()) for issue in compiled.warnings]


def apply_args(compiled: CompiledDefinition, actor: str, *, active: bool | None = None) -> DefinitionWrite:
    """The store write of a compiled definition; ``active`` overrides the definition's own flag."""
    return compiled.write(actor, active=active)


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
    """The next ``count`` times ``cron`` fires in ``timezone`` after ``now`` (as Airflow's cron timetable);
    none for a cron that never fires (stored before registration refused those)."""
    return schedules.next_runs(cron, timezone, after=now.astimezone(ZoneInfo(timezone)), count=count)
