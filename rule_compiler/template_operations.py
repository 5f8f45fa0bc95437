"""What each template operation may cost: the budget checks behind the sandbox's operators,
``%`` and ``{}`` formatting, loops, concatenation, slices and comparisons
(:mod:`rule_compiler.template_sandbox` wires them into Jinja)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jinja2 import pass_context
from jinja2.runtime import Context, Undefined, markup_join, str_join
from jinja2.sandbox import SandboxedFormatter
from markupsafe import EscapeFormatter, Markup

from rule_compiler.template_limits import (
    RenderBudget,
    TemplateCheckError,
    TemplateLimitError,
    current_budget,
    measure,
)

if TYPE_CHECKING:
    from rule_compiler.template_sandbox import SandboxEnvironment


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
