"""Render one format of a report run from its folder: ``<report name>.<format>``.

- ``csv``: the query's result file as is; with several queries, a zip holding one ``<query id>.csv``
  each (``<report name>.csv.zip``). Streamed, never loaded.
- ``xlsx``: one sheet per query (header row styled, numbers as numbers, dates as dates) and an
  ``About`` sheet; rows streamed (:mod:`rule_compiler.reporting.xlsx`).
- ``html``: the report's template (or our default) rendered in the sandbox with the context of
  :func:`template_context`: charts as inline PNG data URIs, the first :data:`TABLE_ROWS` rows of each
  query (:mod:`rule_compiler.reporting.html`). Beside it, ``<report name>.email/``: the same template
  and context with the charts as ``cid:`` inline images, the email delivery's body
  (:mod:`rule_compiler.reporting.email_body`).
- ``pdf``: the same content as the default HTML: title, period, charts, tables that paginate
  (:mod:`rule_compiler.reporting.pdf`). A report's own template shapes the HTML only.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rule_compiler.definitions.report import REPORT_FORMATS
from rule_compiler.reporting.charts import Chart
from rule_compiler.reporting.interval import period_text
from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.reporting.result_rows import display_table, first_rows, is_number
from rule_compiler.reporting.workdir import Manifest
from rule_compiler.reporting.xlsx import write_xlsx
from rule_compiler.sql_check import QUERY_PARAMETERS

__all__ = [
    "FORMATS",
    "TABLE_ROWS",
    "ReportRenderError",
    "output_name",
    "render_format",
    "template_context",
]

FORMATS = REPORT_FORMATS
#: Rows of each query shown in the HTML and PDF (every row is in the csv and xlsx files).
TABLE_ROWS = 200
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def output_name(manifest: Manifest, fmt: str) -> str:
    """The file a format is rendered to: ``<report name>.<fmt>`` (``.csv.zip`` for several queries)."""
    name = manifest.report_id.rsplit("/", 1)[-1]
    if fmt == "csv" and len(manifest.results) > 1:
        return f"{name}.csv.zip"
    return f"{name}.{fmt}"


def render_format(
    fmt: str,
    workdir: Path,
    manifest: Manifest,
    *,
    title: str,
    description: str,
    charts: list[dict[str, Any]],
    template: str | None,
    formats: Sequence[str] = (),
    queries: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``<workdir>/<output_name>`` for ``fmt`` and return its path.

    ``formats``: the report's formats, so a template can name the files (``files``) sent with it.
    ``queries``: each query's ``id``, ``title`` and ``summary`` (``[[name, figure], ...]``), as the
    compiled render task holds them.
    """
    if fmt not in FORMATS:
        raise ReportRenderError(f"unknown report format '{fmt}' (formats: {', '.join(FORMATS)})")
    target = Path(workdir) / output_name(manifest, fmt)
    partial = target.with_name(target.name + ".partial")
    try:
        if fmt == "csv":
            _render_csv(manifest, partial)
        elif fmt == "xlsx":
            write_xlsx(partial, manifest, title=display_title(title), description=description)
        else:
            from rule_compiler.reporting.charts import draw_charts

            drawn = draw_charts(charts, manifest)
            context = template_context(manifest, title, description, drawn, formats, query_options=queries)
            if fmt == "html":
                from rule_compiler.reporting.email_body import email_folder, write_email_body
                from rule_compiler.reporting.html import render_html

                partial.write_text(render_html(template, context), encoding="utf-8")
                write_email_body(email_folder(target), template, context, drawn)
            else:
                from rule_compiler.reporting.pdf import write_pdf

                write_pdf(partial, context, drawn)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _render_csv(manifest: Manifest, target: Path) -> None:
    if len(manifest.results) == 1:
        shutil.copyfile(manifest.results[0].path, target)
        return
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for result in manifest.results:
            archive.write(result.path, arcname=f"{result.id}.csv")


