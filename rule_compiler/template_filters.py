"""The allow-listed filters, tests and methods of the sandbox, each with the budget check that runs
before it (:mod:`rule_compiler.template_sandbox` installs them)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sized
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any, cast

from jinja2 import pass_context
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.tests import TESTS
from jinja2.utils import _PassArg

from rule_compiler.template_limits import (
    RenderBudget,
    TemplateCheckError,
    current_budget,
    measure,
)
from rule_compiler.template_operations import (
    UNKNOWN,
    _arg,
    _charge_comparison,
    _check_size_arg,
    _int,
    _length,
    _materialized,
    _sized,
    _text_size,
    percent_size,
)

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
