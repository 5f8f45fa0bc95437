"""A query's card figures (its ``summary``): ``count`` of its rows, or ``count``, ``sum``, ``avg``,
``min`` or ``max`` of one of its columns, computed in one pass over its result file.

Numbers are read back exactly (integers and decimals, never floats), so ``sum(revenue)`` is the sum
of the values the query returned, shown with as many decimal places as the column's values have.
``sum`` of no rows is 0; ``avg``, ``min`` and ``max`` of no values are None (shown as a dash). NULL
cells are skipped, as SQL's aggregates skip them. A figure of a query cut at its row limit covers
the rows kept (``partial``).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.reporting.result_rows import MAX_DECIMALS, converters, display, is_number, iter_rows, typed
from rule_compiler.reporting.workdir import QueryResult

_FIGURE = re.compile(r"^(?P<function>count|sum|avg|min|max)(?:\((?P<column>[A-Za-z_][A-Za-z0-9_]*)\))?$")
EMPTY = "\u2013"  # an en dash


@dataclass(frozen=True)
class Figure:
    """One figure of a query: ``name`` (the summary's key), ``label`` (shown), ``value`` and ``text``."""

    query: str
    name: str
    label: str
    expression: str
    value: Any
    text: str
    partial: bool

    def as_context(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "name": self.name,
            "label": self.label,
            "figure": self.expression,
            "value": self.value,
            "text": self.text,
            "partial": self.partial,
        }


def label_of(name: str) -> str:
    """``revenue`` → ``Revenue``, ``paid_orders`` → ``Paid orders``."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def parse_figure(expression: str) -> tuple[str, str | None]:
    """``sum(revenue)`` → ``("sum", "revenue")``; ``count`` → ``("count", None)``."""
    match = _FIGURE.match("".join(expression.split()))
    if match is None or (match["column"] is None and match["function"] != "count"):
        raise ReportRenderError(
            f"'{expression}' is not a figure: count, or count/sum/avg/min/max of a column, e.g. sum(revenue)"
        )
    return match["function"], match["column"]


def compute_figures(
    result: QueryResult, summary: Sequence[Sequence[str]] | Mapping[str, str]
) -> list[Figure]:
    """Every figure of ``summary`` (``[[name, figure], ...]`` or a mapping) over ``result``'s rows."""
    pairs = list(summary.items()) if isinstance(summary, Mapping) else [(str(n), str(f)) for n, f in summary]
    if not pairs:
        return []
    parsed = [(name, expression, *parse_figure(expression)) for name, expression in pairs]
    indexes: list[int | None] = []
    for name, expression, _function, column in parsed:
        if column is not None and column not in result.columns:
            raise ReportRenderError(
                f"the figure '{name}' ({expression}) of query '{result.id}' uses column '{column}', but "
                f"the query returned {', '.join(result.columns) or 'no columns'}; fix the summary or the "
                "SELECT list"
            )
        indexes.append(None if column is None else result.columns.index(column))
    tallies = [_Tally(function) for _, _, function, _ in parsed]
    readers = converters(result)
    for number, raw in enumerate(iter_rows(result), start=1):
        row = typed(raw, readers)
        for tally, index, (name, expression, _, column) in zip(tallies, indexes, parsed, strict=True):
            value = None if index is None else row[index]
            try:
                tally.add(index is None, value)
            except TypeError:
                raise ReportRenderError(
                    f"the figure '{name}' ({expression}) of query '{result.id}': column '{column}' holds "
                    f"{value!r} on row {number}, which it cannot add up or compare; use a number column"
                ) from None
    return [
        Figure(
            query=result.id,
            name=name,
            label=label_of(name),
            expression=expression,
            value=tally.value(),
            text=tally.text(),
            partial=result.truncated,
        )
        for tally, (name, expression, _, _) in zip(tallies, parsed, strict=True)
    ]


class _Tally:
    """One aggregate, fed every row's value."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.count = 0
        self.total: int | decimal.Decimal = 0
        self.best: Any = None
        self.places = 0

    def add(self, whole_row: bool, value: Any) -> None:
        if whole_row:
            self.count += 1
            return
        if value is None:
            return
        if self.function == "count":
            self.count += 1
            return
        if self.function in ("sum", "avg"):
            if not is_number(value):
                raise TypeError(value)
            self.total += value
            self.count += 1
            self.places = max(self.places, _places(value))
            return
        if self.best is not None and is_number(value) != is_number(self.best):
            raise TypeError(value)
        if self.best is None or (value < self.best if self.function == "min" else value > self.best):
            self.best = value
        if is_number(value):
            self.places = max(self.places, _places(value))

    def value(self) -> Any:
        if self.function == "count":
            return self.count
        if self.function == "sum":
            return self.total
        if self.function == "avg":
            return None if self.count == 0 else decimal.Decimal(self.total) / self.count
        return self.best

    def text(self) -> str:
        value = self.value()
        if value is None:
            return EMPTY
        if self.function == "count":
            return display(value)
        if self.function == "avg":
            return display(value, min(MAX_DECIMALS, max(self.places, 2)))
        if is_number(value):
            return display(value, self.places)
        return display(value)


def _places(value: Any) -> int:
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        return min(MAX_DECIMALS, -exponent) if isinstance(exponent, int) and exponent < 0 else 0
    return 0
