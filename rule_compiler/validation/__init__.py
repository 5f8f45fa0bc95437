"""Validation: a raw document in, a valid definition out, or every problem at once with its JSON path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
from rule_compiler.validation.partial import WHOLE, Parts, salvage
from rule_compiler.validation.refs import StoredNames
from rule_compiler.validation.reports import ReportSources, check_report
from rule_compiler.validation.semantic import check_rule
from rule_compiler.validation.structural import issues_from_pydantic, raw_value_issues
from rule_compiler.validation.templates import check_condition_template
from rule_compiler.validation.triggers import capture_warnings

#: The kinds this release validates and stores (docs/architecture.md, "Definition kinds"); the planned
#: ones are refused with a message saying they are not supported yet.
SUPPORTED_KINDS = ("rule", "report", "condition_template", "notification_template")
PLANNED_KINDS = ("workflow", "rule_template", "workflow_template")

Definition = RuleDefinition | ReportDefinition | ConditionTemplateDefinition | NotificationTemplateDefinition
#: kind → its pydantic model; also what ``rule-compiler schema export`` writes a JSON Schema for.
KIND_MODELS: dict[str, type[Definition]] = {
    "rule": RuleDefinition,
    "report": ReportDefinition,
    "condition_template": ConditionTemplateDefinition,
    "notification_template": NotificationTemplateDefinition,
}

__all__ = [
    "KIND_MODELS",
    "SUPPORTED_KINDS",
    "Definition",
    "Validated",
    "validate_definition",
    "validate_document",
]


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
    stored: StoredNames | None = None,
    source: str | None = None,
) -> Definition:
    """Parse and check ``data``; raise :class:`RuleValidationError` listing every problem.

    ``templates`` (name → condition template of the definition's organization) are what ``use`` nodes
    may name; ``notification_templates`` (name → notification template) what notifications' ``template``
    may name; ``stored`` (kind → names of the organization's stored definitions) what actions may start
    (see :class:`~rule_compiler.validation.refs.CatalogRefs`). Returns the definition as written;
    :func:`validate_document` also gives the expanded rule.
    """
    return validate_document(
        data,
        catalog,
        templates=templates,
        notification_templates=notification_templates,
        stored=stored,
        source=source,
    ).definition


def validate_document(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    stored: StoredNames | None = None,
    source: str | None = None,
) -> Validated:
    """:func:`validate_definition`, returning the definition as written and the expanded rule.

    The raw document is checked first for what no field may hold (NUL characters, numbers that are
    not finite, nesting beyond the loader's limit), each at its JSON path. When pydantic refuses a
    rule or a report, the semantic checks still run on every part that parses (:mod:`.partial`), so
    a bad cron does not hide a dependency cycle: every problem is reported at once, each once.
    """
    if raw := raw_value_issues(data):
        raise RuleValidationError(raw, source=source)
    kind = data.get("kind")
    if kind not in SUPPORTED_KINDS:
        raise RuleValidationError([Issue("kind", _kind_message(kind), "kind")], source=source)
    model = KIND_MODELS[kind]
    context = _Context(catalog, templates or {}, notification_templates or {}, stored)
    try:
        definition = model.model_validate(data)
    except ValidationError as exc:
        structural = issues_from_pydantic(exc, data)
        raise RuleValidationError(
            structural + _beyond_structure(model, data, structural, context), source=source
        ) from None
    if isinstance(definition, ConditionTemplateDefinition):
        issues = check_condition_template(definition, context.templates)
        if issues:
            raise RuleValidationError(issues, source=source)
        return Validated(definition, None)
    if isinstance(definition, NotificationTemplateDefinition):
        if issues := notifications.check_notification_template(definition):
            raise RuleValidationError(issues, source=source)
        return Validated(definition, None)
    issues, validated = _check(definition, context, WHOLE)
    if issues:
        raise RuleValidationError(issues, source=source)
    if validated.rule is None:
        return validated
    warnings = tuple(sorted(capture_warnings(validated.rule, catalog)))
    return replace(validated, warnings=warnings)


@dataclass(frozen=True)
class _Context:
    """What a definition is checked against, besides itself."""

    catalog: Catalog | None
    templates: Mapping[str, ConditionTemplateDefinition]
    notification_templates: NotificationTemplates
    stored: StoredNames | None


def _check(
    definition: RuleDefinition | ReportDefinition, context: _Context, parts: Parts
) -> tuple[list[Issue], Validated]:
    """The semantic problems of a rule or report (``parts``: what of it did not parse) and the result."""
    catalog = context.catalog
    if catalog is not None and catalog.organization != definition.organization:
        message = f"the catalog given is for '{catalog.organization}', not '{definition.organization}'"
        return [Issue("organization", message)], Validated(definition, None)
    if isinstance(definition, ReportDefinition):
        sources, issues = check_report(definition, catalog, parts)
        return issues, Validated(definition, None, report_sources=sources)
    rule, issues, origins = expand_rule(definition, context.templates)
    resolved = notifications.expand_notifications(rule, context.notification_templates)
    issues += resolved.issues
    found = check_rule(resolved.rule, catalog, parts, stored=context.stored)
    issues += notifications.relocate(relocate(found, origins), resolved.origins)
    return issues, Validated(definition, resolved.rule, resolved.refs)


def _beyond_structure(
    model: type[Definition], data: dict[str, Any], structural: list[Issue], context: _Context
) -> list[Issue]:
    """The semantic problems of the parts of a refused document that parse, not already reported.

    Rules and reports only (templates report their structure first); nothing when the organization,
    which every catalog check needs, did not parse.
    """
    if model is not RuleDefinition and model is not ReportDefinition:
        return []
    definition, parts = salvage(model, data)
    if not isinstance(definition, RuleDefinition | ReportDefinition) or not parts.parsed("organization"):
        return []
    return parts.keep(_check(definition, context, parts)[0], structural)


def _kind_message(kind: Any) -> str:
    supported = ", ".join(SUPPORTED_KINDS)
    if kind in PLANNED_KINDS:
        return f"kind '{kind}' is not supported by this release yet; supported: {supported}"
    if kind is None:
        return f"'kind' is required; use one of: {supported}"
    return f"unknown kind '{kind}'; use one of: {supported}"
