"""Validation: a raw document in, a valid definition out, or every problem at once with its JSON path."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rule_compiler.catalog import Catalog
from rule_compiler.definitions import RuleDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.validation.semantic import check_rule
from rule_compiler.validation.structural import issues_from_pydantic

#: The kinds this release compiles; the others of DESIGN §4 arrive with their issues.
SUPPORTED_KINDS = ("rule",)
PLANNED_KINDS = ("workflow", "report", "notification_template", "condition_template", "rule_template",
                 "workflow_template")  # fmt: skip

__all__ = ["SUPPORTED_KINDS", "validate_definition"]


def validate_definition(
    data: dict[str, Any], catalog: Catalog | None, *, source: str | None = None
) -> RuleDefinition:
    """Parse and check ``data``; raise :class:`RuleValidationError` listing every problem."""
    kind = data.get("kind")
    if kind not in SUPPORTED_KINDS:
        if kind in PLANNED_KINDS:
            message = (
                f"kind '{kind}' is not supported by this release yet; supported: {', '.join(SUPPORTED_KINDS)}"
            )
        elif kind is None:
            message = f"'kind' is required; use one of: {', '.join(SUPPORTED_KINDS)}"
        else:
            message = f"unknown kind '{kind}'; use one of: {', '.join(SUPPORTED_KINDS)}"
        raise RuleValidationError([Issue("kind", message, "kind")], source=source)
    try:
        rule = RuleDefinition.model_validate(data)
    except ValidationError as exc:
        raise RuleValidationError(issues_from_pydantic(exc, data), source=source) from None
    if catalog is not None and catalog.organization != rule.organization:
        raise RuleValidationError(
            [
                Issue(
                    "organization",
                    f"the catalog given is for '{catalog.organization}', not '{rule.organization}'",
                )
            ],
            source=source,
        )
    issues = check_rule(rule, catalog)
    if issues:
        raise RuleValidationError(issues, source=source)
    return rule
