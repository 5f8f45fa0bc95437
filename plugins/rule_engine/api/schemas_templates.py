"""Request and response models of ``/condition-templates`` and ``/notification-templates``.

Bodies are the definition format of ``docs/definitions.md`` (``kind: condition_template`` /
``kind: notification_template``), checked by the CLI's validation; the models document them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from rule_compiler.definitions import ConditionTemplateDefinition, NotificationTemplateDefinition
from rule_compiler.definitions.common import Slug
from rule_engine.api.schemas import IssueOut, OutModel

TemplateKindName = Literal["condition_template", "notification_template"]


def patch_schema(noun: str) -> dict[str, Any]:
    """The documented body of a PATCH (a JSON merge patch of the definition)."""
    return {
        "type": "object",
        "description": f"A JSON merge patch (RFC 7396) of the {noun} definition: null removes a key.",
        "additionalProperties": True,
    }


# -- request bodies ---------------------------------------------------------------------------------


class ConditionTemplateCreate(ConditionTemplateDefinition):
    """A condition template. ``organization`` may be left out: it is always the caller's."""

    kind: Literal["condition_template"] = "condition_template"
    organization: Slug | None = None  # type: ignore[assignment]


class ConditionTemplateUpdate(ConditionTemplateCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


class NotificationTemplateCreate(NotificationTemplateDefinition):
    """A notification template. ``organization`` may be left out: it is always the caller's."""

    kind: Literal["notification_template"] = "notification_template"
    organization: Slug | None = None  # type: ignore[assignment]


class NotificationTemplateUpdate(NotificationTemplateCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


# -- responses --------------------------------------------------------------------------------------


class TemplateSummary(OutModel):
    """A template in a listing."""

    name: str
    organization: str
    kind: TemplateKindName
    description: str
    version: int
    etag: str
    updated_at: dt.datetime


class UsedBy(OutModel):
    """What uses a template directly (a template in use cannot be deleted)."""

    rules: list[str]
    condition_templates: list[str] = Field(
        default_factory=list, description="condition templates whose condition has `use: <this one>`"
    )
    workflows: list[str] = Field(default_factory=list, description="workflows that use it")
    rule_templates: list[str] = Field(default_factory=list, description="rule templates whose body uses it")
    workflow_templates: list[str] = Field(
        default_factory=list, description="workflow templates whose body uses it"
    )


class _TemplatePublic(TemplateSummary):
    definition: dict[str, Any] = Field(description="the definition as stored (docs/definitions.md)")
    source_hash: str
    spec_hash: str = Field(description="the template's content hash (what compiled rules record)")
    compiler_version: str
    updated_by: str
    created_at: dt.datetime
    used_by: UsedBy


class ConditionTemplatePublic(_TemplatePublic):
    """A condition template: its definition as stored, hashes, version and users."""

    kind: Literal["condition_template"] = "condition_template"


class NotificationTemplatePublic(_TemplatePublic):
    """A notification template: its definition as stored, hashes, version and users."""

    kind: Literal["notification_template"] = "notification_template"


class RecompiledRule(OutModel):
    """A stored rule compiled again because a template it uses changed."""

    name: str
    dag_id: str
    version: int
    spec_hash: str
    uses: list[str] = Field(description="the changed templates it uses (directly)")


class _Written(BaseModel):
    recompiled: list[RecompiledRule] = Field(
        default_factory=list,
        description="the rules stored again in the same transaction (their spec changed with the template)",
    )


class ConditionTemplateWritten(ConditionTemplatePublic, _Written):
    """A condition template just created or changed, and the rules recompiled with it."""


class NotificationTemplateWritten(NotificationTemplatePublic, _Written):
    """A notification template just created or changed, and the rules recompiled with it."""


class BrokenRule(OutModel):
    """A stored rule the template change would make invalid, with its problems (paths in the rule)."""

    name: str
    uses: list[str]
    errors: list[IssueOut]


class TemplateValidationResult(OutModel):
    """A dry run: whether the template is valid and can be stored, every problem, and what it touches.

    ``valid`` is false when the template has ``errors`` or when a stored rule using it would become
    invalid (``broken_rules``; a write would then answer 409).
    """

    valid: bool
    errors: list[IssueOut]
    spec_hash: str | None = None
    recompiles: list[str] = Field(
        default_factory=list, description="stored rules that would be compiled again with it"
    )
    broken_rules: list[BrokenRule] = Field(default_factory=list)
