"""Each format rendered from a run's folder and parsed back: csv (and the zip of several), xlsx
(openpyxl), html (the default and a user template), pdf (pypdf: text and an embedded image); the
charts of each type, and the errors a chart or template can cause."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import re
import struct
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
import sqlalchemy as sa

from rule_compiler.reporting import charts as charts_module
from rule_compiler.reporting import xlsx as xlsx_module
from rule_compiler.reporting.charts import HEIGHT_PX, MAX_SLICES, WIDTH_PX, draw_chart
from rule_compiler.reporting.queries import run_query_to_csv
from rule_compiler.reporting.render_format import TABLE_ROWS, render_format
from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.reporting.workdir import Manifest, read_manifest, write_manifest

DAYS = 250
REGIONS = ["emea", "amer", "apac", "<b>nordics</b>"]
CHARTS: list[dict[str, Any]] = [
    {"id": "trend", "query": "daily", "type": "line", "x": "day", "y": ["orders", "revenue"], "title": "T"},
    {"id": "per-region", "query": "regions", "type": "bar", "x": "region", "y": ["revenue"], "title": "By"},
    {"id": "share", "query": "regions", "type": "pie", "x": "region", "y": ["revenue"], "title": "Share"},
    {"id": "top", "query": "regions", "type": "table", "y": ["region", "revenue"], "title": "Top regions"},
]
FORMATS = ["csv", "xlsx", "html", "pdf"]


def _daily(i: int) -> tuple[str, int, Decimal]:
    day = dt.date(2026, 1, 1) + dt.timedelta(days=i)
    return day.isoformat(), i % 7 + 1, Decimal(f"{1000 + i * 37}.{i % 100:02d}")


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Manifest]:
    """A run folder with two query results from a real SQLite database, and its manifest."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE daily (day TEXT, orders INTEGER, revenue NUMERIC)"))
        conn.execute(sa.text("CREATE TABLE regions (region TEXT, revenue NUMERIC, orders INTEGER)"))
        conn.execute(
            sa.text("INSERT INTO daily VALUES (:d, :o, :r)"),
            [{"d": d, "o": o, "r": str(r)} for d, o, r in map(_daily, range(DAYS))],
        )
        conn.execute(
            sa.text("INSERT INTO regions VALUES (:g, :r, :o)"),
            [{"g": g, "r": 1000 * (n + 1) + 0.5, "o": n + 2} for n, g in enumerate(REGIONS)],
        )
    workdir = tmp_path / "run"
    workdir.mkdir()
    results = [
        run_query_to_csv(
            engine, sql, {}, query_id=query_id, row_limit=10_000, timeout=30, path=workdir / f"{query_id}.csv"
        )
        for query_id, sql in (
            ("daily", "SELECT day, orders, revenue FROM daily ORDER BY day"),
            ("regions", "SELECT region, revenue, orders FROM regions ORDER BY revenue DESC"),
        )
    ]
    engine.dispose()
    manifest = Manifest(
        report_id="acme/weekly-sales",
        interval_start="2026-11-09T06:00:00+00:00",
        interval_end="2026-11-16T06:00:00+00:00",
        logical_date="2026-11-09T06:00:00+00:00",
        parameters={"min_total": 10},
        results=results,
        timezone="Europe/Berlin",
    )
    write_manifest(workdir, manifest)
    return workdir, read_manifest(workdir)


def _render(run: tuple[Path, Manifest], fmt: str, **options: Any) -> Path:
    workdir, manifest = run
    arguments: dict[str, Any] = {
        "title": "weekly-sales",
        "description": "Orders & revenue per day",
        "charts": CHARTS,
        "template": None,
        "formats": FORMATS,
    }
    return render_format(fmt, workdir, manifest, **(arguments | options))


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_of_one_query_is_its_result_file(run: tuple[Path, Manifest]) -> None:
    workdir, manifest = run
    single = Manifest(**{**manifest.__dict__, "results": manifest.results[:1]})
    path = render_format("csv", workdir, single, title="t", description="", charts=[], template=None)
    assert path.name == "weekly-sales.csv"
    header, *rows = _csv_rows(path.read_text(encoding="utf-8"))
    assert header == ["day", "orders", "revenue"]
    assert [(d, int(o), Decimal(r)) for d, o, r in rows] == list(map(_daily, range(DAYS)))


def test_csv_of_several_queries_is_a_zip_of_one_csv_each(run: tuple[Path, Manifest]) -> None:
    path = _render(run, "csv")
    assert path.name == "weekly-sales.csv.zip"
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["daily.csv", "regions.csv"]
        regions = _csv_rows(archive.read("regions.csv").decode("utf-8"))
        daily = _csv_rows(archive.read("daily.csv").decode("utf-8"))
    assert regions[0] == ["region", "revenue", "orders"]
    assert [r[0] for r in regions[1:]] == list(reversed(REGIONS))
    assert len(daily) == DAYS + 1


