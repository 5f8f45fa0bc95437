"""A report's card figures (a query's ``summary``), a chart's ``fill: daily``, query titles and the
XLSX's one number format per column, on small result files written here; and the definition fields
refusing what they cannot draw."""

from __future__ import annotations

import csv
import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pydantic import ValidationError

from rule_compiler.definitions.report import ReportChart, ReportQuery
from rule_compiler.reporting.charts import draw_chart
from rule_compiler.reporting.figures import compute_figures
from rule_compiler.reporting.render_format import render_format, template_context
from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.reporting.workdir import Manifest, QueryResult


def _result(
    folder: Path, query_id: str, columns: list[str], kinds: list[str], rows: list[list[Any]]
) -> QueryResult:
    path = folder / f"{query_id}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([["" if cell is None else str(cell) for cell in row] for row in rows])
    return QueryResult(query_id, columns, len(rows), False, path, None, kinds)


def _manifest(results: list[QueryResult], start: str, end: str, timezone: str) -> Manifest:
    return Manifest("acme/sales", start, end, start, {}, results, timezone)


SALES = [
    ["2026-03-02", 2, "10.5"],
    ["2026-03-04", 1, "3"],
    ["2026-03-05", 3, None],
]


def test_figures_count_sum_average_and_extremes(tmp_path: Path) -> None:
    result = _result(tmp_path, "daily", ["day", "orders", "revenue"], ["string", "integer", "number"], SALES)
    summary = [
        ["days", "count"],
        ["priced_days", "count(revenue)"],
        ["orders", "sum(orders)"],
        ["revenue", "sum(revenue)"],
        ["average", "avg(revenue)"],
        ["first_day", "min(day)"],
        ["best", "max(revenue)"],
    ]
    figures = {figure.name: figure for figure in compute_figures(result, summary)}

    assert [figure.label for figure in figures.values()][:4] == ["Days", "Priced days", "Orders", "Revenue"]
    assert {name: figure.value for name, figure in figures.items()} == {
        "days": 3,
        "priced_days": 2,  # NULL is skipped, as SQL's aggregates skip it
        "orders": 6,
        "revenue": Decimal("13.5"),
        "average": Decimal("6.75"),
        "first_day": "2026-03-02",
        "best": Decimal("10.5"),
    }
    assert figures["revenue"].text == "13.5" and figures["average"].text == "6.75"
    assert figures["orders"].text == "6" and not figures["orders"].partial


def test_figures_of_no_rows_and_wrong_columns(tmp_path: Path) -> None:
    empty = _result(tmp_path, "none", ["revenue"], [], [])
    figures = compute_figures(empty, {"n": "count", "revenue": "sum(revenue)", "avg": "avg(revenue)"})
    assert [(f.value, f.text) for f in figures] == [(0, "0"), (0, "0"), (None, "\u2013")]

    result = _result(tmp_path, "daily", ["day", "orders"], ["string", "integer"], [["x", 1]])
    with pytest.raises(ReportRenderError, match=r"uses column 'revnue', but the query returned day, orders"):
        compute_figures(result, [["revenue", "sum(revnue)"]])
    with pytest.raises(ReportRenderError, match=r"column 'day' holds 'x' on row 1"):
        compute_figures(result, [["days", "sum(day)"]])


def _chart(**extra: Any) -> dict[str, Any]:
    return {"id": "revenue", "query": "daily", "type": "bar", "x": "day", "y": ["revenue"], **extra}


def test_fill_daily_draws_every_day_of_the_interval_in_the_reports_time_zone(tmp_path: Path) -> None:
    result = _result(tmp_path, "daily", ["day", "orders", "revenue"], ["string", "integer", "number"], SALES)
    # Monday 2 March 07:00 to Monday 9 March 07:00 in Berlin (06:00 UTC): eight days touched
    manifest = _manifest([result], "2026-03-02T06:00:00+00:00", "2026-03-09T06:00:00+00:00", "Europe/Berlin")

    unfilled = draw_chart(_chart(), manifest)
    filled = draw_chart(_chart(fill="daily"), manifest)

    assert unfilled.labels == ["2026-03-02", "2026-03-04", "2026-03-05"]
    assert filled.labels == [f"2026-03-0{day}" for day in range(2, 10)]
    assert math.isnan(filled.series[0][3])  # the query's NULL stays a gap; only missing days become 0
    assert [v for i, v in enumerate(filled.series[0]) if i != 3] == [10.5, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0]

    # midnight to midnight in Tokyo: exactly the seven days, in that zone
    tokyo = _manifest([result], "2026-03-01T15:00:00+00:00", "2026-03-08T15:00:00+00:00", "Asia/Tokyo")
    assert draw_chart(_chart(fill="daily"), tokyo).labels == [f"2026-03-0{day}" for day in range(2, 9)]