def display_title(title: str) -> str:
    """A slug (``weekly-sales``) as a title (``Weekly sales``); other titles unchanged."""
    if not _SLUG.match(title):
        return title
    words = re.split(r"[-_]", title)
    return " ".join([words[0].capitalize(), *words[1:]])


def template_context(
    manifest: Manifest,
    title: str,
    description: str,
    charts: Sequence[Chart],
    formats: Sequence[str] = (),
    *,
    query_options: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """What a report template reads: ``report``, ``run``, ``queries``, ``charts``, ``parameters``,
    ``files`` (see docs/definitions.md, "Reports").

    ``query_options``: each query's ``id``, ``title`` and ``summary`` (``[[name, figure], ...]``);
    the figures are computed from the query's result file. ``run.start`` and ``run.end`` are the
    interval's bounds in the report's time zone (aware datetimes: ``run.end.strftime('%d %b %Y')``).
    """
    from rule_compiler.reporting.figures import compute_figures

    organization, _, name = manifest.report_id.rpartition("/")
    in_tables = {chart.query for chart in charts if chart.type == "table"}
    options = {str(option["id"]): option for option in query_options}
    queries: dict[str, Any] = {}
    for result in manifest.results:
        rows = first_rows(result, TABLE_ROWS)
        numeric = _numeric_columns(result.column_types, rows, len(result.columns))
        option = options.get(result.id, {})
        computed = [figure.as_context() for figure in compute_figures(result, option.get("summary") or [])]
        queries[result.id] = {
            "id": result.id,
            "title": str(option.get("title") or result.id),
            "summary": {figure["name"]: figure["value"] for figure in computed},
            "figures": computed,
            "partial_figures": bool(computed) and result.truncated,
            "columns": list(result.columns),
            "rows": rows,
            "row_count": result.row_count,
            "truncated": result.truncated,
            "shown": len(rows),
            "more": result.row_count - len(rows),
            "header": list(zip(result.columns, numeric, strict=True)),
            "display": display_table(rows, numeric),
            "file": f"{result.id}.csv",
            "in_table_chart": result.id in in_tables,
        }
    return {
        "report": {
            "id": manifest.report_id,
            "organization": organization,
            "name": name,
            "title": display_title(title),
            "description": description,
            "timezone": manifest.timezone,
        },
        "run": {
            "interval_start": manifest.interval_start,
            "interval_end": manifest.interval_end,
            "logical_date": manifest.logical_date,
            "start": _local(manifest.interval_start, manifest.timezone),
            "end": _local(manifest.interval_end, manifest.timezone),
            "period": period_text(manifest),
        },
        "queries": queries,
        "charts": {chart.id: _chart_context(chart, queries) for chart in charts},
        "parameters": {k: v for k, v in manifest.parameters.items() if k not in QUERY_PARAMETERS},
        "files": [output_name(manifest, fmt) for fmt in formats],
    }


def _chart_context(chart: Chart, queries: Mapping[str, Any]) -> dict[str, Any]:
    numeric = _numeric_columns([], chart.rows, len(chart.columns))
    query = queries.get(chart.query, {})
    return {
        "id": chart.id,
        "title": chart.title,
        "type": chart.type,
        "query": chart.query,
        "image": chart.data_uri,
        "columns": list(chart.columns),
        "rows": chart.rows,
        "header": list(zip(chart.columns, numeric, strict=True)),
        "display": display_table(chart.rows, numeric),
        "row_count": query.get("row_count", 0),
        "note": chart.note,
    }


def _numeric_columns(kinds: Sequence[str], rows: Sequence[Sequence[Any]], width: int) -> list[bool]:
    """Columns shown right-aligned: numeric by kind, or (no kind) every non-NULL value a number."""
    if kinds:
        return [kind in ("integer", "number") for kind in kinds]
    return [
        any(row[i] is not None for row in rows) and all(row[i] is None or is_number(row[i]) for row in rows)
        for i in range(width)
    ]


def _local(moment: str, timezone: str) -> dt.datetime:
    """An ISO timestamp of the manifest (UTC) in the report's time zone."""
    return dt.datetime.fromisoformat(moment).astimezone(ZoneInfo(timezone))
