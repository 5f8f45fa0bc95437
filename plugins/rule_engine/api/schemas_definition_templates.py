"""Request and response models of ``/rule-templates`` and ``/workflow-templates``.

Bodies are the definition format of ``docs/definitions.md`` (``kind: rule_template`` /
``kind: workflow_template``), checked by the CLI's validation; the models document them. A rule using
a template is written to ``/rules`` (``use`` and ``with``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rule_compiler.definitions.common import Slug
from rule_compiler.definitions.definition_template import RuleTemplateDefinition, WorkflowTemplateDefinition
from rule_engine.api.schemas import OutModel
from rule_engine.api.schemas_templates import RecompiledRule, UsedBy

DefinitionTemplateKindName = Literal["rule_template", "workflow_template"]


class RuleTemplateCreate(RuleTemplateDefinition):
    """A rule template. ``organization`` may be left out: it is always the caller's."""

    kind: Literal["rule_template"] = "rule_template"
    organization: Slug | None = None  # type: ignore[assignment]


class RuleTemplateUpdate(RuleTemplateCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


class WorkflowTemplateCreate(WorkflowTemplateDefinition):
    """A workflow template. ``organization`` may be left out: it is always the caller's."""

    kind: Literal["workflow_template"] = "workflow_template"
    organization: Slug | None = None  # type: ignore[assignment]


class WorkflowTemplateUpdate(WorkflowTemplateCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


class DefinitionTemplateSummary(OutModel):
    """A rule or workflow template in a listing."""

    name: str
    organization: str
    kind: DefinitionTemplateKindName
    description: str
    version: int
    etag: str
    updated_at: dt.datetime


class _DefinitionTemplatePublic(DefinitionTemplateSummary):
    definition: dict[str, Any] = Field(description="the definition as stored (docs/definitions.md)")
    source_hash: str
    spec_hash: str = Field(description="the template's content hash")
    compiler_version: str
    updated_by: str
    created_at: dt.datetime
    used_by: UsedBy


class RuleTemplatePublic(_DefinitionTemplatePublic):
    """A rule template: its definition as stored, hashes, version and the rules using it."""

    kind: Literal["rule_template"] = "rule_template"


class WorkflowTemplatePublic(_DefinitionTemplatePublic):
    """A workflow template: its definition as stored, hashes, version and users."""

    kind: Literal["workflow_template"] = "workflow_template"


class RuleTemplateWritten(RuleTemplatePublic):
    """A rule template just created or changed, and the rules recompiled with it."""

    recompiled: list[RecompiledRule] = Field(
        default_factory=list, description="the rules stored again in the same transaction"
    )


class WorkflowTemplateWritten(WorkflowTemplatePublic):
    """A workflow template just created or changed, and the definitions recompiled with it."""

    recompiled: list[RecompiledRule] = Field(
        default_factory=list, description="the definitions stored again in the same transaction"
    )


class TemplateExpandRequest(BaseModel):
    """The parameters to fill a template's body with (``with``, as a definition using it writes them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    with_: dict[str, Any] = Field(default_factory=dict, alias="with", max_length=50)


class TemplateExpanded(OutModel):
    """A template's body with the parameters in: the fields of the rule (workflow) it stands for, to start
    a new definition from. Nothing was stored; the body is not checked against the catalog here (validate
    the definition for that)."""

    template: str
    kind: Literal["rule", "workflow"]
    definition: dict[str, Any]
