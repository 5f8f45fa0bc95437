"""Condition templates: expand ``{use: name, with: {...}}`` nodes into the templates' conditions.

``expand_conditions(node, templates, path)`` returns the expanded tree and the problems found, each at
a JSON path of the document being validated: ``<path>.use`` (unknown template, cycle, too deep),
``<path>.with`` (a required parameter missing) or ``<path>.with.<param>`` (unknown parameter, a value
of the wrong type). Parameters take the ``with`` value, else the template's default; inside a
template, ``{param: x}`` values (also in the ``with`` of a nested ``use``) are replaced by them. A
``use`` that cannot be expanded is left in place (the caller reports the issues and skips checks of
that tree). Expanded paths do not exist in the document, so :func:`relocate` moves problems found
later inside an expansion to the ``use`` node that brought it in.

Expansion multiplies: a template of 100 leaves used 100 times by another, used 30 times by a third, is
300,000 leaves from one short ``use``. So before anything is expanded, :func:`expansion_issues` counts
the leaves each tree would expand to (one cheap pass over the template graph, each template counted
once per nesting level) and refuses more than :data:`MAX_EXPANDED_LEAVES` per rule or template, at
the ``use`` that brings in the most; the expander never runs then.
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
from rule_compiler.definitions.conditions import children_of, template_uses
from rule_compiler.errors import Issue

#: How deep templates may use templates: a rule's ``use`` is level 1.
MAX_TEMPLATE_DEPTH = 3
#: At most this many leaf conditions in a rule (its conditions and every action's ``where``) or in a
#: template, counted as if every ``use`` were expanded. The largest example rule has 5.
MAX_EXPANDED_LEAVES = 1_000
PARAM_ONLY_IN_TEMPLATES = "`{param: ...}` is only allowed inside a condition_template"

Templates = Mapping[str, ConditionTemplateDefinition]
#: The ``use`` nodes of a document (path → template name): where problems inside expansions go.
Origins = dict[str, str]

__all__ = [
    "MAX_EXPANDED_LEAVES",
    "MAX_TEMPLATE_DEPTH",
    "PARAM_ONLY_IN_TEMPLATES",
    "expand_conditions",
    "expand_rule",
    "expanded_leaves",
    "expansion_issues",
    "is_param_ref",
    "parameter_values",
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
    """``node`` with every ``use`` replaced by its template's condition; the problems found.

    A tree that would expand past :data:`MAX_EXPANDED_LEAVES` is returned as it is, with that problem.
    """
    if too_big := expansion_issues([(path, node)], templates):
        return node, too_big
    expander = _Expander(templates)
    return expander.node(node, path, (), None), expander.issues


def expand_template_condition(
    template: ConditionTemplateDefinition, templates: Templates
) -> tuple[ConditionNode, list[Issue]]:
    """Expand the nested ``use`` nodes of a template's own condition (its ``{param}`` stay as they are)."""
    templates = {**templates, template.name: template}
    if too_big := expansion_issues([("condition", template.condition)], templates, level=1):
        return template.condition, too_big
    expander = _Expander(templates, keep_params=True)
    return expander.node(template.condition, "condition", (template.name,), None), expander.issues


class _LeafCounter:
    """How many leaves trees expand to, without expanding: each (template, level) is counted once.

    It mirrors the expander: a ``use`` that will not expand (unknown template, too deep; a cycle is
    too deep too) stays one node, which counts as one.
    """

    def __init__(self, templates: Templates) -> None:
        self.templates = templates
        self.memo: dict[tuple[str, int], int] = {}

    def node(self, node: ConditionNode, level: int) -> int:
        if isinstance(node, Condition):
            return 1
        if isinstance(node, UseTemplate):
            return self.use(node.use, level + 1)
        return sum(self.node(child, level) for _, child in children_of(node, ""))

    def use(self, name: str, level: int) -> int:
        template = self.templates.get(name)
        if template is None or level > MAX_TEMPLATE_DEPTH:
            return 1
        key = (name, level)
        if key not in self.memo:
            self.memo[key] = self.node(template.condition, level)
        return self.memo[key]


def expanded_leaves(node: ConditionNode, templates: Templates) -> int:
    """The number of leaf conditions ``node`` has once its ``use`` nodes are expanded (not expanding)."""
    return _LeafCounter(templates).node(node, 0)


