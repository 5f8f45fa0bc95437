"""Conditions: leaves (``field`` ``operator`` ``value``) and the groups ``all``, ``any`` and ``not``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Discriminator, Field, Tag, WithJsonSchema
from pydantic_core import PydanticCustomError

from rule_compiler.definitions.common import FieldPath, StrictModel

#: Every operator of the v1 language (DESIGN §4). Semantics live in ``rule_compiler.conditions``.
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


class Condition(StrictModel):
    """One comparison of a record's field."""

    field: FieldPath
    operator: OperatorName
    value: FieldRef | list[Scalar] | Scalar | None = None


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
        for key in ("all", "any", "not"):
            if key in value:
                return f"#{key}"
        return "#condition"
    tags: dict[type, str] = {AllGroup: "#all", AnyGroup: "#any", NotGroup: "#not", Condition: "#condition"}
    return tags.get(type(value))


ConditionNode = Annotated[
    (
        Annotated[Condition, Tag("#condition")]
        | Annotated[AllGroup, Tag("#all")]
        | Annotated[AnyGroup, Tag("#any")]
        | Annotated[NotGroup, Tag("#not")]
    ),
    Discriminator(_condition_kind),
]

AllGroup.model_rebuild()
AnyGroup.model_rebuild()
NotGroup.model_rebuild()


def iter_leaves(node: ConditionNode, path: str) -> list[tuple[str, Condition]]:
    """Every leaf condition under ``node`` with its JSON path, in document order."""
    if isinstance(node, Condition):
        return [(path, node)]
    if isinstance(node, AllGroup):
        return [leaf for i, child in enumerate(node.all) for leaf in iter_leaves(child, f"{path}.all[{i}]")]
    if isinstance(node, AnyGroup):
        return [leaf for i, child in enumerate(node.any) for leaf in iter_leaves(child, f"{path}.any[{i}]")]
    return iter_leaves(node.not_, f"{path}.not")


def depth_of(node: ConditionNode) -> int:
    """Nesting depth: a leaf is 1, a group one more than its deepest member."""
    if isinstance(node, Condition):
        return 1
    if isinstance(node, NotGroup):
        return 1 + depth_of(node.not_)
    members = node.all if isinstance(node, AllGroup) else node.any
    return 1 + max(depth_of(child) for child in members)
