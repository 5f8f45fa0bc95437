"""The xlsx format: one sheet per query, rows streamed from its result file (XlsxWriter's
``constant_memory`` mode writes each row out as soon as the next one starts).

Numbers are written as numbers, booleans as booleans, dates and date-times as Excel dates (UTC);
text as text, never as a formula. Each number column has one number format, chosen from its first
:data:`SAMPLE_ROWS` values: ``#,##0`` when they are whole, else ``#,##0.00`` with as many decimal
places as the most any of them has (at most :data:`MAX_PLACES`), so 8130 and 1449.99 in one column
show as 8,130.00 and 1,449.99. A sheet holds at most :data:`SHEET_ROWS` rows; a larger result
continues on ``<query id> (2)`` and so on. The last sheet, ``About``, says what the file holds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xlsxwriter

from rule_compiler.reporting.interval import period_text
from rule_compiler.reporting.result_rows import iter_rows
from rule_compiler.reporting.workdir import Manifest, QueryResult

#: Excel's row limit, header included.
SHEET_ROWS = 1_048_576
#: Rows read ahead to size the columns.
SAMPLE_ROWS = 200
MAX_WIDTH = 60
#: The most decimal places a number column's format shows.
MAX_PLACES = 6
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")
_HEADER = {"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F3A5F", "border": 0, "valign": "vcenter"}


class _Formats:
    def __init__(self, book: Any) -> None:
        self._book = book
        self._numbers: dict[int, Any] = {}
        self.header = book.add_format(_HEADER)
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.title = book.add_format({"bold": True, "font_size": 16})
        self.label = book.add_format({"bold": True, "font_color": "#6B7280"})

    def number(self, places: int) -> Any:
        """``#,##0`` (no places) or ``#,##0.00...``, one format object per number of places."""
        if places not in self._numbers:
            pattern = "#,##0" + ("." + "0" * places if places else "")
            self._numbers[places] = self._book.add_format({"num_format": pattern})
        return self._numbers[places]


def write_xlsx(path: Path, manifest: Manifest, *, title: str, description: str) -> None:
    book = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "remove_timezone": True,
        },
    )
    formats = _Formats(book)
    names: set[str] = set()
    sheets: list[tuple[str, str]] = []
    try:
        for result in manifest.results:
            for name in _write_query(book, formats, result, names):
                sheets.append((result.id, name))
        _write_about(
            book, formats, manifest, title=title, description=description, sheets=sheets, names=names
        )
    finally:
        book.close()


def _write_query(book: Any, formats: _Formats, result: QueryResult, names: set[str]) -> list[str]:
    """Write ``result`` to one sheet (more when it has more rows than a sheet holds); their names."""
    rows = iter_rows(result)
    sample = list(itertools.islice(rows, SAMPLE_ROWS))
    kinds = _kinds(result, sample)
    writers = _cell_writers(kinds, formats, _places(kinds, sample))
    widths = _widths(result.columns, sample)
    pending: Iterator[list[str]] = itertools.chain(sample, rows)
    written: list[str] = []
    while True:
        name = _sheet_name(result.id if not written else f"{result.id} ({len(written) + 1})", names)
        sheet = book.add_worksheet(name)
        written.append(name)
        for column, width in enumerate(widths):
            sheet.set_column(column, column, width)
        sheet.freeze_panes(1, 0)
        for column, heading in enumerate(result.columns):
            sheet.write_string(0, column, heading, formats.header)
        count = 0
        for count, row in enumerate(itertools.islice(pending, SHEET_ROWS - 1), start=1):
            for column, (text, write) in enumerate(zip(row, writers, strict=False)):
                if text != "":
                    write(sheet, count, column, text)
        if result.columns:
            sheet.autofilter(0, 0, max(count, 1), len(result.columns) - 1)
        if count < SHEET_ROWS - 1:
            return written
        following = next(pending, None)
        if following is None:
            return written
        pending = itertools.chain([following], pending)


Writer = Callable[[Any, int, int, str], None]


def _kinds(result: QueryResult, sample: list[list[str]]) -> list[str]:
    """The columns' kinds; a text column whose sampled values are all ISO dates (or date-times, as
    SQLite returns them) is written as dates."""
    kinds = list(result.column_types or [""] * len(result.columns))
    for index, kind in enumerate(kinds):
        values = [row[index] for row in sample if index < len(row) and row[index] != ""]
        if kind != "string" or not values:
            continue
        if all(_ISO_DATE.match(value) for value in values):
            kinds[index] = "date"
        elif all(_ISO_DATETIME.match(value) for value in values):
            kinds[index] = "datetime"
    return kinds


