"""The bounded Jinja sandbox that renders author templates (see :mod:`rule_compiler.templating`).

Jinja's ``ImmutableSandboxedEnvironment`` stops templates from reaching Python internals; it does not
stop them from making huge values (``{{ 'a' * 10**9 }}``) or running for minutes (nested loops).
:class:`SandboxEnvironment` adds, on top of it:

* **Allow-lists, never deny-lists**: the template features (:data:`ALLOWED_NODES`: output, ``if``,
  ``for``, ``set``, ``with``, expressions), the filters (:data:`ALLOWED_FILTERS`), the tests
  (:data:`ALLOWED_TESTS`) and the methods (:data:`ALLOWED_METHODS`) a template may use. Anything else
  is refused when the template is checked (at registration) with a message naming it, and again
  when it is compiled to render.
* **Budgets** (:mod:`rule_compiler.template_limits`): every operator (``+ - * / // % **``, ``~``),
  filter and method call is checked against the render's :class:`RenderBudget` *before* it runs
  whenever its result's size depends on an argument (a repetition count, a width, a power, a
  replacement count...), and its result is checked after; every loop iteration is counted; output is
  counted while it streams.
* **Constant folding at registration**: literal sub-expressions are evaluated by the same guarded
  operators and filters under a fresh budget, and literal loop sizes are multiplied out, so what is
  provably too big (``'a' * 10**9``, ``|center(1000000000)``, nested loops over literals) is refused
  before it is stored.

Loops are counted by instrumenting the template before Jinja generates its code: each ``for``'s
iterable is wrapped by an internal filter (``@loop``) that charges one iteration (weighted by the
size of the loop's body) per item; each ``~`` becomes an internal ``@concat`` filter, each slice
``x[a:b]`` a ``@slice`` and each comparison a ``@compare`` (it charges what the comparison walks:
the container of ``in``, the shorter operand of ``==``, ``<``...). Their names cannot be written in
a template.

The parts live beside this module: :mod:`.template_operations` (operators, formatting, loops),
:mod:`.template_filters` (filters, tests and methods with their guards) and
:mod:`.template_checks` (the registration-time checks and constant folding).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from rule_compiler.template_filters import (
    ALLOWED_FILTERS,
    ALLOWED_METHODS,
    ALLOWED_TESTS,
    _guarded_filter,
    _guarded_test,
    _method_guard,
    _method_kind,
)
from rule_compiler.template_limits import (
    current_budget,
)
from rule_compiler.template_operations import (
    GuardedFormat,
    _compare,
    _concat,
    _finalize,
    _loop,
    _slice,
    guarded_binop,
)

__all__ = [
    "ALLOWED_FILTERS",
    "ALLOWED_METHODS",
    "ALLOWED_NODES",
    "ALLOWED_OPERATORS",
    "ALLOWED_TESTS",
    "MAX_NESTING",
    "SandboxEnvironment",
]

#: How deeply template nodes may nest (``((((a))))``, ``a + b + c + ...``): Jinja and Python compile
#: templates recursively.
MAX_NESTING = 60
LOOP_FILTER = "@loop"
CONCAT_FILTER = "@concat"
SLICE_FILTER = "@slice"
COMPARE_FILTER = "@compare"

#: The template features a template may use; anything else (``macro``, ``call``, ``filter`` and
#: ``set`` blocks, ``include``, ``import``, ``extends``, ``block``, ``autoescape``, recursive loops,
#: namespaces) is refused.
ALLOWED_NODES: frozenset[type[nodes.Node]] = frozenset(
    {
        nodes.Template,
        nodes.Output,
        nodes.TemplateData,
        nodes.If,
        nodes.For,
        nodes.Assign,
        nodes.With,
        nodes.Const,
        nodes.Name,
        nodes.Getattr,
        nodes.Getitem,
        nodes.Slice,
        nodes.Filter,
        nodes.Test,
        nodes.Call,
        nodes.Keyword,
        nodes.CondExpr,
        nodes.And,
        nodes.Or,
        nodes.Not,
        nodes.Neg,
        nodes.Pos,
        nodes.Compare,
        nodes.Operand,
        nodes.Add,
        nodes.Sub,
        nodes.Mul,
        nodes.Div,
        nodes.FloorDiv,
        nodes.Mod,
        nodes.Pow,
        nodes.Concat,
        nodes.List,
        nodes.Tuple,
        nodes.Dict,
        nodes.Pair,
    }
)
_FEATURE_NAMES = {
    "Macro": "{% macro %}",
    "CallBlock": "{% call %}",
    "FilterBlock": "{% filter %}",
    "AssignBlock": "{% set %}...{% endset %}",
    "Scope": "{% autoescape %}",
    "Block": "{% block %}",
    "Extends": "{% extends %}",
    "Include": "{% include %}",
    "Import": "{% import %}",
    "FromImport": "{% from ... import %}",
    "ScopedEvalContextModifier": "{% autoescape %}",
    "EvalContextModifier": "{% autoescape %}",
    "NSRef": "namespace attributes",
    "ExprStmt": "{% do %}",
    "Continue": "{% continue %}",
    "Break": "{% break %}",
}

#: Binary operators, all intercepted (``~`` is the internal ``@concat`` filter).
ALLOWED_OPERATORS = ("+", "-", "*", "/", "//", "%", "**", "~")


# -- the environment ------------------------------------------------------------------------------


def _nodes_in(body: Iterable[nodes.Node]) -> int:
    """How many template nodes ``body`` holds (a loop's cost per iteration)."""
    return sum(1 + sum(1 for _ in node.find_all(nodes.Node)) for node in body)


class _Instrument(NodeTransformer):
    """Counts loops and concatenations: see the module docstring."""

    def __init__(self, env: SandboxEnvironment) -> None:
        self.env = env

    def visit_For(self, node: nodes.For) -> nodes.Node:
        body_nodes = _nodes_in(node.iter_child_nodes(exclude=("target", "iter")))
        self.generic_visit(node)
        counted = nodes.Filter(node.iter, LOOP_FILTER, [nodes.Const(body_nodes)], [], None, None)
        node.iter = counted.set_lineno(node.lineno).set_environment(self.env)
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice):
            return node
        bounds = [part or nodes.Const(None) for part in (node.arg.start, node.arg.stop, node.arg.step)]
        sliced = nodes.Filter(node.node, SLICE_FILTER, bounds, [], None, None)
        return sliced.set_lineno(node.lineno).set_environment(self.env)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        values = nodes.List([node.expr, *(operand.expr for operand in node.ops)])
        ops = nodes.Const(tuple(operand.op for operand in node.ops))
        compared = nodes.Filter(values, COMPARE_FILTER, [ops], [], None, None)
        return compared.set_lineno(node.lineno).set_environment(self.env)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(list(node.nodes))
        joined = nodes.Filter(parts, CONCAT_FILTER, [], [], None, None)
        return joined.set_lineno(node.lineno).set_environment(self.env)


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with allow-listed filters, tests and methods, no globals, and every
    operator, filter, method, loop and output charged to the render's budget."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=autoescape, finalize=_finalize)
        self.globals.clear()  # no range(), lipsum, dict(), cycler, namespace: only the context we pass
        self.filters = {name: _guarded_filter(name) for name in sorted(ALLOWED_FILTERS)}
        self.filters[LOOP_FILTER] = _loop
        self.filters[CONCAT_FILTER] = _concat
        self.filters[SLICE_FILTER] = _slice
        self.filters[COMPARE_FILTER] = _compare
        self.tests = {name: _guarded_test(name) for name in sorted(ALLOWED_TESTS)}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not attr.startswith("_") and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return guarded_binop(self, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if (
            isinstance(value, types.MethodType | types.BuiltinMethodType)
            and value.__name__ == "format"
            and isinstance(value.__self__, str)
        ):
            return GuardedFormat(self, value.__self__)
        return None  # format_map is refused when called

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Only allow-listed methods, each checked against the budget before and after it runs."""
        kwargs.pop("_loop_vars", None)
        kwargs.pop("_block_vars", None)
        if isinstance(__obj, GuardedFormat):
            return __obj(*args, **kwargs)
        if isinstance(__obj, Undefined):
            return __obj()  # StrictUndefined: says which name is undefined
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        kind = (
            _method_kind(owner, name)
            if isinstance(__obj, types.MethodType | types.BuiltinMethodType) and isinstance(name, str)
            else None
        )
        if kind is None:
            shown = f"{type(owner).__name__}.{name}" if owner is not None else repr(name or __obj)[:60]
            raise SecurityError(f"calling {shown} is not allowed in templates")
        budget = current_budget()
        budget.operation()
        _method_guard(budget, owner, name, args, kwargs)
        result = __obj(*args, **kwargs)
        return budget.made(result, f"the {name} method") if kind == "make" else result

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        _Instrument(self).visit(source)
        return super()._generate(source, name, filename, defer_init)

    @functools.cached_property
    def static_context(self) -> Context:
        """A context for filters folded at registration (they read its environment and autoescape)."""
        return self.from_string("").new_context({})