def test_xlsx_has_a_sheet_per_query_with_a_styled_header_and_numbers_as_numbers(
    run: tuple[Path, Manifest],
) -> None:
    path = _render(run, "xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["daily", "regions", "About"]
    daily = book["daily"]
    rows = list(daily.iter_rows(values_only=True))
    assert rows[0] == ("day", "orders", "revenue")
    assert daily["A1"].font.b and daily.freeze_panes == "A2"
    assert len(rows) == DAYS + 1
    for (day, orders, revenue), (want_day, want_orders, want_revenue) in zip(
        rows[1:], map(_daily, range(DAYS)), strict=True
    ):
        assert isinstance(day, dt.datetime) and day.date().isoformat() == want_day  # an Excel date
        assert isinstance(orders, int) and orders == want_orders
        assert isinstance(revenue, int | float) and revenue == pytest.approx(float(want_revenue))
    regions = list(book["regions"].iter_rows(values_only=True))
    assert [r[0] for r in regions[1:]] == list(reversed(REGIONS))  # text stays text, unescaped
    about = {r[0]: r[1] for r in book["About"].iter_rows(values_only=True) if r[0]}
    assert about["Report"] == "acme/weekly-sales"
    assert about["Query daily"].startswith(f"{DAYS} rows on sheet daily")
    assert about["Parameter min_total"] == "10"


def test_xlsx_continues_a_result_larger_than_a_sheet(
    run: tuple[Path, Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx_module, "SHEET_ROWS", 100)  # 99 data rows per sheet
    book = openpyxl.load_workbook(_render(run, "xlsx"), read_only=True)
    assert book.sheetnames == ["daily", "daily (2)", "daily (3)", "regions", "About"]
    days = []
    for name in ("daily", "daily (2)", "daily (3)"):
        header, *rows = book[name].iter_rows(values_only=True)
        assert header == ("day", "orders", "revenue")
        days += [row[0].date().isoformat() for row in rows]
    assert days == [_daily(i)[0] for i in range(DAYS)]


def test_html_default_report_has_the_title_charts_and_capped_tables(run: tuple[Path, Manifest]) -> None:
    html = _render(run, "html").read_text(encoding="utf-8")
    assert "<title>Weekly sales</title>" in html and "Orders &amp; revenue per day" in html
    assert "9 Nov 2026, 07:00 → 16 Nov 2026, 07:00 (Europe/Berlin)" in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # line, bar, pie; the table chart is a table
    assert all(_png_size(base64.b64decode(image)) == (WIDTH_PX, HEIGHT_PX) for image in images)
    daily = html[html.index("<h2>daily</h2>") :]
    assert daily.count("<tr>") == TABLE_ROWS + 1  # header and the first 200 rows
    assert f"{DAYS - TABLE_ROWS} more rows in the attachments." in daily
    assert _daily(TABLE_ROWS - 1)[0] in daily and _daily(TABLE_ROWS)[0] not in daily
    assert "&lt;b&gt;nordics&lt;/b&gt;" in html and "<b>nordics</b>" not in html
    assert "<h2>regions</h2>" not in html  # shown by the table chart instead
    assert "weekly-sales.csv.zip, weekly-sales.xlsx, weekly-sales.html, weekly-sales.pdf" in html


def test_pdf_has_the_title_rows_and_a_chart_image(run: tuple[Path, Manifest]) -> None:
    reader = pypdf.PdfReader(_render(run, "pdf"))
    assert len(reader.pages) > 3
    texts = [page.extract_text() for page in reader.pages]
    assert "Weekly sales" in texts[0] and "Europe/Berlin" in texts[0]
    everything = "\n".join(texts)
    assert "2026-01-01" in everything and _daily(TABLE_ROWS - 1)[0] in everything
    assert _daily(TABLE_ROWS)[0] not in everything
    assert f"{DAYS - TABLE_ROWS} more rows in the attachments." in everything
    assert "<b>nordics</b>" in everything
    table_pages = [t for t in texts if "2026-0" in t]
    assert len(table_pages) > 1 and all("revenue" in t for t in table_pages)  # the header repeats
    images = []
    for page in reader.pages:
        xobjects = page["/Resources"].get("/XObject") or {}
        images += [name for name, ref in xobjects.items() if ref.get_object()["/Subtype"] == "/Image"]
    assert len(images) >= 3


@pytest.mark.parametrize("kind", ["bar", "line", "pie"])
def test_each_chart_type_draws_a_bounded_png(run: tuple[Path, Manifest], kind: str) -> None:
    chart = draw_chart({"id": "c", "query": "daily", "type": kind, "x": "day", "y": ["revenue"]}, run[1])
    assert chart.png is not None and _png_size(chart.png) == (WIDTH_PX, HEIGHT_PX)
    assert chart.data_uri is not None and chart.data_uri.startswith("data:image/png;base64,")
    assert bool(chart.note) == (kind != "line")  # a bar chart and a pie show part of 250 rows, and say so


def test_a_line_chart_reads_at_most_max_points(
    run: tuple[Path, Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts_module, "MAX_POINTS", 100)
    chart = draw_chart({"id": "c", "query": "daily", "type": "line", "x": "day", "y": ["orders"]}, run[1])
    assert chart.note == f"Showing the first 100 of {DAYS} rows."


def test_a_pie_sums_the_smallest_slices_as_other(run: tuple[Path, Manifest]) -> None:
    chart = draw_chart({"id": "p", "query": "daily", "type": "pie", "x": "day", "y": ["orders"]}, run[1])
    assert chart.note == f"The rows after the first {MAX_SLICES - 1} are summed as Other."
    small = draw_chart(
        {"id": "p", "query": "regions", "type": "pie", "x": "region", "y": ["revenue"]}, run[1]
    )
    assert small.note == "" and small.png is not None


def test_a_table_chart_lists_the_chosen_columns(run: tuple[Path, Manifest]) -> None:
    chart = draw_chart({"id": "t", "query": "regions", "type": "table", "y": ["orders", "region"]}, run[1])
    assert chart.png is None and chart.columns == ["orders", "region"]
    assert chart.rows == [[len(REGIONS) + 1 - n, g] for n, g in enumerate(reversed(REGIONS))]


def test_a_chart_naming_a_missing_column_is_a_clear_error(run: tuple[Path, Manifest]) -> None:
    bad = {"id": "rev", "query": "daily", "type": "bar", "x": "day", "y": ["revenu"]}
    with pytest.raises(ReportRenderError) as caught:
        _render(run, "html", charts=[bad])
    assert str(caught.value) == (
        "chart 'rev' uses column 'revenu', but query 'daily' returned day, orders, revenue; "
        "fix the chart's x/y or the query's SELECT list"
    )
    assert not (run[0] / "weekly-sales.html").exists()
    with pytest.raises(ReportRenderError, match="reads query 'nope', which the report has not"):
        draw_chart({"id": "x", "query": "nope", "type": "table"}, run[1])
    with pytest.raises(ReportRenderError, match="column 'region' of query 'regions' holds '<b>nordics</b>'"):
        draw_chart({"id": "x", "query": "regions", "type": "bar", "x": "orders", "y": ["region"]}, run[1])


def test_a_user_template_gets_the_whole_context_autoescaped(run: tuple[Path, Manifest]) -> None:
    template = (
        "<h1>{{ report.title }} ({{ report.id }})</h1><p>{{ run.interval_start }}|{{ run.period }}</p>"
        "{% for row in queries.regions.rows %}<li>{{ row[0] }}={{ row[1] + 1 }}</li>{% endfor %}"
        "<p>{{ queries.daily.row_count }} {{ queries.daily.rows | length }} {{ queries.daily.truncated }}</p>"
        '<img src="{{ charts.share.image }}"><p>{{ charts.top.rows[0][0] }}</p>'
        "<p>{{ parameters.min_total }}</p><p>{{ files | join(',') }}</p>"
    )
    html = _render(run, "html", template=template).read_text(encoding="utf-8")
    assert html.startswith("<h1>Weekly sales (acme/weekly-sales)</h1><p>2026-11-09T06:00:00+00:00|9 Nov 2026")
    assert "<li>&lt;b&gt;nordics&lt;/b&gt;=4001.5</li><li>apac=3001.5</li>" in html  # numbers typed
    assert f"<p>{DAYS} {TABLE_ROWS} False</p>" in html
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+">', html)
    assert "<p>&lt;b&gt;nordics&lt;/b&gt;</p><p>10</p>" in html
    assert "<p>weekly-sales.csv.zip,weekly-sales.xlsx,weekly-sales.html,weekly-sales.pdf</p>" in html


def test_a_template_that_fails_is_a_render_error(run: tuple[Path, Manifest]) -> None:
    with pytest.raises(ReportRenderError, match=r"the report template failed to render: .*'nope'"):
        _render(run, "html", template="{{ report.nope }}")
    with pytest.raises(ReportRenderError, match="cannot be used: unknown template variable 'conn'"):
        _render(run, "html", template="{{ conn.password }}")
    with pytest.raises(ReportRenderError, match="unknown report format 'docx'"):
        _render(run, "docx")