def _places(kinds: list[str], sample: list[list[str]]) -> list[int]:
    """Per column, the decimal places its number format shows: the most any sampled value has as
    written (a float's ``3300.0`` counts as whole), at most MAX_PLACES; 0 for other columns."""
    places = []
    for index, kind in enumerate(kinds):
        most = 0
        if kind in ("integer", "number"):
            for row in sample:
                value = row[index] if index < len(row) else ""
                if "." in value and "e" not in value and "E" not in value:
                    fraction = value.split(".", 1)[1]
                    most = max(most, 0 if fraction == "0" else len(fraction))
        places.append(min(most, MAX_PLACES))
    return places


def _cell_writers(kinds: list[str], formats: _Formats, places: list[int]) -> list[Writer]:
    def text(sheet: Any, row: int, column: int, value: str) -> None:
        sheet.write_string(row, column, value)

    def numeric(number_format: Any) -> Writer:
        def write(sheet: Any, row: int, column: int, value: str) -> None:
            try:  # no exception on the common path: a decimal point or exponent means a float
                whole = not ("." in value or "e" in value or "E" in value)
                parsed: float = int(value) if whole else float(value)
            except ValueError:
                sheet.write_string(row, column, value)
                return
            if (whole and abs(parsed) < 2**53) or (not whole and math.isfinite(parsed)):
                sheet.write_number(row, column, parsed, number_format)
            else:
                sheet.write_string(row, column, value)

        return write

    def boolean(sheet: Any, row: int, column: int, value: str) -> None:
        lowered = value.lower()
        if lowered in ("true", "false"):
            sheet.write_boolean(row, column, lowered == "true")
        else:
            sheet.write_string(row, column, value)

    def date(sheet: Any, row: int, column: int, value: str) -> None:
        try:
            sheet.write_datetime(row, column, dt.date.fromisoformat(value), formats.date)
        except ValueError:
            sheet.write_string(row, column, value)

    def moment(sheet: Any, row: int, column: int, value: str) -> None:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            sheet.write_string(row, column, value)
            return
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC)
        sheet.write_datetime(row, column, parsed, formats.datetime)

    chosen: dict[str, Writer] = {"boolean": boolean, "date": date, "datetime": moment}
    return [
        numeric(formats.number(places[index])) if kind in ("integer", "number") else chosen.get(kind, text)
        for index, kind in enumerate(kinds)
    ]


def _widths(columns: list[str], sample: list[list[str]]) -> list[float]:
    widths = []
    for index, heading in enumerate(columns):
        longest = max([len(heading), *(len(row[index]) for row in sample if index < len(row))])
        widths.append(min(MAX_WIDTH, max(8, longest * 1.1 + 2)))
    return widths


def _sheet_name(wanted: str, taken: set[str]) -> str:
    base = _SHEET_UNSAFE.sub("_", wanted).strip("'")[:31] or "Sheet"
    name, number_ = base, 2
    while name.lower() in taken:
        suffix = f" ({number_})"
        name, number_ = base[: 31 - len(suffix)] + suffix, number_ + 1
    taken.add(name.lower())
    return name


def _write_about(
    book: Any,
    formats: _Formats,
    manifest: Manifest,
    *,
    title: str,
    description: str,
    sheets: list[tuple[str, str]],
    names: set[str],
) -> None:
    sheet = book.add_worksheet(_sheet_name("About", names))
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 70)
    sheet.write_string(0, 0, title, formats.title)
    lines: list[tuple[str, str]] = [
        ("Report", manifest.report_id),
        ("Description", description),
        ("Period", period_text(manifest)),
        ("Interval start (UTC)", manifest.interval_start),
        ("Interval end (UTC)", manifest.interval_end),
    ]
    lines += [
        (f"Parameter {key}", "" if value is None else str(value))
        for key, value in manifest.parameters.items()
    ]
    for result in manifest.results:
        where = ", ".join(name for query, name in sheets if query == result.id)
        cut = " — cut at the row limit" if result.truncated else ""
        lines.append((f"Query {result.id}", f"{result.row_count:,} rows on sheet {where}{cut}"))
    for row, (label, value) in enumerate(lines, start=2):
        sheet.write_string(row, 0, label, formats.label)
        sheet.write_string(row, 1, value)
