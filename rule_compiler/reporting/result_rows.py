"""Reading a query's result file back, one row at a time, with values typed by column kind.

CSV has no types: each column's kind (:data:`~rule_compiler.reporting.workdir.COLUMN_KINDS`, from the
first non-NULL value the query returned) says how to read its cells back. An empty cell is None; a
cell that does not parse as its column's kind stays text (SQLite columns may mix types).
"""

from __future__ import annotations

import csv
import decimal
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rule_compiler.reporting.workdir import QueryResult

#: A cell of a report may hold long text (JSON columns); csv's default cap is 128 KiB.
_FIELD_LIMIT = 64 * 1024 * 1024
MAX_DECIMALS = 6


def iter_rows(result: QueryResult) -> Iterator[list[str]]:
    """The data rows of ``result`` as CSV text (header skipped), streamed from its file."""
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with open(result.path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        yield from reader


def first_rows(result: QueryResult, limit: int) -> list[list[Any]]:
    """The first ``limit`` rows of ``result``, typed (see :func:`typed`)."""
    readers = converters(result)
    return [typed(row, readers) for row in itertools.islice(iter_rows(result), limit)]


def converters(result: QueryResult) -> list[Callable[[str], Any]]:
    """One reader per column, from its kind."""
    kinds = result.column_types or [""] * len(result.columns)
    return [_READERS.get(kind, _text) for kind in kinds]


def typed(row: list[str], readers: list[Callable[[str], Any]]) -> list[Any]:
    return [None if cell == "" else read(cell) for cell, read in zip(row, readers, strict=False)]


def number(text: str) -> int | decimal.Decimal | str:
    """An integer, a decimal, or the text itself when it is not a number."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return text
    return value if value.is_finite() else text


def _boolean(text: str) -> bool | str:
    lowered = text.lower()
    if lowered in ("true", "t", "1"):
        return True
    if lowered in ("false", "f", "0"):
        return False
    return text


def _text(text: str) -> str:
    return text


_READERS: dict[str, Callable[[str], Any]] = {"integer": number, "number": number, "boolean": _boolean}


def display(value: Any, decimals: int | None = None) -> str:
    """A value as a report shows it: numbers with thousands separators (and ``decimals`` places when
    given), None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if decimals is not None and is_number(value):
        return f"{value:,.{decimals}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, decimal.Decimal):
        return f"{value:,f}"
    if isinstance(value, float):
        text = f"{round(value, MAX_DECIMALS):,f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def display_table(rows: Sequence[Sequence[Any]], numeric: Sequence[bool]) -> list[list[tuple[str, bool]]]:
    """Rows as shown: each cell's text and whether it is a number column; a number column's values
    get the same number of decimal places (the most any of them has, at most :data:`MAX_DECIMALS`)."""
    places = [
        max((_decimals(row[i]) for row in rows if i < len(row) and is_number(row[i])), default=0)
        if number
        else None
        for i, number in enumerate(numeric)
    ]
    return [
        [(display(value, places[i] if i < len(places) else None), i < len(numeric) and numeric[i])
         for i, value in enumerate(row)]
        for row in rows
    ]  # fmt: skip


def _decimals(value: Any) -> int:
    if isinstance(value, int):
        return 0
    exact = value if isinstance(value, decimal.Decimal) else decimal.Decimal(repr(round(value, MAX_DECIMALS)))
    exponent = exact.as_tuple().exponent
    return min(MAX_DECIMALS, -exponent) if isinstance(exponent, int) and exponent < 0 else 0


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)
