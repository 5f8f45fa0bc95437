"""Validation: a raw document in, a valid definition out, or every problem at once with its JSON path.

The document's ``kind`` picks its row of the kinds table (:mod:`rule_compiler.kinds`): the model it
is parsed with and the meaning checks it gets.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import ConditionTemplateDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.kinds import Kind, kind_named
from rule_compiler.notification_templates import NotificationTemplates
from rule_compiler.validation.kind_checks import CheckContext, Definition, Validated
from rule_compiler.validation.partial import WHOLE, salvage
from rule_compiler.validation.refs import StoredNames
from rule_compiler.validation.structural import issues_from_pydantic, raw_value_issues
from rule_compiler.validation.template_use import Templates, expand_use


def validate_definition(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    stored: StoredNames | None = None,
    definition_templates: Mapping[str, Templates] | None = None,
    source: str | None = None,
) -> Definition:
    """Parse and check ``data``; raise :class:`RuleValidationError` listing every problem.

    ``templates`` (name → condition template of the definition's organization) are what ``use`` nodes
    may name; ``notification_templates`` (name → notification template) what notifications' ``template``
    may name; ``stored`` (kind → names of the organization's stored definitions) what actions may start
    (see :class:`~rule_compiler.validation.refs.CatalogRefs`). Returns the definition as written;
    :func:`validate_document` also gives the expanded rule.
    """
    context = CheckContext(
        catalog, templates or {}, notification_templates or {}, stored, definition_templates or {}
    )
    return check_document(data, context, source=source).definition


def validate_document(
    data: dict[str, Any],
    catalog: Catalog | None,
    *,
    templates: Mapping[str, ConditionTemplateDefinition] | None = None,
    notification_templates: NotificationTemplates | None = None,
    stored: StoredNames | None = None,
    definition_templates: Mapping[str, Templates] | None = None,
    members: Collection[str] | None = None,
    source: str | None = None,
) -> Validated:
    """:func:`validate_definition`, returning the definition as written and the expanded rule;
    ``members``: the organization's user names (what approvals may assign; None: not checked)."""
    context = CheckContext(
        catalog, templates or {}, notification_templates or {}, stored, definition_templates or {}, members
    )
    return check_document(data, context, source=source)


def check_document(data: dict[str, Any], context: CheckContext, *, source: str | None = None) -> Validated:
    """Validate ``data`` against ``context``; RuleValidationError with every problem.

    The raw document is checked first for what no field may hold (NUL characters, numbers that are
    not finite, nesting beyond the loader's limit), each at its JSON path. When pydantic refuses a
    kind whose row salvages (rules, reports), the meaning checks still run on every part that parses
    (:mod:`.partial`), so a bad cron does not hide a dependency cycle: every problem is reported at
    once, each once. A document with ``use`` of a kind whose row names a ``template`` kind is
    expanded first (:mod:`.template_use`).
    """
    if raw := raw_value_issues(data):
        raise RuleValidationError(raw, source=source)
    try:
        kind = kind_named(data.get("kind"))
    except RuleValidationError as exc:
        raise RuleValidationError(exc.issues, source=source) from None
    if kind.template is not None and "use" in data:
        return _check_template_use(kind, kind.template, data, context, source)
    return _check_kind(kind, data, context, source)


def _check_template_use(
    kind: Kind, template_kind: str, data: dict[str, Any], context: CheckContext, source: str | None
) -> Validated:
    """A document built from a template (the row's ``template`` kind): expanded, then checked like a
    hand-written one, the problems inside the template's body reported at ``use``."""
    try:
        use = expand_use(data, template_kind, context.definition_templates.get(template_kind, {}))
    except RuleValidationError as exc:
        raise RuleValidationError(exc.issues, source=source) from None
    try:
        validated = _check_kind(kind, use.document, context, source)
    except RuleValidationError as exc:
        raise RuleValidationError(use.relocate(list(exc.issues)), source=source) from None
    warnings = tuple(use.relocate(list(validated.warnings)))
    return replace(validated, written=use.written, warnings=warnings)


def _check_kind(kind: Kind, data: dict[str, Any], context: CheckContext, source: str | None) -> Validated:
    try:
        definition = kind.model.model_validate(data)
    except ValidationError as exc:
        structural = issues_from_pydantic(exc, data)
        raise RuleValidationError(
            structural + _beyond_structure(kind, data, structural, context), source=source
        ) from None
    issues, validated = kind.check(definition, context, WHOLE)
    if issues:
        raise RuleValidationError(issues, source=source)
    return validated


def _beyond_structure(
    kind: Kind, data: dict[str, Any], structural: list[Issue], context: CheckContext
) -> list[Issue]:
    """The meaning problems of the parts of a refused document that parse, not already reported.

    Kinds that salvage only; nothing when the organization, which every catalog check needs, did
    not parse.
    """
    if not kind.salvage:
        return []
    definition, parts = salvage(kind.model, data)
    if not isinstance(definition, kind.model) or not parts.parsed("organization"):
        return []
    return parts.keep(kind.check(definition, context, parts)[0], structural)
