"""Conditions: leaves (``field`` ``operator`` ``value``) and the groups ``all``, ``any`` and ``not``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Discriminator, Field, JsonValue, Tag, WithJsonSchema
from pydantic_core import PydanticCustomError

from rule_compiler.definitions.common import FieldPath, Identifier, Slug, StrictModel
from rule_compiler.errors import CompileError

#: Every operator of the v1 language (docs/definitions.md). Semantics live in ``rule_compiler.conditions``.
OPERATOR_NAMES: tuple[str, ...] = (
    "equals", "not_equals", "gt", "gte", "lt", "lte", "between", "in", "not_in",
    "contains", "not_contains", "icontains", "startswith", "endswith", "matches",
    "is_null", "is_not_null", "is_empty", "is_not_empty", "contains_any", "contains_all",
    "older_than", "newer_than", "changed", "changed_to", "changed_from",
)  # fmt: skip

#: How deep groups may nest (a rule is data a person reads; deeper is a mistake or an attack).
MAX_CONDITION_DEPTH = 12


def _check_operator(value: str) -> str:
    if value not in OPERATOR_NAMES:
        raise PydanticCustomError(
            "unknown_operator",
            "unknown operator '{value}'; use one of: {known}",
            {"value": value, "known": ", ".join(OPERATOR_NAMES)},
        )
    return value


OperatorName = Annotated[
    str, AfterValidator(_check_operator), WithJsonSchema({"type": "string", "enum": list(OPERATOR_NAMES)})
]
Scalar = str | int | float | bool


class FieldRef(StrictModel):
    """Compare against another field of the same record: ``value: {field_ref: credit_limit}``."""

    field_ref: FieldPath


class ParamRef(StrictModel):
    """A condition template's parameter, only inside ``kind: condition_template``: ``value: {param: x}``."""

    param: Identifier


class Condition(StrictModel):
    """One comparison of a record's field."""

    field: FieldPath
    operator: OperatorName
    value: FieldRef | ParamRef | list[ParamRef | Scalar] | Scalar | None = None


class UseTemplate(StrictModel):
    """A stored condition template, instantiated: ``{use: big-order, with: {min_total: 500}}``.

    Expanded at validation time (:mod:`rule_compiler.condition_templates`); compiled specs, the
    evaluator and the SQL translation only ever see expanded trees.
    """

    use: Slug
    with_: dict[Identifier, JsonValue] = Field(default_factory=dict, alias="with")


class UnexpandedTemplateError(CompileError):
    """A ``{use: ...}`` node reached code that needs an expanded condition tree (a bug: expand first)."""

    def __init__(self, node: UseTemplate) -> None:
        super().__init__(
            f"condition template '{node.use}' was not expanded; expand templates with "
            "rule_compiler.condition_templates.expand_conditions before evaluating or compiling"
        )


class AllGroup(StrictModel):
    """True when every member is true."""

    all: list[ConditionNode] = Field(min_length=1, max_length=100)


class AnyGroup(StrictModel):
    """True when at least one member is true."""

    any: list[ConditionNode] = Field(min_length=1, max_length=100)


class NotGroup(StrictModel):
    """True when its member is false (NULL comparisons are already false, so ``not`` makes them true)."""

    not_: ConditionNode = Field(alias="not")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "use" in value:
            return "#use"
        for key in ("all", "any", "not"):
            if key in value:
                return f"#{key}"
        return "#condition"
    tags: dict[type, str] = {
        AllGroup: "#all",
        AnyGroup: "#any",
        NotGroup: "#not",
        Condition: "#condition",
        UseTemplate: "#use",
    }
    return tags.get(type(value))


ConditionNode = Annotated[
    (
        Annotated[Condition, Tag("#condition")]
        | Annotated[AllGroup, Tag("#all")]
        | Annotated[AnyGroup, Tag("#any")]
        | Annotated[NotGroup, Tag("#not")]
        | Annotated[UseTemplate, Tag("#use")]
    ),
    Discriminator(_condition_kind),
]

AllGroup.model_rebuild()
AnyGroup.model_rebuild()
NotGroup.model_rebuild()


def iter_leaves(node: ConditionNode, path: str) -> list[tuple[str, Condition]]:
    """Every leaf condition under ``node`` with its JSON path, in document order (expanded trees only)."""
    if isinstance(node, Condition):
        return [(path, node)]
    if isinstance(node, UseTemplate):
        raise UnexpandedTemplateError(node)
    if isinstance(node, AllGroup):
        return [leaf for i, child in enumerate(node.all) for leaf in iter_leaves(child, f"{path}.all[{i}]")]
    if isinstance(node, AnyGroup):
        return [leaf for i, child in enumerate(node.any) for leaf in iter_leaves(child, f"{path}.any[{i}]")]
    return iter_leaves(node.not_, f"{path}.not")


def depth_of(node: ConditionNode) -> int:
    """Nesting depth: a leaf is 1, a group one more than its deepest member."""
    if isinstance(node, Condition):
        return 1
    if isinstance(node, UseTemplate):
        raise UnexpandedTemplateError(node)
    if isinstance(node, NotGroup):
        return 1 + depth_of(node.not_)
    members = node.all if isinstance(node, AllGroup) else node.any
    return 1 + max(depth_of(child) for child in members)


def children_of(node: ConditionNode, path: str) -> list[tuple[str, ConditionNode]]:
    """The direct members of a group with their paths; none for a leaf or a ``use``."""
    if isinstance(node, AllGroup):
        return [(f"{path}.all[{i}]", child) for i, child in enumerate(node.all)]
    if isinstance(node, AnyGroup):
        return [(f"{path}.any[{i}]", child) for i, child in enumerate(node.any)]
    if isinstance(node, NotGroup):
        return [(f"{path}.not", node.not_)]
    return []


def template_uses(node: ConditionNode, path: str) -> list[tuple[str, UseTemplate]]:
    """Every ``use`` node of a tree (not looking inside the templates) with its path, in document order."""
    if isinstance(node, UseTemplate):
        return [(path, node)]
    return [use for child_path, child in children_of(node, path) for use in template_uses(child, child_path)]
