"""``kind: rule_template`` and ``kind: workflow_template``, and a document built from one (``use``/``with``).

A template has typed ``parameters`` (the condition templates' :class:`ParameterSpec`) and a ``body``:
a rule's (or workflow's) fields without ``kind``, ``name`` and ``organization``, where a ``{param: NAME}``
value stands for the parameter's value. A ``kind: rule`` (or ``workflow``) document with ``use`` and
``with`` is a :class:`TemplateUse`: expanded at validation (:mod:`rule_compiler.definition_templates`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from rule_compiler.definitions.common import Identifier, Slug, StrictModel, Title, is_none
from rule_compiler.definitions.condition_template import MAX_PARAMETERS, ParameterSpec
from rule_compiler.definitions.rule import SCHEMA_VERSION


class _DefinitionTemplate(StrictModel):
    """Fields every definition template has."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Slug
    organization: Slug
    title: Title | None = Field(default=None, exclude_if=is_none, description="a human-readable name")
    description: str = Field(default="", max_length=4_000)
    parameters: dict[Identifier, ParameterSpec] = Field(default_factory=dict, max_length=MAX_PARAMETERS)
    body: dict[str, JsonValue] = Field(
        description="the definition's fields but kind, name and organization; {param: NAME} values stand "
        "for parameters"
    )


class RuleTemplateDefinition(_DefinitionTemplate):
    """A rule with parameters: ``kind: rule`` documents ``use`` it."""

    kind: Literal["rule_template"]


class WorkflowTemplateDefinition(_DefinitionTemplate):
    """A workflow with parameters: ``kind: workflow`` documents ``use`` it."""

    kind: Literal["workflow_template"]


class TemplateUse(StrictModel):
    """A rule or workflow built from a template: its own name and organization, the template and the
    parameters' values; ``title``, ``description``, ``owner``, ``active`` and ``tags`` override the body's."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: str
    name: Slug
    organization: Slug
    use: Slug
    with_: dict[Identifier, JsonValue] = Field(default_factory=dict, alias="with", max_length=MAX_PARAMETERS)
    title: Title | None = Field(default=None, exclude_if=is_none)
    description: str | None = Field(default=None, max_length=4_000, exclude_if=is_none)
    owner: str | None = Field(default=None, max_length=200, exclude_if=is_none)
    active: bool | None = Field(default=None, exclude_if=is_none)
    tags: list[Slug] | None = Field(default=None, max_length=20, exclude_if=is_none)


#: The fields of a built document that are its own, not its template's: problems there stay at their path.
OWN_FIELDS = frozenset({"schema_version", "kind", "name", "organization", "title", "description", "owner",
                        "active", "tags"})  # fmt: skip
#: What a template's body may not hold: the built document's identity and another template use.
NOT_IN_BODY = ("schema_version", "kind", "name", "organization", "use", "with")
