"""What the template routes do besides HTTP: compile a condition or notification template against its
organization's other templates, find what uses it, and recompile the stored rules that use a changed
template (as ``rule-compiler apply`` does). Pure functions over the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rule_compiler.condition_templates import used_templates
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.conditions import template_uses
from rule_compiler.errors import Issue, NotFoundError, RuleValidationError
from rule_compiler.kinds import CONDITION_TEMPLATE as TEMPLATE_KIND
from rule_compiler.notification_templates import NOTIFICATION_TEMPLATE_KIND, used_notification_templates
from rule_compiler.registration import Compiled, CompiledTemplate, compile_document
from rule_compiler.store import DefinitionWrite, RuleStore, StoredDefinition
from rule_engine.api import rule_ops
from rule_engine.api.schemas_templates import TemplateSummary, UsedBy


@dataclass(frozen=True)
class Dependent:
    """A stored rule using a changed template: recompiled, or the problems it would now have."""

    stored: StoredDefinition
    uses: list[str]
    compiled: Compiled | None = None
    issues: list[Issue] = field(default_factory=list)


def compile_template_for(store: RuleStore, organization: str, data: dict[str, Any]) -> CompiledTemplate:
    """Validate a template of ``organization`` (a condition template against the organization's
    other condition templates, itself in its new form); RuleValidationError lists every problem."""
    templates: dict[str, ConditionTemplateDefinition] = {}
    if data.get("kind") == TEMPLATE_KIND:
        templates = rule_ops.templates_of(store, organization)
        try:
            itself = ConditionTemplateDefinition.model_validate(data)
        except ValidationError:
            pass  # compile_document reports it with paths
        else:
            templates[itself.name] = itself
    compiled = compile_document(data, None, templates=templates)
    if not isinstance(compiled, CompiledTemplate):  # pragma: no cover - with_organization forces the kind
        raise RuleValidationError([Issue("kind", "not a template")])
    return compiled


def _condition_uses(template: ConditionTemplateDefinition) -> set[str]:
    return {use.use for _, use in template_uses(template.condition, "condition")}


def users_of(names: set[str], templates: dict[str, ConditionTemplateDefinition]) -> set[str]:
    """``names`` and every condition template that uses one of them, directly or through others."""
    affected = set(names)
    while True:
        users = {name for name, t in templates.items() if _condition_uses(t) & affected}
        if users <= affected:
            return affected
        affected |= users


def _rules(store: RuleStore, organization: str) -> list[tuple[StoredDefinition, RuleDefinition]]:
    return [
        (row, RuleDefinition.model_validate(row.source))
        for row in store.definitions_of_kind(organization, rule_ops.RULE_KIND)
    ]


def used_by(store: RuleStore, organization: str, kind: str, name: str) -> UsedBy:
    """The stored rules (and condition templates) that use the template directly."""
    uses: Callable[[RuleDefinition], set[str]] = (
        used_templates if kind == TEMPLATE_KIND else used_notification_templates
    )
    rules = sorted(row.name for row, rule in _rules(store, organization) if name in uses(rule))
    templates: list[str] = []
    if kind == TEMPLATE_KIND:
        stored = rule_ops.templates_of(store, organization)
        templates = sorted(
            other for other, t in stored.items() if other != name and name in _condition_uses(t)
        )
    return UsedBy(rules=rules, condition_templates=templates)


def dependents(store: RuleStore, compiled: CompiledTemplate) -> list[Dependent]:
    """The stored rules using the template (directly, or a condition template through other ones),
    each compiled with its new version; none when the template's content did not change."""
    definition = compiled.definition
    organization, name = definition.organization, definition.name
    try:
        if (
            store.get(organization=organization, kind=definition.kind, name=name).spec_hash
            == compiled.spec_hash
        ):
            return []
    except NotFoundError:
        pass
    conditions = rule_ops.templates_of(store, organization)
    notifications = rule_ops.notification_templates_of(store, organization)
    uses: Callable[[RuleDefinition], set[str]]
    if isinstance(definition, ConditionTemplateDefinition):
        conditions[name] = definition
        changed, uses = users_of({name}, conditions), used_templates
    else:
        assert isinstance(definition, NotificationTemplateDefinition)  # noqa: S101 - the other kind
        notifications[name] = definition
        changed, uses = {name}, used_notification_templates
    found = []
    for row, rule in _rules(store, organization):
        names = sorted(uses(rule) & changed)
        if not names:
            continue
        try:
            recompiled = rule_ops.compile_rule_for(
                store, organization, row.source, templates=conditions, notification_templates=notifications
            )
        except RuleValidationError as exc:
            found.append(Dependent(row, names, issues=list(exc.issues)))
        else:
            found.append(Dependent(row, names, recompiled))
    return found


def broken_error(dependents: list[Dependent]) -> tuple[str, list[Issue]]:
    """The 409 answer when a template change would break stored rules: a sentence and every problem,
    at its path in the rule, the message naming the rule."""
    broken = [d for d in dependents if d.compiled is None]
    names = ", ".join(f"'{d.stored.name}'" for d in broken)
    count = len(broken)
    detail = (
        f"this change would make {count} stored rule{'s' if count != 1 else ''} invalid ({names}); "
        "nothing was stored: change those rules first, or the template so that they still fit"
    )
    issues = [
        Issue(
            issue.path,
            f"stored rule '{d.stored.name}' (uses {', '.join(d.uses)}): {issue.message}",
            issue.code,
        )
        for d in broken
        for issue in d.issues
    ]
    return detail, issues


def writes(
    compiled: CompiledTemplate, dependents: list[Dependent], actor: str, expected: tuple[int, bool] | None
) -> list[tuple[tuple[int, bool] | None, DefinitionWrite]]:
    """:meth:`RuleStore.apply_all` writes: the template (checked against ``expected``), then each
    recompiled rule, checked against the version it was compiled from and keeping its active flag."""
    out: list[tuple[tuple[int, bool] | None, DefinitionWrite]] = [
        (expected, rule_ops.apply_args(compiled, actor))
    ]
    for dependent in dependents:
        assert dependent.compiled is not None  # noqa: S101 - broken ones are refused before
        row = dependent.stored
        out.append(
            ((row.version, row.active), rule_ops.apply_args(dependent.compiled, actor, active=row.active))
        )
    return out


def summary_of(stored: StoredDefinition) -> TemplateSummary:
    """A listing entry."""
    kind = TEMPLATE_KIND if stored.kind == TEMPLATE_KIND else NOTIFICATION_TEMPLATE_KIND
    return TemplateSummary(
        name=stored.name,
        organization=stored.organization,
        kind=kind,
        description=str(stored.source.get("description", "")),
        version=stored.version,
        etag=rule_ops.etag_of(stored.version, stored.active, stored.source_hash),
        updated_at=stored.updated_at,
    )


def public_fields(stored: StoredDefinition, users: UsedBy) -> dict[str, Any]:
    """The fields of a template's Public model."""
    return {
        **summary_of(stored).model_dump(),
        "definition": stored.source,
        "source_hash": stored.source_hash,
        "spec_hash": stored.spec_hash,
        "compiler_version": stored.compiler_version,
        "updated_by": stored.actor,
        "created_at": stored.created_at,
        "used_by": users,
    }
