"""The budgets of the template sandbox: what one render may make, and the counters that prove it stayed
within them.

Every author template is rendered by :mod:`rule_compiler.template_sandbox` under a
:class:`RenderBudget`. The sandbox asks the budget before it does anything whose cost grows with its
inputs — an operator, a filter, a method call, a loop iteration, a piece of output — so a template
stops with a :class:`TemplateLimitError` *before* it makes a string, list or number that is too big,
never after::

    InvalidValueError             (rule_compiler.errors: a RuleEngineError, also a ValueError)
    └── TemplateCheckError        a template is not acceptable (syntax, unknown name, refused feature)
        └── TemplateLimitError    a template would pass one of the limits below (``.limit`` names it,
                                  ``.maximum`` is its value); raised at registration when the limit
                                  is provably passed by literals, else while rendering

The limits (:class:`TemplateLimits`; rules and notifications use :data:`RULE_LIMITS`, report HTML
templates :data:`REPORT_LIMITS`, our own default report template :data:`DEFAULT_REPORT_LIMITS`):

``max_output``      characters a render produces, counted while it streams
``max_value``       the size of any value an operator, filter or method makes (see :func:`measure`)
``max_iterations``  loop iterations in one render, all loops together (nested ones included)
``max_steps``       loop iterations weighted by the size of the loop's body (template nodes run)
``max_work``        the total size of every value made or walked in one render (copies, joins,
                    searches, comparisons): bounds CPU and memory
``max_int_bits``    the size of an integer an operator makes
``max_format_width`` a width or precision in ``%`` / ``{}`` formats, a strftime format's length,
                    the ``chars`` of strip/trim
``max_template_length`` characters of template source
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from rule_compiler.errors import InvalidValueError

__all__ = [
    "DEFAULT_REPORT_LIMITS",
    "REPORT_LIMITS",
    "RULE_LIMITS",
    "RenderBudget",
    "RenderStats",
    "TemplateCheckError",
    "TemplateLimitError",
    "TemplateLimits",
    "active_budget",
    "current_budget",
    "measure",
]


class TemplateCheckError(InvalidValueError):
    """A template is not acceptable; the message says why (syntax, unknown variable, unsafe access)."""


class TemplateLimitError(TemplateCheckError):
    """A template would pass one of its limits. ``limit`` is the :class:`TemplateLimits` field
    (``"max_value"``, ...), ``maximum`` its value, ``requested`` what the template asked for."""

    def __init__(self, limit: str, maximum: int, requested: int, what: str) -> None:
        self.limit = limit
        self.maximum = maximum
        self.requested = requested
        self.what = what
        super().__init__(
            f"template limit {limit} = {maximum:,} exceeded: {what} ({requested:,}, more than {maximum:,})"
        )


@dataclass(frozen=True)
class TemplateLimits:
    """The budgets of one render (see the module docstring)."""

    max_output: int = 200_000
    max_value: int = 200_000
    max_iterations: int = 10_000
    max_steps: int = 200_000
    max_work: int = 2_000_000
    max_int_bits: int = 4_096
    max_format_width: int = 1_000
    max_template_length: int = 20_000


#: Rule actions (update/create_record values, webhook bodies, notification subjects and bodies,
#: recipients), notification templates, report subjects and storage paths.
RULE_LIMITS = TemplateLimits()
#: An author's HTML report template: up to 10 queries and 10 charts of 200 shown rows each, with
#: inline chart images (the output cap is the HTML report's).
REPORT_LIMITS = TemplateLimits(
    max_output=20_000_000,
    max_value=1_000_000,
    max_iterations=200_000,
    max_steps=4_000_000,
    max_work=40_000_000,
)
#: Our own ``default_report.html`` (trusted, never an author's): its loops are bounded by the report's
#: row caps (20 tables x 200 rows x their columns), so its iteration budget follows those caps.
DEFAULT_REPORT_LIMITS = TemplateLimits(
    max_output=20_000_000,
    max_value=1_000_000,
    max_iterations=2_000_000,
    max_steps=40_000_000,
    max_work=40_000_000,
)


@dataclass
class RenderStats:
    """What one render (or one :func:`~rule_compiler.templating.render_value` walk) used. A counter
    is only advanced once its limit allows it, so each stays within its limit even when the render
    stopped: the refused step is reported by the :class:`TemplateLimitError`, not counted."""

    iterations: int = 0  # loop iterations
    steps: int = 0  # loop iterations weighted by their body's size
    output: int = 0  # characters produced
    work: int = 0  # total size of the values operators, filters and methods made
    operations: int = 0  # operators, filters and method calls run
    largest_value: int = 0  # the biggest value one of them made


@dataclass
class RenderBudget:
    """The limits of a render and its counters; every check raises :class:`TemplateLimitError`."""

    limits: TemplateLimits = RULE_LIMITS
    stats: RenderStats = field(default_factory=RenderStats)

    def _fail(self, limit: str, requested: int, what: str) -> TemplateLimitError:
        return TemplateLimitError(limit, getattr(self.limits, limit), requested, what)

    def iterate(self, body_nodes: int) -> None:
        """One loop iteration over a body of ``body_nodes`` template nodes."""
        stats = self.stats
        if stats.iterations + 1 > self.limits.max_iterations:
            raise self._fail("max_iterations", stats.iterations + 1, "loop iterations in this render")
        if stats.steps + body_nodes + 1 > self.limits.max_steps:
            raise self._fail("max_steps", stats.steps + body_nodes + 1, "template nodes run by loops")
        stats.iterations += 1
        stats.steps += body_nodes + 1

    def operation(self) -> None:
        """An operator, filter or method call is about to run (each costs one unit of work)."""
        self.charge(1)
        self.stats.operations += 1

    def charge(self, units: int) -> None:
        """Work about to be done (items walked, characters copied)."""
        if self.stats.work + units > self.limits.max_work:
            raise self._fail(
                "max_work", self.stats.work + units, "total size of the values made in this render"
            )
        self.stats.work += units

    def allow(self, size: int, what: str) -> None:
        """Before making a value of ``size`` (see :func:`measure`): refuse it when too big, else
        count it."""
        if size > self.limits.max_value:
            raise self._fail("max_value", size, what)
        self.charge(size)
        self.stats.largest_value = max(self.stats.largest_value, size)

    def check_input(self, size: int, what: str) -> None:
        """An input an operation would copy or walk: refuse it above the value limit."""
        if size > self.limits.max_value:
            raise self._fail("max_value", size, what)

    def allow_int_bits(self, bits: int, what: str) -> None:
        if bits > self.limits.max_int_bits:
            raise self._fail("max_int_bits", bits, what)

    def allow_width(self, width: int, what: str) -> None:
        if width > self.limits.max_format_width:
            raise self._fail("max_format_width", width, what)

    def made(self, value: Any, what: str) -> Any:
        """After making a value whose size was bounded only by a constant factor of checked inputs:
        check and count it; return it."""
        if isinstance(value, int) and not isinstance(value, bool):
            self.allow_int_bits(value.bit_length(), f"{what} made an integer of this many bits")
        self.allow(measure(value, self.limits.max_value), f"{what} made a value of this size")
        return value

    def will_output(self, size: int) -> None:
        """Before converting a value of ``size`` to output text."""
        if self.stats.output + size > self.limits.max_output:
            raise self._fail("max_output", self.stats.output + size, "characters of rendered output")

    def output(self, chars: int) -> None:
        """``chars`` characters are about to be added to the output."""
        if self.stats.output + chars > self.limits.max_output:
            raise self._fail("max_output", self.stats.output + chars, "characters of rendered output")
        self.stats.output += chars


_CURRENT: ContextVar[RenderBudget | None] = ContextVar("template_budget", default=None)


def current_budget() -> RenderBudget:
    """The budget of the render in progress. Outside a render (a filter called by hand, or Jinja
    folding a constant) a fresh budget with :data:`RULE_LIMITS` bounds that one call."""
    budget = _CURRENT.get()
    return budget if budget is not None else RenderBudget()


@contextmanager
def active_budget(budget: RenderBudget) -> Iterator[RenderBudget]:
    """Make ``budget`` the one the sandbox charges while the block runs."""
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def _int_digits(value: int) -> int:
    return value.bit_length() * 30103 // 100000 + 1  # log10(2) ~ 0.30103


def _decimal_size(value: decimal.Decimal) -> int:
    if not value.is_finite():
        return 3
    digits, exponent = value.as_tuple()[1:]
    return len(digits) + abs(int(exponent))  # its length written out in full ('{:f}')


def measure(value: Any, limit: int) -> int:
    """The size of a value as the sandbox counts it: characters of a string, digits of a number,
    1 for another scalar, and for a container one per item (keys and values of a mapping) plus the
    items' sizes. Containers are walked only until the total passes ``limit`` (then a number above
    ``limit`` is returned), so measuring costs at most about ``limit`` steps."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            total += 1
        elif isinstance(item, int):
            total += _int_digits(item)
        elif isinstance(item, decimal.Decimal):
            total += _decimal_size(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset) or _is_view(item):
            total += len(item)
            if total <= limit:
                pending.extend(item)
        else:
            total += 1  # dates, Undefined, loop state: a bounded text
        if total > limit:
            return total
    return total


def _is_view(item: Any) -> bool:
    return type(item).__name__ in {"dict_keys", "dict_values", "dict_items"}