def test_fill_keeps_rows_outside_the_interval_and_refuses_what_is_not_a_date(tmp_path: Path) -> None:
    rows = [["2026-02-27", 1, "5"], ["2026-03-03T10:00:00", 1, "7"]]
    result = _result(tmp_path, "daily", ["day", "orders", "revenue"], ["string", "integer", "number"], rows)
    bounds = ("2026-03-02T00:00:00+00:00", "2026-03-04T00:00:00+00:00")
    drawn = draw_chart(_chart(fill="daily"), _manifest([result], *bounds, "UTC"))
    assert drawn.labels == ["2026-02-27", "2026-03-02", "2026-03-03T10:00:00"]
    assert drawn.series == [[5.0, 0.0, 7.0]]

    odd = _result(tmp_path, "odd", ["day", "revenue"], ["string", "number"], [["March", "1"]])
    with pytest.raises(ReportRenderError, match=r"holds 'March' on row 1, not a date"):
        draw_chart({**_chart(fill="daily"), "query": "odd"}, _manifest([odd], *bounds, "UTC"))


def test_the_definition_fields_refuse_what_cannot_be_drawn() -> None:
    with pytest.raises(ValidationError, match="not a figure"):
        ReportQuery.model_validate(
            {"id": "q", "connection": "db", "sql": "SELECT 1", "summary": {"x": "median(a)"}}
        )
    with pytest.raises(ValidationError, match="bar or line chart, not a pie chart"):
        ReportChart.model_validate({**_chart(fill="daily"), "type": "pie"})
    with pytest.raises(ValidationError):
        ReportChart.model_validate(_chart(fill="weekly"))
    query = ReportQuery.model_validate(
        {"id": "q", "connection": "db", "sql": "SELECT 1", "summary": {"revenue": " sum( total ) "}}
    )
    assert query.summary == {"revenue": "sum(total)"}
    # optional keys left out stay out of the dumps (and so of content hashes)
    plain = ReportQuery.model_validate({"id": "q", "connection": "db", "sql": "SELECT 1"})
    assert {"title", "summary"}.isdisjoint(plain.model_dump(mode="json"))
    assert "fill" not in ReportChart.model_validate(_chart()).model_dump(mode="json")


def test_titles_head_the_tables_and_the_run_times_are_in_the_reports_zone(tmp_path: Path) -> None:
    result = _result(tmp_path, "daily", ["day", "orders", "revenue"], ["string", "integer", "number"], SALES)
    manifest = _manifest([result], "2026-03-02T06:00:00+00:00", "2026-03-09T06:00:00+00:00", "Europe/Berlin")
    options = [{"id": "daily", "title": "Orders per day", "summary": []}]
    context = template_context(manifest, "sales", "", (), query_options=options)
    assert (
        context["queries"]["daily"]["title"] == "Orders per day"
        and context["queries"]["daily"]["figures"] == []
    )
    assert context["run"]["start"] == dt.datetime(2026, 3, 2, 7, tzinfo=context["run"]["start"].tzinfo)
    assert str(context["run"]["end"].tzinfo) == "Europe/Berlin"
    assert context["run"]["interval_end"] == "2026-03-09T06:00:00+00:00"  # unchanged: ISO, UTC

    html = render_format(
        "html", tmp_path, manifest, title="sales", description="", charts=[], template=None, queries=options
    ).read_text(encoding="utf-8")
    assert "<h2>Orders per day</h2>" in html
    # no figures: each card counts its query's rows, under the query's title
    assert '<div class="label">Orders per day</div><div class="value">3 rows</div>' in html


def test_xlsx_gives_each_number_column_one_format(tmp_path: Path) -> None:
    rows = [["a", 8130, "1449.99", "3300.0", "0.125"], ["b", 2, "7", "12.0", "2"]]
    kinds = ["string", "integer", "number", "number", "number"]
    result = _result(tmp_path, "mixed", ["name", "count", "money", "floats", "rate"], kinds, rows)
    manifest = _manifest([result], "2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00", "UTC")
    path = render_format("xlsx", tmp_path, manifest, title="t", description="", charts=[], template=None)
    sheet = openpyxl.load_workbook(path)["mixed"]
    formats = [{row[i].number_format for row in sheet.iter_rows(min_row=2)} for i in range(1, 5)]
    assert formats == [{"#,##0"}, {"#,##0.00"}, {"#,##0"}, {"#,##0.000"}]
    assert [row[2].value for row in sheet.iter_rows(min_row=2)] == [1449.99, 7]
