"""What the definition routes do besides HTTP, for every kind alike: compile a body in its
organization's context, plan a write (the definition and the stored definitions recompiled with it),
ETags, JSON merge patch, version diffs and the fields of the answers.

No HTTP here: errors are the project's exceptions (``RuleValidationError``, ``StoreError`` …), which
the REST view answers by class (:mod:`rule_engine.api.error_handlers`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from rule_compiler import json_diff, schedules
from rule_compiler.catalog import Catalog
from rule_compiler.dependents import direct_users
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import CONDITION_TEMPLATE, KINDS, NOTIFICATION_TEMPLATE, users_of_kind
from rule_compiler.raw_sources import raw_trigger
from rule_compiler.store import RuleStore, StoredDefinition
from rule_compiler.store.rule_store import MUST_NOT_EXIST
from rule_compiler.validation.template_use import expand_use
from rule_compiler.write_plans import WritePlan, broken_error, compile_for, plan_write
from rule_engine.api.schemas import Change, IssueOut

MAX_NEXT_RUNS = 50


def etag_of(version: int, active: bool, source_hash: str) -> str:
    """A strong ETag for a definition's current state (version, active flag and content)."""
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


def templates_of(store: RuleStore, organization: str, kind: str = CONDITION_TEMPLATE) -> dict[str, Any]:
    """The organization's stored templates of ``kind`` (condition templates by default), parsed, by name."""
    model = KINDS[kind].model
    return {
        row.name: model.model_validate(row.source) for row in store.definitions_of_kind(organization, kind)
    }


def notification_templates_of(store: RuleStore, organization: str) -> dict[str, Any]:
    """The organization's stored notification templates, parsed, by name."""
    return templates_of(store, organization, NOTIFICATION_TEMPLATE)


def expanded_source(store: RuleStore, stored: StoredDefinition) -> Mapping[str, Any]:
    """A stored definition's source, expanded when it was written with ``use`` (its trigger, schedule
    and the rest come from the template); as stored when it cannot be expanded (it then fails where
    it is compiled)."""
    template_kind = KINDS[stored.kind].template if stored.kind in KINDS else None
    if template_kind is None or "use" not in stored.source:
        return stored.source
    try:
        templates = templates_of(store, stored.organization, template_kind)
        return expand_use(stored.source, template_kind, templates).document
    except RuleValidationError:
        return stored.source


def with_organization(
    body: dict[str, Any], organization: str, *, kind: str, name: str | None = None
) -> dict[str, Any]:
    """The body as a ``kind`` of ``organization`` (and ``name``); RuleValidationError when it names others."""
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


def used_by(store: RuleStore, organization: str, kind: str, name: str) -> dict[str, list[str]]:
    """kind → names of the stored definitions that name this one themselves."""
    rows = [row for user in users_of_kind(kind) for row in store.definitions_of_kind(organization, user)]
    return direct_users(rows, (kind, name))


def issues_out(issues: Any) -> list[IssueOut]:
    """Issues as the API shows them."""
    return [IssueOut(**issue.as_dict()) for issue in issues]


def answer(model: type[BaseModel], fields: Mapping[str, Any]) -> Any:
    """``model`` built from the fields of ``fields`` it has (one superset serves every kind's models)."""
    return model(**{name: fields[name] for name in model.model_fields if name in fields})


def stored_fields(stored: StoredDefinition) -> dict[str, Any]:
    """Every field a summary or public model of any kind may show of a stored definition."""
    return {
        "name": stored.name,
        "organization": stored.organization,
        "kind": stored.kind,
        "dag_id": stored.dag_id,
        "active": stored.active,
        "description": str(stored.source.get("description", "")),
        "version": stored.version,
        "etag": etag_of(stored.version, stored.active, stored.source_hash),
        "updated_at": stored.updated_at,
        "definition": stored.source,
        "source_hash": stored.source_hash,
        "spec_hash": stored.spec_hash,
        "compiler_version": stored.compiler_version,
        "updated_by": stored.actor,
        "created_at": stored.created_at,
        **_summary(stored),
    }


def _summary(stored: StoredDefinition) -> dict[str, Any]:
    """The kind's listing fields; the trigger type is the stored one, read from the expanded
    definition (a rule built from a template has no ``trigger`` in its source)."""
    summary = KINDS[stored.kind].summary(stored.source) if stored.kind in KINDS else {}
    if "trigger_type" in summary and stored.trigger_type is not None:
        summary["trigger_type"] = stored.trigger_type
    return summary


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


def diff(before: Any, after: Any) -> list[Change]:
    """Every difference between two JSON values, at JSON paths (``actions[0].values.priority``)."""
    return public_changes(json_diff.diff(before, after))


def public_changes(changes: list[json_diff.JsonChange]) -> list[Change]:
    """JSON-path differences as the REST view answers them."""
    return [Change(path=c.path, op=c.op, before=c.before, after=c.after) for c in changes]


def schedule_of(source: Mapping[str, Any]) -> tuple[str, str] | None:
    """(cron, timezone) of a rule's or workflow's schedule or data trigger, or of a report's schedule;
    None for event and manual triggers."""
    trigger = raw_trigger(source)
    if isinstance(trigger, dict):
        cron = trigger.get("cron") if trigger.get("type") == "schedule" else None
        if trigger.get("type") == "data":
            cron = trigger.get("schedule")
        timezone = trigger.get("timezone")
    else:
        schedule = source.get("schedule")
        schedule = schedule if isinstance(schedule, dict) else {}
        cron, timezone = schedule.get("cron"), schedule.get("timezone")
    if not isinstance(cron, str):
        return None
    return cron, str(timezone or "UTC")


def next_runs(cron: str, timezone: str, count: int, now: dt.datetime) -> list[dt.datetime]:
    """The next ``count`` times ``cron`` fires in ``timezone`` after ``now`` (as Airflow's cron timetable);
    none for a cron that never fires (stored before registration refused those)."""
    return schedules.next_runs(cron, timezone, after=now.astimezone(ZoneInfo(timezone)), count=count)


__all__ = ["MUST_NOT_EXIST", "WritePlan", "broken_error", "compile_for", "plan_write"]
