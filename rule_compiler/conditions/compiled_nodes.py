"""The compiled condition tree: what :func:`~rule_compiler.conditions.evaluator.compile_condition`
builds (a closure per node) and :mod:`.trace` walks to explain a verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rule_compiler.conditions.closures import LeafFn
from rule_compiler.conditions.operator_registry import OperatorSpec
from rule_compiler.conditions.values import Kind
from rule_compiler.definitions.conditions import Condition


@dataclass(slots=True)
class Leaf:
    """A compiled condition: its closure and what the trace needs."""

    path: str
    condition: Condition
    spec: OperatorSpec
    kind: Kind
    operand: Any
    ref: str | None
    fn: LeafFn


@dataclass(slots=True)
class Group:
    """A compiled ``all``/``any``/``not`` group."""

    kind: Literal["all", "any", "not"]
    path: str
    children: list[Leaf | Group]
    fn: LeafFn = field(repr=False)
