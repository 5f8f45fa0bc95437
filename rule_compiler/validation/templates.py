"""Checks of a ``kind: condition_template``: its parameters, their uses, and the templates it uses.

Templates are table-agnostic: fields are checked against the catalog (and operands against column
types) where a rule uses the template, after expansion. Here: every ``{param: x}`` names a declared
parameter, every declared parameter is used, defaults fit their types, operators get the number of
values they need where no parameter stands in, and nested ``use`` nodes expand (known templates, no
cycle, at most :data:`~rule_compiler.condition_templates.MAX_TEMPLATE_DEPTH` levels).
"""

from __future__ import annotations

from typing import Any

from rule_compiler.condition_templates import Templates, expand_template_condition, is_param_ref, type_problem
from rule_compiler.conditions import validate_operand
from rule_compiler.definitions import (
    Condition,
    ConditionNode,
    ConditionTemplateDefinition,
    ParamRef,
    UseTemplate,
)
from rule_compiler.definitions.conditions import children_of
from rule_compiler.errors import Issue


def check_condition_template(template: ConditionTemplateDefinition, templates: Templates) -> list[Issue]:
    """Every problem of a structurally valid condition template."""
    issues: list[Issue] = []
    refs = list(_param_refs(template.condition, "condition"))
    declared = template.parameters
    for path, name in refs:
        if name not in declared:
            issues.append(
                Issue(
                    path,
                    f"parameter '{name}' is not declared; add it under `parameters` "
                    f"(declared: {', '.join(declared) or 'none'})",
                    "unknown_parameter",
                )
            )
    used = {name for _, name in refs}
    for name, spec in declared.items():
        if name not in used:
            issues.append(
                Issue(
                    f"parameters.{name}",
                    f"parameter '{name}' is declared but never used in `condition`; "
                    "use it as `value: {param: " + name + "}` or remove it",
                    "unused_parameter",
                )
            )
        if spec.default is not None and (problem := type_problem(spec.type, spec.default)):
            issues.append(Issue(f"parameters.{name}.default", f"the default {problem}", "parameter"))
    issues += _operand_issues(template.condition, "condition")
    issues += expand_template_condition(template, templates)[1]
    return issues


def _param_refs(node: ConditionNode, path: str) -> list[tuple[str, str]]:
    """Every ``{param: x}`` of a template's condition (leaf values, list items, nested ``with``)."""
    if isinstance(node, Condition):
        value = node.value
        if isinstance(value, ParamRef):
            return [(f"{path}.value", value.param)]
        if isinstance(value, list):
            return [(f"{path}.value[{i}]", v.param) for i, v in enumerate(value) if isinstance(v, ParamRef)]
        return []
    if isinstance(node, UseTemplate):
        given: dict[str, Any] = dict(node.with_)
        return [(f"{path}.with.{k}", v["param"]) for k, v in given.items() if is_param_ref(v)]
    return [ref for child_path, child in children_of(node, path) for ref in _param_refs(child, child_path)]


def _operand_issues(node: ConditionNode, path: str) -> list[Issue]:
    """Operator/value checks for leaves without parameters (no column types: those come with a table)."""
    if isinstance(node, Condition):
        value = node.value
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, ParamRef) for v in items):
            return []
        found = validate_operand(node, column_type=None, trigger_type="event")
        return [Issue(f"{path}.{suffix}" if suffix else path, msg, "operand") for suffix, msg in found]
    return [i for child_path, child in children_of(node, path) for i in _operand_issues(child, child_path)]