def expansion_issues(
    trees: list[tuple[str, ConditionNode]], templates: Templates, *, level: int = 0
) -> list[Issue]:
    """The problem when ``trees`` (path, tree) together would expand past :data:`MAX_EXPANDED_LEAVES`.

    Counted before anything is expanded; reported at the ``use`` bringing in the most leaves (at the
    biggest tree when none does). ``level``: how many templates deep the trees already are (1 inside
    a template's own condition).
    """
    counter = _LeafCounter(templates)
    total = 0
    biggest: tuple[int, str, str] | None = None
    for path, tree in trees:
        total += counter.node(tree, level)
        for use_path, use in template_uses(tree, path):
            count = counter.use(use.use, level + 1)
            if biggest is None or count > biggest[0]:
                biggest = (count, f"{use_path}.use", use.use)
    if total <= MAX_EXPANDED_LEAVES:
        return []
    limit = (
        f"at most {MAX_EXPANDED_LEAVES:,} leaf conditions are allowed in a rule or template "
        "once its condition templates are expanded"
    )
    if biggest is not None and biggest[0] > 1:
        count, where, name = biggest
        overall = "" if count == total else f" ({total:,} in all)"
        message = (
            f"condition template '{name}' expands to {count:,} leaf conditions{overall}; {limit}: "
            "use fewer or smaller templates"
        )
        return [Issue(where, message, "too_many_conditions")]
    path = max(trees, key=lambda item: counter.node(item[1], level))[0]
    return [Issue(path, f"{total:,} leaf conditions; {limit}", "too_many_conditions")]


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
        values, issues = parameter_values(
            template.name, template.parameters, given, path, keep_params=self.keep_params
        )
        self.issues += issues
        return values


def parameter_values(
    template: str,
    declared: Mapping[str, ParameterSpec],
    given: Mapping[str, Any],
    path: str,
    *,
    keep_params: bool = False,
) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The values of a template's parameters from ``given`` (else their defaults), or None with the
    problems: unknown at ``<path>.<name>``, missing at ``path``, the wrong type at ``<path>.<name>``.

    ``keep_params``: a ``{param: x}`` value is allowed (a template using another inside its own body).
    Shared by every kind of template (condition, rule and workflow templates).
    """
    issues: list[Issue] = []
    for name in given:
        if name not in declared:
            issues.append(
                Issue(
                    f"{path}.{name}",
                    f"template '{template}' has no parameter '{name}' "
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
                f"(template '{template}' needs: {needs})",
                "missing",
            )
        )
    for name, spec in declared.items():
        if name in given:
            if is_param_ref(given[name]):
                problem = None if keep_params else PARAM_ONLY_IN_TEMPLATES
            else:
                problem = type_problem(spec.type, given[name])
            if problem:
                message = (
                    problem
                    if problem == PARAM_ONLY_IN_TEMPLATES
                    else f"parameter '{name}' ({spec.type}) {problem}"
                )
                issues.append(Issue(f"{path}.{name}", message, "parameter"))
            values[name] = given[name]
        elif spec.default is not None:
            values[name] = spec.default
    return (None if issues else values), issues


def _param_value(value: Any, params: dict[str, Any]) -> Any:
    """A ``with`` value inside a template: ``{param: x}`` becomes the outer template's ``x``."""
    return params.get(value["param"]) if is_param_ref(value) else value


def expand_rule(rule: RuleDefinition, templates: Templates) -> tuple[RuleDefinition, list[Issue], Origins]:
    """The rule with its conditions and every action's ``where`` expanded, the problems, the ``use`` paths."""
    issues: list[Issue] = []
    origins: Origins = {}
    update: dict[str, Any] = {}
    trees = _condition_trees(rule)
    if too_big := expansion_issues(trees, templates):  # counted first: then nothing is expanded
        for path, tree in trees:
            origins.update({p: use.use for p, use in template_uses(tree, path)})
        return rule, too_big, origins
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


def _condition_trees(rule: RuleDefinition) -> list[tuple[str, ConditionNode]]:
    """A rule's condition trees with their paths: its conditions and every action's ``where``."""
    trees: list[tuple[str, ConditionNode]] = []
    if rule.conditions is not None:
        trees.append(("conditions", rule.conditions))
    for index, action in enumerate(rule.actions):
        where: ConditionNode | None = getattr(action, "where", None)
        if where is not None:
            trees.append((f"actions[{index}].where", where))
    return trees


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


def raw_template_uses(data: Mapping[str, Any]) -> set[str]:
    """Template names a raw document's condition trees name in ``use`` (before any parsing): a rule's
    ``conditions`` and actions' ``where``, a condition template's ``condition``."""
    trees: list[Any] = [data.get("conditions"), data.get("condition")]
    actions = data.get("actions")
    if isinstance(actions, list):
        trees += [a.get("where") for a in actions if isinstance(a, dict)]
    found: set[str] = set()
    stack = trees
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("use"), str):
                found.add(node["use"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
