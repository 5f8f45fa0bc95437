"""Registration-time checks of a template's tree: allow-listed features, nesting, and constant
folding of literal sub-expressions under the same guarded operators and filters, so what is provably
too big is refused before it is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from string import Formatter
from typing import Any

from jinja2 import nodes

from rule_compiler.template_filters import (
    _FILTER_GUARDS,
    _WIDTH_METHODS,
    ALLOWED_FILTERS,
    ALLOWED_METHODS,
    ALLOWED_TESTS,
)
from rule_compiler.template_limits import (
    RenderBudget,
    TemplateCheckError,
    TemplateLimitError,
    TemplateLimits,
    active_budget,
)
from rule_compiler.template_operations import (
    _DIGITS,
    UNKNOWN,
    _arg,
    _check_size_arg,
    _concat,
    _int,
    guarded_binop,
    percent_size,
)
from rule_compiler.template_sandbox import (
    _FEATURE_NAMES,
    ALLOWED_NODES,
    ALLOWED_OPERATORS,
    MAX_NESTING,
    SandboxEnvironment,
    _nodes_in,
)

# -- static checks --------------------------------------------------------------------------------


def _feature_name(node: nodes.Node) -> str:
    kind = type(node).__name__
    return _FEATURE_NAMES.get(kind, kind)


def _depth_first(tree: nodes.Node) -> Iterator[tuple[nodes.Node, int]]:
    """Every node with its depth, without recursion (a template may nest deeply)."""
    pending: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        yield node, depth
        pending.extend((child, depth + 1) for child in node.iter_child_nodes())


def check_features(tree: nodes.Template, limits: TemplateLimits, env: SandboxEnvironment) -> None:
    """Raise :class:`TemplateCheckError` unless every feature, filter, test and method the template
    uses is allow-listed, and :class:`TemplateLimitError` when its literals are provably too big."""
    found = list(_depth_first(tree))
    for node, depth in found:
        if depth > MAX_NESTING:
            raise TemplateCheckError(f"template nests too deeply (more than {MAX_NESTING} levels)")
        if type(node) not in ALLOWED_NODES:
            raise TemplateCheckError(f"{_feature_name(node)} is not allowed in templates")
    for node, _ in found:
        _check_node(node)
        if isinstance(node, nodes.Const) and _int(node.value) is not None:
            bits = node.value.bit_length()
            if bits > limits.max_int_bits:
                raise TemplateLimitError(
                    "max_int_bits", limits.max_int_bits, bits, "an integer literal's bits"
                )
    _Folder(limits, env).check(tree)


def _check_node(node: nodes.Node) -> None:
    if isinstance(node, nodes.For) and node.recursive:
        raise TemplateCheckError("recursive loops are not allowed in templates")
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateCheckError(
                f"unsafe attribute access '{attr}': names starting with '_' are not allowed"
            )
    if isinstance(node, nodes.Filter | nodes.Test | nodes.Call) and (node.dyn_args or node.dyn_kwargs):
        raise TemplateCheckError("*args and **kwargs are not allowed in templates")
    if isinstance(node, nodes.Filter):
        _check_filter_name(node.name)
        if node.name in {"map", "select", "reject"} and node.args:
            named = _const(node.args[0])
            if isinstance(named, str):
                (_check_filter_name if node.name == "map" else _check_test_name)(named)
    elif isinstance(node, nodes.Test):
        _check_test_name(node.name)
    elif isinstance(node, nodes.Call):
        if not isinstance(node.node, nodes.Getattr):
            raise TemplateCheckError(
                "calling anything but a method is not allowed in templates (such as "
                f"record.name.upper()); methods: {', '.join(sorted(ALLOWED_METHODS))}"
            )
        if node.node.attr not in ALLOWED_METHODS:
            allowed = ", ".join(sorted(ALLOWED_METHODS))
            raise TemplateCheckError(
                f"method '{node.node.attr}' is not allowed in templates; allowed: {allowed}"
            )


def _check_filter_name(name: str) -> None:
    if name == "attr":
        raise TemplateCheckError("unsafe filter 'attr' is not allowed")
    if name not in ALLOWED_FILTERS:
        raise TemplateCheckError(
            f"filter '{name}' is not allowed in templates; allowed: {', '.join(sorted(ALLOWED_FILTERS))}"
        )


def _check_test_name(name: str) -> None:
    if name not in ALLOWED_TESTS:
        raise TemplateCheckError(
            f"test '{name}' is not allowed in templates; allowed: {', '.join(sorted(ALLOWED_TESTS))}"
        )


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


class _Folder:
    """Evaluates literal sub-expressions with the guarded operators and filters, under one budget of
    the template's limits, and multiplies out literal loop sizes."""

    def __init__(self, limits: TemplateLimits, env: SandboxEnvironment) -> None:
        self.budget = RenderBudget(limits)
        self.env = env
        self.memo: dict[int, Any] = {}

    def check(self, tree: nodes.Template) -> None:
        with active_budget(self.budget):
            for node, _ in _depth_first(tree):
                if isinstance(node, nodes.BinExpr | nodes.Concat | nodes.Filter | nodes.Call):
                    self.fold(node)
            self._loops(tree.body, 1)

    def _loops(self, body: list[nodes.Node], times: int) -> None:
        """Charge ``times`` runs of each literal loop in ``body`` (loops over unknown values may run
        zero times: what they hold is not counted)."""
        pending = [(node, times) for node in body]
        while pending:
            node, runs = pending.pop()
            if isinstance(node, nodes.For):
                items = self.fold(node.iter)
                length = len(items) if items is not UNKNOWN and isinstance(items, Sized) else 0
                body_nodes = _nodes_in(node.iter_child_nodes(exclude=("target", "iter")))
                for _ in range(min(runs * length, self.budget.limits.max_iterations + 1)):
                    self.budget.iterate(body_nodes)
                pending.extend((child, runs * length) for child in node.body)
            else:
                pending.extend((child, runs) for child in node.iter_child_nodes())

    def fold(self, node: nodes.Node) -> Any:
        key = id(node)
        if key not in self.memo:
            self.memo[key] = self._fold(node)
        return self.memo[key]

    def _fold(self, node: nodes.Node) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self.fold(item) for item in node.items]
            if any(item is UNKNOWN for item in items):
                return UNKNOWN
            return items if isinstance(node, nodes.List) else tuple(items)
        if isinstance(node, nodes.Neg | nodes.Pos):
            value = self.fold(node.node)
            return (
                UNKNOWN
                if value is UNKNOWN
                else self._attempt(lambda: -value if isinstance(node, nodes.Neg) else +value)
            )
        if isinstance(node, nodes.BinExpr):
            left, right = self.fold(node.left), self.fold(node.right)
            if node.operator == "%" and isinstance(left, str) and right is UNKNOWN:  # its widths
                self._attempt(lambda: percent_size(self.budget, left, UNKNOWN))
            if left is UNKNOWN or right is UNKNOWN or node.operator not in ALLOWED_OPERATORS:
                return UNKNOWN
            return self._attempt(lambda: guarded_binop(self.env, node.operator, left, right))
        if isinstance(node, nodes.Concat):
            parts = [self.fold(part) for part in node.nodes]
            if any(part is UNKNOWN for part in parts):
                return UNKNOWN
            return self._attempt(lambda: _concat(self.env.static_context, parts))
        if isinstance(node, nodes.Filter) and node.node is not None and node.name in ALLOWED_FILTERS:
            return self._fold_filter(node)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            return self._fold_call(node, node.node)
        return UNKNOWN

    def _fold_call(self, node: nodes.Call, method: nodes.Getattr) -> Any:
        owner = self.fold(method.node)
        args, kwargs = self._arguments(node)
        if method.attr == "format" and isinstance(owner, str):  # its widths, whatever it formats
            self._attempt(lambda: self._format_widths(owner))
        if any(a is UNKNOWN for a in (*args, *kwargs.values())):
            return UNKNOWN
        if owner is UNKNOWN:  # a width is checked whatever it pads
            if method.attr in _WIDTH_METHODS:
                _check_size_arg(
                    self.budget, _arg(args, kwargs, 0, "width", 0), f"the {method.attr} method's width"
                )
            return UNKNOWN
        context = self.env.static_context
        return self._attempt(
            lambda: self.env.call(context, self.env.getattr(owner, method.attr), *args, **kwargs)
        )

    def _fold_filter(self, node: nodes.Filter) -> Any:
        value = UNKNOWN if node.node is None else self.fold(node.node)
        args, kwargs = self._arguments(node)
        if value is UNKNOWN or any(a is UNKNOWN for a in (*args, *kwargs.values())):
            guard, _ = _FILTER_GUARDS[node.name]
            self._attempt(lambda: guard(self.budget, value, args, kwargs))
            return UNKNOWN
        return self._attempt(
            lambda: self.env.filters[node.name](self.env.static_context, value, *args, **kwargs)
        )

    def _format_widths(self, text: str) -> None:
        for _, _, spec, _ in Formatter().parse(text):
            for number in _DIGITS.findall(spec or ""):
                self.budget.allow_width(int(number), "a width or precision in a {} format")

    def _arguments(self, node: nodes.Filter | nodes.Call) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args = tuple(self.fold(arg) for arg in node.args)
        keywords = [keyword for keyword in node.kwargs if isinstance(keyword, nodes.Keyword)]
        return args, {keyword.key: self.fold(keyword.value) for keyword in keywords}

    @staticmethod
    def _attempt(run: Callable[[], Any]) -> Any:
        """What ``run`` returns; UNKNOWN when it fails other than by a limit (the render reports it)."""
        try:
            return run()
        except TemplateCheckError:  # a limit, or a refused argument (a literal one, here)
            raise
        except Exception:
            return UNKNOWN
