"""``kind: condition_template``: a reusable condition with typed parameters, used by ``{use: name}``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from rule_compiler.definitions.common import Identifier, Slug, StrictModel, Title, is_none
from rule_compiler.definitions.conditions import ConditionNode

ParameterType = Literal["string", "number", "integer", "boolean", "list", "duration"]
PARAMETER_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "list", "duration")
MAX_PARAMETERS = 50


class ParameterSpec(StrictModel):
    """One parameter: its type and, when it is optional, its default (no default: required)."""

    type: ParameterType
    default: JsonValue | None = None
    description: str = Field(default="", max_length=1_000)


class ConditionTemplateDefinition(StrictModel):
    """A condition template as its author wrote it; ``{param: name}`` values stand for parameters."""

    schema_version: Literal[1] = 1
    kind: Literal["condition_template"]
    name: Slug
    organization: Slug
    title: Title | None = Field(
        default=None, exclude_if=is_none, description="a human-readable name, stored with the template"
    )
    description: str = Field(default="", max_length=4_000)
    parameters: dict[Identifier, ParameterSpec] = Field(default_factory=dict, max_length=MAX_PARAMETERS)
    condition: ConditionNode
