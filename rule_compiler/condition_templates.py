"""Condition templates: expand ``{use: name, with: {...}}`` nodes into the templates' conditions.

``expand_conditions(node, templates, path)`` returns the expanded tree and the problems found, each at
a JSON path of the document being validated: ``<path>.use`` (unknown template, cycle, too deep),
``<path>.with`` (a required parameter missing) or ``<path>.with.<param>`` (unknown parameter, a value
of the wrong type). Parameters take the ``with`` value, else the template's default; inside a
template, ``{param: x}`` values (also in the ``with`` of a nested ``use``) are replaced by them. A
``use`` that cannot be expanded is left in place (the caller reports the issues and skips checks of
that tree). Expanded paths do not exist in the document, so :func:`relocate` moves problems found
later inside an expansion to the ``use`` node that brought it in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.definitions import (
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    ConditionTemplateDefinition,
    NotGroup,
    ParameterSpec,
    ParamRef,
    RuleDefinition,
    UseTemplate,
)
from rule_compiler.definitions.conditions import template_uses
from rule_compiler.errors import Issue

#: How deep templates may use templates: a rule's ``use`` is level 1.
MAX_TEMPLATE_DEPTH = 3
PARAM_ONLY_IN_TEMPLATES = "`{param: ...}` is only allowed inside a condition_template"

Templates = Mapping[str, ConditionTemplateDefinition]
#: The ``use`` nodes of a document (path → template name): where problems inside expansions go.
Origins = dict[str, str]

__all__ = [
    "MAX_TEMPLATE_DEPTH",
    "PARAM_ONLY_IN_TEMPLATES",
    "expand_conditions",
    "expand_rule",
    "is_param_ref",
    "relocate",
    "type_problem",
    "used_templates",
]


def is_param_ref(value: Any) -> bool:
    """A ``{param: name}`` mapping as written in a ``with`` value."""
    return isinstance(value, dict) and set(value) == {"param"} and isinstance(value["param"], str)


def type_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` does not fit a parameter of type ``kind`` (None when it does)."""
    scalar = (str, int, float, bool)
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "list":
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, scalar) for v in value)
        if not ok:
            return f"needs a non-empty list of values such as [paid, shipped]; got {value!r}"
        return None
    elif kind == "duration":
        try:
            parse_duration(value)
        except DurationError:
            return f"needs a duration such as '3d' or '12h'; got {value!r}"
        return None
    else:
        return f"has an unknown type '{kind}'"
    article = "an" if kind == "integer" else "a"
    return None if ok else f"needs {article} {kind}; got {value!r}"


def expand_conditions(
    node: ConditionNode, templates: Templates, path: str
) -> tuple[ConditionNode, list[Issue]]:
    """``node`` with every ``use`` replaced by its template's condition; the problems found."""
    expander = _Expander(templates)
    return expander.node(node, path, (), None), expander.issues


def expand_template_condition(
    template: ConditionTemplateDefinition, templates: Templates
) -> tuple[ConditionNode, list[Issue]]:
    """Expand the nested ``use`` nodes of a template's own condition (its ``{param}`` stay as they are)."""
    expander = _Expander({**templates, template.name: template}, keep_params=True)
    return expander.node(template.condition, "condition", (template.name,), None), expander.issues


