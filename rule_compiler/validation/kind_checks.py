"""The meaning checks of each definition kind, one function per kind, as the kinds table names them.

Each takes the parsed definition, what it is checked against (:class:`CheckContext`) and which of its
parts parsed (:class:`~rule_compiler.validation.partial.Parts`: all of them, unless pydantic refused
some), and returns the problems found with the :class:`Validated` result.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from rule_compiler import notification_templates as notifications
from rule_compiler.catalog import Catalog
from rule_compiler.condition_templates import expand_rule, relocate
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.definition_template import RuleTemplateDefinition, WorkflowTemplateDefinition
from rule_compiler.definitions.report import ReportDefinition
from rule_compiler.definitions.workflow import WorkflowDefinition
from rule_compiler.errors import Issue
from rule_compiler.notification_templates import NotificationTemplates, TemplateRef
from rule_compiler.validation.partial import Parts
from rule_compiler.validation.refs import StoredNames
from rule_compiler.validation.report_checks import ReportSources, check_report
from rule_compiler.validation.semantic import check_rule
from rule_compiler.validation.template_use import Templates, check_definition_template
from rule_compiler.validation.templates import check_condition_template
from rule_compiler.validation.trigger_checks import capture_warnings

Definition = (
    RuleDefinition
    | ReportDefinition
    | ConditionTemplateDefinition
    | NotificationTemplateDefinition
    | WorkflowDefinition
    | RuleTemplateDefinition
    | WorkflowTemplateDefinition
)


@dataclass(frozen=True)
class CheckContext:
    """What a definition is checked against, besides itself.

    ``templates`` / ``notification_templates``: the organization's condition / notification templates
    by name; ``stored``: the names of its stored definitions by kind (what actions may start);
    ``definition_templates``: template kind → name → rule or workflow template (what ``use`` may name);
    ``members``: the user names of the organization's members (who an approval may assign), None when
    they were not looked up (checked offline: a warning says registration checks them).
    """

    catalog: Catalog | None
    templates: Mapping[str, ConditionTemplateDefinition] = field(default_factory=dict)
    notification_templates: NotificationTemplates = field(default_factory=dict)
    stored: StoredNames | None = None
    definition_templates: Mapping[str, Templates] = field(default_factory=dict)
    members: Collection[str] | None = None


@dataclass(frozen=True)
class Validated:
    """A valid definition as written (stored as the source) and, for a rule, the rule to compile.

    ``rule`` has every ``{use: template}`` expanded and every notification ``template`` resolved; it is
    ``None`` for other kinds. ``notification_refs``: action id (a workflow's node id) → the notification
    template it uses. ``warnings``: problems that do not block it (an event rule whose table has no
    change capture). ``report_sources``: a report's SQL and template texts, read from their files.
    ``workflow``: for a workflow, the workflow to compile, expanded like ``rule``. ``written``: the
    document as written when it was built from a rule or workflow template (stored as its source).
    """

    definition: Definition
    rule: RuleDefinition | None = None
    notification_refs: Mapping[str, TemplateRef] = field(default_factory=dict)
    warnings: tuple[Issue, ...] = ()
    report_sources: ReportSources | None = None
    workflow: WorkflowDefinition | None = None
    written: dict[str, Any] | None = None


def organization_issues(organization: str, catalog: Catalog | None) -> list[Issue]:
    """A catalog of another organization than the definition's: nothing else can be checked."""
    if catalog is not None and catalog.organization != organization:
        message = f"the catalog given is for '{catalog.organization}', not '{organization}'"
        return [Issue("organization", message)]
    return []


def check_rule_kind(definition: Any, context: CheckContext, parts: Parts) -> tuple[list[Issue], Validated]:
    """A rule: templates expanded, notification templates resolved, then every meaning check."""
    assert isinstance(definition, RuleDefinition)  # noqa: S101 - the kinds table routes rules here
    if issues := organization_issues(definition.organization, context.catalog):
        return issues, Validated(definition)
    rule, issues, origins = expand_rule(definition, context.templates)
    resolved = notifications.expand_notifications(rule, context.notification_templates)
    issues += resolved.issues
    found = check_rule(resolved.rule, context.catalog, parts, stored=context.stored)
    issues += notifications.relocate(relocate(found, origins), resolved.origins)
    warnings = () if issues else tuple(sorted(capture_warnings(resolved.rule, context.catalog)))
    return issues, Validated(definition, resolved.rule, resolved.refs, warnings)


def check_report_kind(definition: Any, context: CheckContext, parts: Parts) -> tuple[list[Issue], Validated]:
    """A report: connections, read-only SQL, columns, recipients and templates."""
    assert isinstance(definition, ReportDefinition)  # noqa: S101 - the kinds table routes reports here
    if issues := organization_issues(definition.organization, context.catalog):
        return issues, Validated(definition)
    sources, issues = check_report(definition, context.catalog, parts)
    return issues, Validated(definition, report_sources=sources)


def check_condition_template_kind(
    definition: Any, context: CheckContext, parts: Parts
) -> tuple[list[Issue], Validated]:
    """A condition template: its parameters, their uses, and the templates it uses."""
    assert isinstance(definition, ConditionTemplateDefinition)  # noqa: S101 - routed by the kinds table
    templates = {**context.templates, definition.name: definition}  # itself in its new form
    return check_condition_template(definition, templates), Validated(definition)


def check_notification_template_kind(
    definition: Any, context: CheckContext, parts: Parts
) -> tuple[list[Issue], Validated]:
    """A notification template: every text renders safely in our sandbox."""
    assert isinstance(definition, NotificationTemplateDefinition)  # noqa: S101 - routed by the kinds table
    return notifications.check_notification_template(definition), Validated(definition)


def check_rule_template_kind(
    definition: Any, context: CheckContext, parts: Parts
) -> tuple[list[Issue], Validated]:
    """A rule template: its parameters, their placeholders, and its body's structure as a rule's."""
    assert isinstance(definition, RuleTemplateDefinition)  # noqa: S101 - routed by the kinds table
    return check_definition_template(definition, RuleDefinition), Validated(definition)


def check_workflow_template_kind(
    definition: Any, context: CheckContext, parts: Parts
) -> tuple[list[Issue], Validated]:
    """A workflow template: its parameters, their placeholders, and its body's structure as a workflow's."""
    assert isinstance(definition, WorkflowTemplateDefinition)  # noqa: S101 - routed by the kinds table
    return check_definition_template(definition, WorkflowDefinition), Validated(definition)
