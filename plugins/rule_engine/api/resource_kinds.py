"""The REST view's table of definition kinds: one row a resource, data only.

Each row names a kind of :data:`rule_compiler.kinds.KINDS` and says how the REST view serves it: its
path, the name its operations carry, its request and response models, and the list filters it
takes. :func:`rule_engine.api.resource_versions.versioned_router` builds every route of a row from it
(list, create, validate, get, replace, patch, delete, spec, versions, diff, restore); what differs
between kinds beyond that (has a DAG, what uses it) comes from the kind's row in ``rule_compiler``.
Adding a kind is a row here plus its models (``docs/architecture.md``, "Adding a kind").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from rule_compiler.kinds import (
    CONDITION_TEMPLATE,
    KINDS,
    NOTIFICATION_TEMPLATE,
    REPORT,
    RULE,
    RULE_TEMPLATE,
    WORKFLOW,
    WORKFLOW_TEMPLATE,
    Kind,
)
from rule_engine.api.schemas import (
    RuleCreate,
    RulePublic,
    RuleSummary,
    RuleUpdate,
    RuleWritten,
    ValidationResult,
)
from rule_engine.api.schemas_definition_templates import (
    DefinitionTemplateSummary,
    RuleTemplateCreate,
    RuleTemplatePublic,
    RuleTemplateUpdate,
    RuleTemplateWritten,
    WorkflowTemplateCreate,
    WorkflowTemplatePublic,
    WorkflowTemplateUpdate,
    WorkflowTemplateWritten,
)
from rule_engine.api.schemas_reports import (
    ReportCreate,
    ReportPublic,
    ReportSummary,
    ReportUpdate,
    ReportWritten,
)
from rule_engine.api.schemas_templates import (
    ConditionTemplateCreate,
    ConditionTemplatePublic,
    ConditionTemplateUpdate,
    ConditionTemplateWritten,
    NotificationTemplateCreate,
    NotificationTemplatePublic,
    NotificationTemplateUpdate,
    NotificationTemplateWritten,
    TemplateSummary,
    TemplateValidationResult,
    patch_schema,
)
from rule_engine.api.schemas_workflows import (
    WorkflowCreate,
    WorkflowPublic,
    WorkflowSummary,
    WorkflowUpdate,
    WorkflowWritten,
)

#: The list filters a row may take, beyond the name prefix every listing has.
FILTERS = ("active", "trigger_type")


@dataclass(frozen=True)
class ApiKind:
    """How the REST view serves one kind: ``path`` (``/rules``), ``slug`` (operation names:
    ``get_rule``, ``list_rules``), the models of its bodies and answers, and its list ``filters``."""

    kind: str
    path: str
    slug: str
    create: type[BaseModel]
    update: type[BaseModel]
    summary: type[BaseModel]
    public: type[BaseModel]
    written: type[BaseModel]
    validation: type[BaseModel]
    filters: tuple[str, ...] = ()

    @property
    def definition_kind(self) -> Kind:
        """The kind's row of the ``rule_compiler`` kinds table."""
        return KINDS[self.kind]

    @property
    def noun(self) -> str:
        return self.definition_kind.noun

    @property
    def tag(self) -> str:
        """The OpenAPI tag (and operation id prefix): the path without its slash."""
        return self.path.removeprefix("/")

    @property
    def patch_schema(self) -> dict[str, Any]:
        return patch_schema(self.noun)


API_KINDS: tuple[ApiKind, ...] = (
    ApiKind(
        RULE,
        "/rules",
        "rule",
        RuleCreate,
        RuleUpdate,
        RuleSummary,
        RulePublic,
        RuleWritten,
        ValidationResult,
        filters=("active", "trigger_type"),
    ),
    ApiKind(
        CONDITION_TEMPLATE,
        "/condition-templates",
        "condition_template",
        ConditionTemplateCreate,
        ConditionTemplateUpdate,
        TemplateSummary,
        ConditionTemplatePublic,
        ConditionTemplateWritten,
        TemplateValidationResult,
    ),
    ApiKind(
        NOTIFICATION_TEMPLATE,
        "/notification-templates",
        "notification_template",
        NotificationTemplateCreate,
        NotificationTemplateUpdate,
        TemplateSummary,
        NotificationTemplatePublic,
        NotificationTemplateWritten,
        TemplateValidationResult,
    ),
    ApiKind(
        REPORT,
        "/reports",
        "report",
        ReportCreate,
        ReportUpdate,
        ReportSummary,
        ReportPublic,
        ReportWritten,
        ValidationResult,
        filters=("active",),
    ),
    ApiKind(
        WORKFLOW,
        "/workflows",
        "workflow",
        WorkflowCreate,
        WorkflowUpdate,
        WorkflowSummary,
        WorkflowPublic,
        WorkflowWritten,
        ValidationResult,
        filters=("active", "trigger_type"),
    ),
    ApiKind(
        RULE_TEMPLATE,
        "/rule-templates",
        "rule_template",
        RuleTemplateCreate,
        RuleTemplateUpdate,
        DefinitionTemplateSummary,
        RuleTemplatePublic,
        RuleTemplateWritten,
        TemplateValidationResult,
    ),
    ApiKind(
        WORKFLOW_TEMPLATE,
        "/workflow-templates",
        "workflow_template",
        WorkflowTemplateCreate,
        WorkflowTemplateUpdate,
        DefinitionTemplateSummary,
        WorkflowTemplatePublic,
        WorkflowTemplateWritten,
        TemplateValidationResult,
    ),
)
API_KIND_OF: dict[str, ApiKind] = {row.kind: row for row in API_KINDS}