class _Expander:
    def __init__(self, templates: Templates, *, keep_params: bool = False) -> None:
        self.templates = templates
        self.keep_params = keep_params
        self.issues: list[Issue] = []

    def node(
        self, node: ConditionNode, path: str, stack: tuple[str, ...], params: dict[str, Any] | None
    ) -> ConditionNode:
        if isinstance(node, Condition):
            return node if params is None else self._substitute(node, path, params)
        if isinstance(node, AllGroup):
            members = [self.node(c, f"{path}.all[{i}]", stack, params) for i, c in enumerate(node.all)]
            return node.model_copy(update={"all": members})
        if isinstance(node, AnyGroup):
            members = [self.node(c, f"{path}.any[{i}]", stack, params) for i, c in enumerate(node.any)]
            return node.model_copy(update={"any": members})
        if isinstance(node, NotGroup):
            return node.model_copy(update={"not_": self.node(node.not_, f"{path}.not", stack, params)})
        return self._use(node, path, stack, params)

    def _substitute(self, leaf: Condition, path: str, params: dict[str, Any]) -> ConditionNode:
        value = leaf.value
        refs = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, ParamRef)]
        undeclared = sorted({ref.param for ref in refs if ref.param not in params})
        if undeclared:
            self.issues.append(
                Issue(f"{path}.value", f"parameter '{undeclared[0]}' is not declared by the template")
            )
            return leaf
        if isinstance(value, ParamRef):
            value = params.get(value.param)
        elif isinstance(value, list):
            items: list[Any] = []
            for item in value:
                found = params.get(item.param) if isinstance(item, ParamRef) else item
                items += found if isinstance(found, list) else [found]
            value = items
        else:
            return leaf
        data = leaf.model_dump(mode="json", by_alias=True, exclude_none=True)
        try:
            return Condition.model_validate({**data, "value": value})
        except ValidationError as exc:
            self.issues.append(Issue(path, f"the parameters do not make a valid condition: {exc}"))
            return leaf

    def _use(
        self, node: UseTemplate, path: str, stack: tuple[str, ...], params: dict[str, Any] | None
    ) -> ConditionNode:
        given: dict[str, Any] = dict(node.with_)
        if params is not None:
            given = {k: _param_value(v, params) for k, v in given.items()}
        template = self.templates.get(node.use)
        if template is None:
            known = ", ".join(sorted(self.templates)) or "none"
            self.issues.append(
                Issue(
                    f"{path}.use",
                    f"unknown condition template '{node.use}' (templates of this organization: {known}); "
                    "apply it first (kind: condition_template) or pass --templates DIR",
                    "unknown_template",
                )
            )
            return node
        if node.use in stack:
            cycle = " -> ".join([*stack[stack.index(node.use) :], node.use])
            self.issues.append(Issue(f"{path}.use", f"condition template cycle: {cycle}", "cycle"))
            return node
        if len(stack) >= MAX_TEMPLATE_DEPTH:
            chain = " -> ".join([*stack, node.use])
            self.issues.append(
                Issue(
                    f"{path}.use",
                    f"condition templates nest deeper than {MAX_TEMPLATE_DEPTH} levels ({chain})",
                    "depth",
                )
            )
            return node
        values = self._parameters(template, given, f"{path}.with")
        if values is None:
            return node
        inner = _Expander(self.templates, keep_params=self.keep_params)
        expanded = inner.node(template.condition, "condition", (*stack, node.use), values)
        for issue in inner.issues:
            self.issues.append(
                Issue(path, f"in template '{node.use}': {issue.message} (at {issue.path})", issue.code)
            )
        return expanded if not inner.issues else node

    def _parameters(
        self, template: ConditionTemplateDefinition, given: dict[str, Any], path: str
    ) -> dict[str, Any] | None:
        issues: list[Issue] = []
        declared = template.parameters
        for name in given:
            if name not in declared:
                issues.append(
                    Issue(
                        f"{path}.{name}",
                        f"template '{template.name}' has no parameter '{name}' "
                        f"(its parameters: {', '.join(declared) or 'none'})",
                        "unknown_parameter",
                    )
                )
        values: dict[str, Any] = {}
        missing = [n for n, spec in declared.items() if n not in given and spec.default is None]
        if missing:
            names = ", ".join(f"'{n}'" for n in missing)
            needs = ", ".join(f"{n} ({s.type})" for n, s in declared.items() if s.default is None)
            issues.append(
                Issue(
                    path,
                    f"missing parameter{'s' if len(missing) > 1 else ''} {names} "
                    f"(template '{template.name}' needs: {needs})",
                    "missing",
                )
            )
        for name, spec in declared.items():
            if name in given:
                problem = self._value_problem(spec, given[name])
                if problem:
                    message = (
                        problem
                        if problem == PARAM_ONLY_IN_TEMPLATES
                        else (f"parameter '{name}' ({spec.type}) {problem}")
                    )
                    issues.append(Issue(f"{path}.{name}", message, "parameter"))
                values[name] = given[name]
            elif spec.default is not None:
                values[name] = spec.default
        self.issues += issues
        return None if issues else values

    def _value_problem(self, spec: ParameterSpec, value: Any) -> str | None:
        if is_param_ref(value):
            return None if self.keep_params else PARAM_ONLY_IN_TEMPLATES
        return type_problem(spec.type, value)


def _param_value(value: Any, params: dict[str, Any]) -> Any:
    """A ``with`` value inside a template: ``{param: x}`` becomes the outer template's ``x``."""
    return params.get(value["param"]) if is_param_ref(value) else value


def expand_rule(rule: RuleDefinition, templates: Templates) -> tuple[RuleDefinition, list[Issue], Origins]:
    """The rule with its conditions and every action's ``where`` expanded, the problems, the ``use`` paths."""
    issues: list[Issue] = []
    origins: Origins = {}
    update: dict[str, Any] = {}
    if rule.conditions is not None:
        origins.update({p: use.use for p, use in template_uses(rule.conditions, "conditions")})
        if origins:
            update["conditions"], found = expand_conditions(rule.conditions, templates, "conditions")
            issues += found
    actions = list(rule.actions)
    for index, action in enumerate(rule.actions):
        where: ConditionNode | None = getattr(action, "where", None)
        uses = template_uses(where, f"actions[{index}].where") if where is not None else []
        if where is not None and uses:
            origins.update({p: use.use for p, use in uses})
            expanded, found = expand_conditions(where, templates, f"actions[{index}].where")
            actions[index] = action.model_copy(update={"where": expanded})
            issues += found
    if actions != list(rule.actions):
        update["actions"] = actions
    return (rule.model_copy(update=update) if update else rule), issues, origins


def relocate(issues: list[Issue], origins: Origins) -> list[Issue]:
    """Problems inside an expansion, moved to the ``use`` node that brought the template in."""
    out = []
    for issue in issues:
        origin = next(
            (p for p in origins if issue.path == p or issue.path.startswith((f"{p}.", f"{p}["))), None
        )
        if origin is None:
            out.append(issue)
            continue
        inner = "condition" + issue.path[len(origin) :]
        message = f"in template '{origins[origin]}': {issue.message} (at {inner})"
        out.append(Issue(origin, message, issue.code))
    return out


def used_templates(rule: RuleDefinition) -> set[str]:
    """Names of the templates a rule uses directly (in its conditions and actions' ``where``)."""
    trees = [rule.conditions, *(getattr(a, "where", None) for a in rule.actions)]
    return {use.use for tree in trees if tree is not None for _, use in template_uses(tree, "")}
