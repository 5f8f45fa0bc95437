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
"""

from __future__ import annotations

import functools
import math
import operator
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from datetime import date, time, timedelta
from decimal import Decimal
from string import Formatter
from typing import Any, cast

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context, Undefined, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.tests import TESTS
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

from rule_compiler.template_limits import (
    RenderBudget,
    TemplateCheckError,
    TemplateLimitError,
    TemplateLimits,
    active_budget,
    current_budget,
    measure,
)

__all__ = [
    "ALLOWED_FILTERS",
    "ALLOWED_METHODS",
    "ALLOWED_NODES",
    "ALLOWED_OPERATORS",
    "ALLOWED_TESTS",
    "MAX_NESTING",
    "SandboxEnvironment",
    "check_features",
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

UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "<unknown>"})()
"""A value only known when rendering (the static checks skip what depends on it)."""


# -- helpers ------------------------------------------------------------------------------------


def _text_size(value: Any, budget: RenderBudget) -> int:
    """How long ``str(value)`` is, about (exact for strings)."""
    return len(value) if isinstance(value, str) else measure(value, budget.limits.max_value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _count_items(budget: RenderBudget, iterator: Iterable[Any], what: str) -> list[Any]:
    """An iterator made into a list, refused once it passes the value limit."""
    items: list[Any] = []
    limit = budget.limits.max_value
    for item in iterator:
        items.append(item)
        if len(items) > limit:
            raise TemplateLimitError("max_value", limit, len(items), f"{what} made more items than that")
    budget.charge(len(items))
    return items


def _materialized(budget: RenderBudget, value: Any, what: str) -> Any:
    """Lazy iterators (a generator, ``reversed``) are walked here, counted, into a list."""
    if isinstance(value, Iterator):
        return _count_items(budget, value, what)
    return value


def _sized(budget: RenderBudget, value: Any, what: str) -> None:
    """An input a filter walks or copies: at most ``max_value`` items (characters of a string)."""
    if value is UNKNOWN:
        return
    if isinstance(value, Sized):
        budget.check_input(len(value), f"{what} over this many items")
        budget.charge(len(value))


def _check_size_arg(budget: RenderBudget, value: Any, what: str) -> int | None:
    number = _int(value)
    if number is not None:
        budget.check_input(number, what)
    return number


# -- % formatting ---------------------------------------------------------------------------------

_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?(?P<type>.?)", re.S
)
#: A number written out in full (``'%f' % 1e308``) has at most about this many characters.
_NUMBER_TEXT = 330


def percent_size(budget: RenderBudget, template: str, args: Any) -> int:
    """An upper bound of ``len(template % args)``; widths and precisions above
    ``max_format_width`` are refused."""
    size = len(template)
    positional = list(args) if isinstance(args, tuple) else [args]
    position = 0
    for match in _PERCENT.finditer(template):
        kind = match.group("type")
        if kind == "%":
            continue
        numbers = []
        for part in ("width", "precision"):
            text = match.group(part)
            if text == "*":
                raise TemplateCheckError("'*' widths in % formats are not allowed; write the width")
            if text:
                numbers.append(int(text))
                budget.allow_width(int(text), "a width or precision in a % format")
        if match.group("key") is not None:
            value = args[match.group("key")] if isinstance(args, Mapping) else None
        else:
            value = positional[position] if position < len(positional) else None
            position += 1
        content = _text_size(value, budget) if kind in {"s", "r", "a"} else _NUMBER_TEXT
        if kind in {"r", "a"}:
            content *= 10  # escapes: '\U0001f600' for one character
        size += max([content, *numbers]) + sum(numbers)
    return size


# -- {} formatting --------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


class _BudgetFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, counting what each field adds (``'{0}{0}{0}'.format(big)``)."""

    def __init__(self, env: SandboxEnvironment, budget: RenderBudget, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._budget = budget
        self._made = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            self._budget.check_input(
                _text_size(value, self._budget) * 10, "a {!r} conversion of a value this size"
            )
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _DIGITS.findall(format_spec):
            self._budget.allow_width(int(number), "a width or precision in a {} format")
        size = _text_size(value, self._budget)
        if isinstance(value, float | int | Decimal) and "f" in format_spec.lower():
            size = max(size, _NUMBER_TEXT)
        self._budget.check_input(self._made + size, "the text a {} format makes")
        text = super().format_field(value, format_spec)
        self._made += len(text)
        self._budget.check_input(self._made, "the text a {} format makes")
        return text


class _BudgetEscapeFormatter(_BudgetFormatter, EscapeFormatter):
    pass


class GuardedFormat:
    """``'...'.format`` as a template sees it: Jinja's sandboxed formatter, with a budget."""

    def __init__(self, env: SandboxEnvironment, text: str) -> None:
        self._env = env
        self._text = text

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        budget = current_budget()
        budget.operation()
        text = self._text
        formatter: _BudgetFormatter
        if isinstance(text, Markup):
            formatter = _BudgetEscapeFormatter(self._env, budget, escape=text.escape)
        else:
            formatter = _BudgetFormatter(self._env, budget)
        result = type(text)(formatter.vformat(text, args, kwargs))
        return budget.made(result, "the format method")  # type: ignore[no-any-return]


# -- operators --------------------------------------------------------------------------------------


def _bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _repeat_size(budget: RenderBudget, sequence: Any, count: int) -> int:
    count = max(count, 0)
    if isinstance(sequence, str):
        return len(sequence) * count
    one = measure(sequence, budget.limits.max_value)
    budget.charge(min(one, budget.limits.max_value))
    return max(one, 1) * count if len(sequence) else 0


_SEQUENCES = (str, list, tuple)


def _binop_guard(budget: RenderBudget, operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` when what it would make is known to be too big."""
    what = f"the {operator} operator would make"
    ints = _int(left) is not None and _int(right) is not None
    if operator == "*":
        if isinstance(left, _SEQUENCES) and _int(right) is not None:
            budget.allow(_repeat_size(budget, left, right), f"{what} a value of this size")
        elif isinstance(right, _SEQUENCES) and _int(left) is not None:
            budget.allow(_repeat_size(budget, right, left), f"{what} a value of this size")
        elif ints:
            budget.allow_int_bits(_bits(left) + _bits(right), f"{what} an integer of this many bits")
    elif operator == "**" and ints and right > 0 and abs(left) > 1:
        bits = math.ceil(right * math.log2(abs(left)))
        budget.allow_int_bits(bits, f"{what} an integer of this many bits")
    elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        budget.allow(_text_size(left, budget) + _text_size(right, budget), f"{what} a value of this size")
    elif operator == "+" and ints:
        budget.allow_int_bits(max(_bits(left), _bits(right)) + 1, f"{what} an integer of this many bits")
    elif operator == "%" and isinstance(left, str):
        budget.allow(percent_size(budget, left, right), f"{what} a text of this size")


def guarded_binop(env: SandboxEnvironment, operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right`` once what it makes is known to fit the budget (checked again after:
    an integer's bits, a sequence's length)."""
    budget = current_budget()
    budget.operation()
    _binop_guard(budget, operator, left, right)
    result = env.binop_table[operator](left, right)
    if isinstance(result, int) and not isinstance(result, bool):
        budget.allow_int_bits(
            result.bit_length(), f"the {operator} operator made an integer of this many bits"
        )
    elif isinstance(result, str | list | tuple) and len(result) > budget.limits.max_value:
        budget.allow(len(result), f"the {operator} operator made a value of this size")
    return result


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    """``a ~ b ~ c``: every part written as text, once their total fits the budget."""
    budget = current_budget()
    budget.operation()
    budget.allow(
        sum(_text_size(part, budget) for part in parts), "the ~ operator would make a text this long"
    )
    joined = markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)
    if len(joined) > budget.limits.max_value:  # escaping made it longer
        budget.check_input(len(joined), "the ~ operator made a text this long")
    return joined


class _CountedIterable:
    """A ``for`` loop's iterable: each item it hands out is one iteration of the render's budget."""

    def __init__(self, iterable: Any, body_nodes: int) -> None:
        self._iterable = iterable
        self._body_nodes = body_nodes

    def __len__(self) -> int:
        return len(self._iterable)

    def __iter__(self) -> Iterator[Any]:
        budget = current_budget()
        for item in self._iterable:
            budget.iterate(self._body_nodes)
            yield item


@pass_context
def _loop(context: Context, iterable: Any, body_nodes: int) -> _CountedIterable:
    return _CountedIterable(iterable, body_nodes)


@pass_context
def _slice(context: Context, value: Any, start: Any, stop: Any, step: Any) -> Any:
    """``value[start:stop:step]``: the copy it makes is counted."""
    budget = current_budget()
    budget.operation()
    result = value[start:stop:step]
    if isinstance(result, Sized):
        budget.charge(len(result))
    return result


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda item, container: item in container,
    "notin": lambda item, container: item not in container,
}


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sized) and not isinstance(value, Undefined) else 0


def _charge_comparison(budget: RenderBudget, op: str, left: Any, right: Any) -> None:
    """A comparison walks its operands: ``in`` its container, ``==``, ``<``... the shorter one
    (two lists of 150,000 items compared in a loop are not free)."""
    budget.operation()
    cost = _length(right) if op in {"in", "notin"} else min(_length(left), _length(right))
    if cost:
        budget.charge(cost)


@pass_context
def _compare(context: Context, values: list[Any], ops: tuple[str, ...]) -> Any:
    """A comparison chain (``a == b``, ``a in b``, ``a < b < c``), each step counted."""
    budget = current_budget()
    left, result = values[0], True
    for op, right in zip(ops, values[1:], strict=True):
        _charge_comparison(budget, op, left, right)
        result = _COMPARISONS[op](left, right)
        if not result:
            return result
        left = right
    return result


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    """Every ``{{ expression }}`` before it becomes text: refused when it would pass the output cap."""
    budget = current_budget()
    budget.will_output(_text_size(value, budget))
    return value


# -- filters --------------------------------------------------------------------------------------

Guard = Callable[[RenderBudget, Any, tuple[Any, ...], Mapping[str, Any]], None]


def _text_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if value is not UNKNOWN:
        budget.check_input(_text_size(value, budget), "a filter's input text of this size")


def _items_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    _sized(budget, value, "a filter")


def _center_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = _check_size_arg(budget, _arg(args, kwargs, 0, "width", 80), "the center filter's width")
    if value is not UNKNOWN:
        budget.check_input(max(_text_size(value, budget), width or 0), "the center filter's result")


def _indent_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    each = (
        len(width) if isinstance(width, str) else _check_size_arg(budget, width, "the indent filter's width")
    )
    if each is None or value is UNKNOWN:
        return
    _text_guard(budget, value, args, kwargs)
    text = value if isinstance(value, str) else str(value)
    budget.check_input(len(text) + (text.count("\n") + 1) * each, "the indent filter's result")


def _wordwrap_guard(
    budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    width = _check_size_arg(budget, _arg(args, kwargs, 0, "width", 79), "the wordwrap filter's width")
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    if width is None or width < 1 or value is UNKNOWN:
        return
    length = _text_size(value, budget)
    budget.check_input(length, "the wordwrap filter's input")
    breaks = length // width + 1 + (value.count("\n") if isinstance(value, str) else 0)
    budget.check_input(length + breaks * (len(wrap) if isinstance(wrap, str) else 1), "wordwrap's result")


def _truncate_guard(
    budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    _check_size_arg(budget, _arg(args, kwargs, 0, "length", 255), "the truncate filter's length")
    _text_guard(budget, value, args, kwargs)


def _replace_guard(
    budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    old, new = _arg(args, kwargs, 0, "old", None), _arg(args, kwargs, 1, "new", None)
    count = _check_size_arg(budget, _arg(args, kwargs, 2, "count", None), "the replace filter's count")
    if value is UNKNOWN or not isinstance(old, str) or not isinstance(new, str):
        return
    text = value if isinstance(value, str) else None
    if text is None:
        _text_guard(budget, value, args, kwargs)
        text = str(value)
    _replace_size(budget, text, old, new, count=count, what="the replace filter")


def _replace_size(
    budget: RenderBudget, text: str, old: str, new: str, *, count: int | None, what: str
) -> None:
    budget.check_input(len(text), f"{what}'s input")
    found = text.count(old)
    if count is not None and count >= 0:
        found = min(found, count)
    budget.check_input(len(text) + found * max(0, len(new) - len(old)), f"{what}'s result")


def _format_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if isinstance(value, str):
        budget.check_input(percent_size(budget, value, kwargs or args), "the format filter's result")


def _join_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if value is UNKNOWN:
        return
    separator = _arg(args, kwargs, 0, "d", "")
    _sized(budget, value, "the join filter")
    items = value if isinstance(value, Sized) else ()
    size = measure(value, budget.limits.max_value) if not isinstance(value, str) else len(value)
    if isinstance(separator, str):
        size += len(separator) * max(0, len(items) - 1)
    budget.check_input(size, "the join filter's result")


def _batch_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    size = _check_size_arg(budget, _arg(args, kwargs, 0, "linecount", None), "the batch filter's size")
    _sized(budget, value, "the batch filter")
    if size is not None and size > 0 and value is not UNKNOWN and isinstance(value, Sized):
        fill = size if _arg(args, kwargs, 1, "fill_with", None) is not None else 0
        made = measure(value, budget.limits.max_value) + -(-len(value) // size) + fill
        budget.check_input(made, "the batch filter's result")


def _slice_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    slices = _check_size_arg(budget, _arg(args, kwargs, 0, "slices", None), "the slice filter's count")
    _sized(budget, value, "the slice filter")
    if slices is not None and value is not UNKNOWN and isinstance(value, Sized):
        made = measure(value, budget.limits.max_value) + 2 * max(slices, 0)
        budget.check_input(made, "the slice filter's result")


def _sum_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    start = _arg(args, kwargs, 1, "start", 0)
    if start is not UNKNOWN and not isinstance(start, int | float | Decimal):
        raise TemplateCheckError("the sum filter adds numbers: its start must be a number")
    _sized(budget, value, "the sum filter")


def _round_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    precision = _int(_arg(args, kwargs, 0, "precision", 0))
    if precision is not None:
        budget.allow_width(abs(precision), "the round filter's precision")


def _tojson_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    indent = _arg(args, kwargs, 0, "indent", None)
    if indent is not None and indent is not UNKNOWN and not (_int(indent) is not None and 0 <= indent <= 8):
        raise TemplateCheckError("the tojson filter's indent must be a number from 0 to 8")
    if value is not UNKNOWN:
        budget.check_input(measure(value, budget.limits.max_value), "the tojson filter's input")


def _trim_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    chars = _arg(args, kwargs, 0, "chars", None)
    if isinstance(chars, str):
        budget.allow_width(len(chars), "the characters the trim filter strips")
    _text_guard(budget, value, args, kwargs)


def _int_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if isinstance(value, Decimal) and value.is_finite():
        budget.allow_int_bits(math.ceil(max(value.adjusted(), 0) * 3.33), "the int filter would make")
    _text_guard(budget, value, args, kwargs)


def _no_guard(budget: RenderBudget, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    return None


#: filter name -> (guard run before it, whether its result is a new value to check and count).
#: Filters that only pick or count (``default``, ``first``, ``length``...) hand back a value that
#: already existed: it is not counted again.
_FILTER_GUARDS: dict[str, tuple[Guard, bool]] = {
    "abs": (_no_guard, False),
    "batch": (_batch_guard, True),
    "capitalize": (_text_guard, True),
    "center": (_center_guard, True),
    "count": (_no_guard, False),
    "d": (_no_guard, False),
    "default": (_no_guard, False),
    "dictsort": (_items_guard, True),
    "e": (_text_guard, True),
    "escape": (_text_guard, True),
    "filesizeformat": (_no_guard, False),
    "first": (_no_guard, False),
    "float": (_text_guard, False),
    "forceescape": (_text_guard, True),
    "format": (_format_guard, True),
    "groupby": (_items_guard, True),
    "indent": (_indent_guard, True),
    "int": (_int_guard, True),
    "items": (_items_guard, True),
    "join": (_join_guard, True),
    "last": (_no_guard, False),
    "length": (_no_guard, False),
    "list": (_items_guard, True),
    "lower": (_text_guard, True),
    "map": (_items_guard, True),
    "max": (_items_guard, False),
    "min": (_items_guard, False),
    "reject": (_items_guard, True),
    "rejectattr": (_items_guard, True),
    "replace": (_replace_guard, True),
    "reverse": (_items_guard, True),
    "round": (_round_guard, False),
    "select": (_items_guard, True),
    "selectattr": (_items_guard, True),
    "slice": (_slice_guard, True),
    "sort": (_items_guard, True),
    "string": (_text_guard, True),
    "sum": (_sum_guard, True),
    "title": (_text_guard, True),
    "tojson": (_tojson_guard, True),
    "trim": (_trim_guard, True),
    "truncate": (_truncate_guard, True),
    "unique": (_items_guard, True),
    "upper": (_text_guard, True),
    "urlencode": (_text_guard, True),
    "wordcount": (_text_guard, False),
    "wordwrap": (_wordwrap_guard, True),
}
#: The filters a template may use. Refused: ``attr`` (reaches attributes around the sandbox's
#: checks), ``safe`` (row values unescaped into HTML), ``pprint``, ``random``, ``striptags``,
#: ``urlize`` and ``xmlattr`` (not needed; unbounded or non-deterministic).
ALLOWED_FILTERS = frozenset(_FILTER_GUARDS)
#: Every Jinja test (each answers a yes/no question in constant or linear time).
ALLOWED_TESTS = frozenset(TESTS)


def _guarded_filter(name: str) -> Callable[..., Any]:
    func = FILTERS[name]
    guard, makes = _FILTER_GUARDS[name]
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.operation()
        value = _materialized(budget, value, f"the {name} filter's input")
        guard(budget, value, args, kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        result = _materialized(budget, result, f"the {name} filter")
        if makes:
            return budget.made(result, f"the {name} filter")
        if isinstance(result, int) and not isinstance(result, bool):
            budget.allow_int_bits(result.bit_length(), f"the {name} filter made an integer of this many bits")
        return result

    guarded.__name__ = f"guarded_{name}"
    return guarded


def _guarded_test(name: str) -> Callable[..., Any]:
    func = cast("Callable[..., Any]", TESTS[name])
    pass_arg = _PassArg.from_obj(func)

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        _charge_comparison(budget, "in" if name == "in" else "eq", value, args[0] if args else None)
        if pass_arg is _PassArg.environment:
            return func(context.environment, value, *args, **kwargs)
        return func(value, *args, **kwargs)

    guarded.__name__ = f"guarded_{name}"
    return guarded


# -- methods --------------------------------------------------------------------------------------

_STR_MAKERS = frozenset(
    {
        "capitalize",
        "casefold",
        "center",
        "join",
        "ljust",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rjust",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "strip",
        "swapcase",
        "title",
        "upper",
        "zfill",
    }
)
_STR_QUERIES = frozenset(
    {
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "rfind",
        "rindex",
        "startswith",
    }
)
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_DATE_METHODS = frozenset({"date", "isoformat", "isoweekday", "strftime", "time", "weekday"})
_TIMEDELTA_METHODS = frozenset({"total_seconds"})
#: The methods a template may call (and ``format`` on a string, through the sandbox's formatter).
ALLOWED_METHODS = frozenset(
    _STR_MAKERS
    | _STR_QUERIES
    | _MAPPING_METHODS
    | _SEQUENCE_METHODS
    | _DATE_METHODS
    | _TIMEDELTA_METHODS
    | {"format"}
)


def _method_kind(owner: Any, name: str) -> str | None:
    """``"make"`` (a new string or list: checked after), ``"query"`` (an existing value or a
    number), or None when templates may not call it."""
    if isinstance(owner, str):
        return "make" if name in _STR_MAKERS else "query" if name in _STR_QUERIES else None
    if isinstance(owner, Mapping):
        return "query" if name in _MAPPING_METHODS else None
    if isinstance(owner, list | tuple):
        return "query" if name in _SEQUENCE_METHODS else None
    if isinstance(owner, date | time):
        return "make" if name in {"strftime", "isoformat"} else "query" if name in _DATE_METHODS else None
    if isinstance(owner, timedelta):
        return "query" if name in _TIMEDELTA_METHODS else None
    return None


def _method_guard(
    budget: RenderBudget, owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Before an allow-listed method runs: what it walks is counted (a string's, a list's length),
    and what it would make is refused when too big (widths, replacements, joins)."""
    what = f"the {name} method"
    if isinstance(owner, str) and name in _STR_MAKERS:
        budget.check_input(len(owner), f"{what} on a text of this size")
    budget.charge(_length(owner))
    if isinstance(owner, str):
        if name in _WIDTH_METHODS:
            width = _check_size_arg(budget, _arg(args, kwargs, 0, "width", 0), f"{what}'s width")
            budget.check_input(max(len(owner), width or 0), f"{what}'s result")
        elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            count = _int(_arg(args, kwargs, 2, "count", -1))
            _replace_size(budget, owner, args[0], args[1], count=count, what=what)
        elif name == "join" and args:
            items = args[0]
            _sized(budget, items, what)
            if isinstance(items, Sized):
                size = measure(items, budget.limits.max_value) + len(owner) * max(0, len(items) - 1)
                budget.check_input(size, f"{what}'s result")
        elif name in {"strip", "lstrip", "rstrip"} and args and isinstance(args[0], str):
            budget.allow_width(len(args[0]), f"the characters {what} strips")
    elif name == "strftime" and args and isinstance(args[0], str):
        budget.allow_width(len(args[0]), "the length of a strftime format")


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
