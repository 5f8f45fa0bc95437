"""Validation: a raw document in, a valid definition out, or every problem at once with its JSON path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rule_compiler import notification_templates as notifications
from rule_compiler.catalog import Catalog
from rule_compiler.condition_templates import expand_rule, relocate
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.report import ReportDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.notification_templates import NotificationTemplates, TemplateRef
from rule_compiler.validation.reports import ReportSources, check_report
from rule_compiler.validation.semantic import check_rule
from rule_compiler.validation.structural import issues_from_pydantic
from rule_compiler.validation.templates import check_condition_template
from rule_compiler.validation.triggers import capture_warnings

#: The kinds this release compiles; the others of DESIGN §4 arrive with their issues.
SUPPORTED_KINDS = ("rule", "report", "condition_template", "notification_template")
PLANNED_KINDS = ("workflow", "rule_template", "workflow_template")

Definition = RuleDefinition | ReportDefinition | ConditionTemplateDefinition | NotificationTemplateDefinition
_MODELS: dict[str, type[Definition]] = {
    "rule": RuleDefinition,
    "report": ReportDefinition,
    "condition_template": ConditionTemplateDefinition,
    "notification_template": NotificationTemplateDefinition,
}

__all__ = ["SUPPORTED_KINDS", "Definition", "Validated", "validate_definition", "validate_document"]


@dataclass(frozen=True)
class Validated:
    """A valid definition as written (stored as the source) and, for a rule, the rule to compile.

    ``rule`` has every ``{use: template}`` expanded and every notification ``template`` resolved; it is
    ``None`` for a template. ``notification_refs``: action id → the notification template it uses.
    ``warnings``: problems that do not block it (an event rule whose table has no change capture).
    """

    definition: Definition
    rule: RuleDefinition | None
    notification_refs: Mapping[str, TemplateRef] = field(default_factory=dict)
    warnings: tuple[Issue, ...] = ()
    report_sources: ReportSources | None = None


def validate_definition(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    source: str | None = None,
) -> Definition:
    """Parse and check ``data``; raise :class:`RuleValidationError` listing every problem.

    ``templates`` (name → condition template of the definition's organization) are what ``use`` nodes
    may name; ``notification_templates`` (name → notification template) what notifications' ``template``
    may name. Returns the definition as written; :func:`validate_document` also gives the expanded rule.
    """
    return validate_document(
        data, catalog, templates=templates, notification_templates=notification_templates, source=source
    ).definition


def validate_document(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    source: str | None = None,
) -> Validated:
    """:func:`validate_definition`, returning the definition as written and the expanded rule."""
    kind = data.get("kind")
    if kind not in SUPPORTED_KINDS:
        raise RuleValidationError([Issue("kind", _kind_message(kind), "kind")], source=source)
    model = _MODELS[kind]
    try:
        definition = model.model_validate(data)
    except ValidationError as exc:
        raise RuleValidationError(issues_from_pydantic(exc, data), source=source) from None
    templates = templates or {}
    if isinstance(definition, ConditionTemplateDefinition):
        issues = check_condition_template(definition, templates)
        if issues:
            raise RuleValidationError(issues, source=source)
        return Validated(definition, None)
    if isinstance(definition, NotificationTemplateDefinition):
        if issues := notifications.check_notification_template(definition):
            raise RuleValidationError(issues, source=source)
        return Validated(definition, None)
    if catalog is not None and catalog.organization != definition.organization:
        raise RuleValidationError(
            [
                Issue(
                    "organization",
                    f"the catalog given is for '{catalog.organization}', not '{definition.organization}'",
                )
            ],
            source=source,
        )
    if isinstance(definition, ReportDefinition):
        sources, issues = check_report(definition, catalog)
        if issues:
            raise RuleValidationError(issues, source=source)
        return Validated(definition, None, report_sources=sources)
    rule, issues, origins = expand_rule(definition, templates)
    resolved = notifications.expand_notifications(rule, notification_templates or {})
    issues += resolved.issues
    issues += notifications.relocate(relocate(check_rule(resolved.rule, catalog), origins), resolved.origins)
    if issues:
        raise RuleValidationError(issues, source=source)
    warnings = tuple(sorted(capture_warnings(resolved.rule, catalog)))
    return Validated(definition, resolved.rule, resolved.refs, warnings)


def _kind_message(kind: Any) -> str:
    supported = ", ".join(SUPPORTED_KINDS)
    if kind in PLANNED_KINDS:
        return f"kind '{kind}' is not supported by this release yet; supported: {supported}"
    if kind is None:
        return f"'kind' is required; use one of: {supported}"
    return f"unknown kind '{kind}'; use one of: {supported}"
