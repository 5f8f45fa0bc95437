"""A report's charts: bar, line and pie drawn as PNG with matplotlib (Agg, no display), or a table.

Each chart reads one query's result file, and only its first rows (:data:`MAX_POINTS` for a line,
:data:`MAX_BARS` categories for a bar chart, :data:`MAX_SLICES` for a pie, the rest summed into
"Other"), so a chart stays legible and its image small (:data:`WIDTH_PX` x :data:`HEIGHT_PX`)
whatever the result's size. A chart naming a column the query did not return is a
:class:`~rule_compiler.reporting.report_errors.ReportRenderError` (registration checks it when the SQL says
its columns; otherwise here, when the query has run).

A bar or line chart with ``fill: daily`` reads dates on its ``x`` axis and draws every day of the
run's interval in the report's time zone (from the day the interval starts to the day it ends,
both included when partly covered), 0 where the query has no row; the query's rows stay as they
are (a row on a day outside the interval is drawn too), only the missing days are added.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.reporting.result_rows import converters, first_rows, is_number, iter_rows, typed
from rule_compiler.reporting.workdir import Manifest, QueryResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_POINTS = 2_000
MAX_BARS = 40
MAX_SLICES = 10
TABLE_ROWS = 200
#: The most days ``fill: daily`` adds (ten years): beyond them a chart shows only its first bars anyway.
MAX_FILL_DAYS = 3_660
WIDTH_PX, HEIGHT_PX, DPI = 900, 420, 100
PALETTE = (
    "#2563eb", "#f59e0b", "#16a34a", "#dc2626", "#7c3aed",
    "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569",
)  # fmt: skip
_INK, _MUTED, _GRID = "#1f2937", "#6b7280", "#e5e7eb"


@dataclass(frozen=True)
class Chart:
    """A drawn chart: ``png`` for bar/line/pie, ``columns``/``rows`` for a table; ``note`` says when
    only part of the result is shown. ``labels`` and ``series`` are what a bar, line or pie chart
    drew: the x labels and one value list per ``y`` column."""

    id: str
    title: str
    type: str
    query: str
    png: bytes | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""
    labels: list[str] = field(default_factory=list)
    series: list[list[float]] = field(default_factory=list)

    @property
    def data_uri(self) -> str | None:
        if self.png is None:
            return None
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def draw_charts(charts: Sequence[Mapping[str, Any]], manifest: Manifest) -> list[Chart]:
    """Every chart of the report, in order."""
    return [draw_chart(chart, manifest) for chart in charts]


def draw_chart(chart: Mapping[str, Any], manifest: Manifest) -> Chart:
    """One chart of the report (see the module's docstring)."""
    chart_id, kind = str(chart["id"]), str(chart["type"])
    title = str(chart.get("title") or chart_id)
    query = str(chart["query"])
    if query not in {r.id for r in manifest.results}:
        known = ", ".join(r.id for r in manifest.results)
        raise ReportRenderError(
            f"chart '{chart_id}' reads query '{query}', which the report has not (queries: {known})"
        )
    result = manifest.result(query)
    x = chart.get("x")
    y = [str(c) for c in chart.get("y") or []]
    _check_columns(chart_id, result, ([str(x)] if x else []) + y)
    base = Chart(id=chart_id, title=title, type=kind, query=query)
    if kind == "table":
        return _table(base, result, y or result.columns)
    if kind not in ("bar", "line", "pie"):
        raise ReportRenderError(f"chart '{chart_id}' has an unknown type '{kind}' (bar, line, pie, table)")
    limit = MAX_BARS if kind == "bar" else MAX_POINTS
    fill = chart.get("fill")
    if fill is not None and kind not in ("bar", "line"):
        raise ReportRenderError(f"chart '{chart_id}': `fill` applies to bar and line charts, not {kind}")
    if fill is not None and fill != "daily":
        raise ReportRenderError(f"chart '{chart_id}' has an unknown fill '{fill}' (daily)")
    labels, series, total = _series(chart_id, result, str(x), y, MAX_POINTS if fill else limit)
    what = "rows"
    if fill == "daily":
        labels, series = _fill_daily(chart_id, result, str(x), labels, series, days=_interval_days(manifest))
        total, what = len(labels), "days"
        labels, series = labels[:limit], [values[:limit] for values in series]
    if not labels:
        return Chart(chart_id, title, kind, query, note="No data for this period.")
    note = ""
    if kind == "pie":
        labels, series, note = _fold_other(labels, series, total)
    elif total > len(labels):
        note = f"Showing the first {len(labels):,} of {total:,} {what}."
    png = _draw(kind, labels, series, y)
    return Chart(chart_id, title, kind, query, png=png, note=note, labels=labels, series=series)


def _interval_days(manifest: Manifest) -> list[dt.date]:
    """Every day the run's interval touches, in the report's time zone (at most MAX_FILL_DAYS)."""
    zone = ZoneInfo(manifest.timezone)
    start = dt.datetime.fromisoformat(manifest.interval_start).astimezone(zone)
    end = dt.datetime.fromisoformat(manifest.interval_end).astimezone(zone)
    if end <= start:
        return []
    first, last = start.date(), (end - dt.timedelta(microseconds=1)).date()
    count = min((last - first).days + 1, MAX_FILL_DAYS)
    return [first + dt.timedelta(days=offset) for offset in range(count)]


def _fill_daily(
    chart_id: str,
    result: QueryResult,
    x: str,
    labels: list[str],
    series: list[list[float]],
    *,
    days: list[dt.date],
) -> tuple[list[str], list[list[float]]]:
    """The query's points in date order, with a 0 point for each day of ``days`` it has none on."""
    points: list[tuple[dt.date, int]] = []
    for index, label in enumerate(labels):
        try:
            points.append((dt.date.fromisoformat(label[:10]), index))
        except ValueError:
            raise ReportRenderError(
                f"chart '{chart_id}' fills days (fill: daily), but column '{x}' of query '{result.id}' "
                f"holds {label!r} on row {index + 1}, not a date (YYYY-MM-DD)"
            ) from None
    seen = {day for day, _ in points}
    points += [(day, -1) for day in days if day not in seen]
    points.sort(key=lambda point: (point[0], point[1] < 0))
    filled_labels = [labels[index] if index >= 0 else day.isoformat() for day, index in points]
    filled = [[values[index] if index >= 0 else 0.0 for _, index in points] for values in series]
    return filled_labels, filled


def _check_columns(chart_id: str, result: QueryResult, wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in result.columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ReportRenderError(
            f"chart '{chart_id}' uses column{'s' if len(missing) > 1 else ''} {names}, but query "
            f"'{result.id}' returned {', '.join(result.columns) or 'no columns'}; fix the chart's x/y "
            "or the query's SELECT list"
        )


def _table(base: Chart, result: QueryResult, columns: list[str]) -> Chart:
    indexes = [result.columns.index(c) for c in columns]
    rows = [[row[i] for i in indexes] for row in first_rows(result, TABLE_ROWS)]
    note = ""
    if result.row_count > len(rows):
        note = f"{result.row_count - len(rows):,} more rows in the attachments."
    return Chart(base.id, base.title, "table", base.query, columns=list(columns), rows=rows, note=note)


def _series(
    chart_id: str, result: QueryResult, x: str, y: list[str], limit: int
) -> tuple[list[str], list[list[float]], int]:
    """Labels and one float list per ``y`` column from the first ``limit`` rows; the row count."""
    readers = converters(result)
    xi, yis = result.columns.index(x), [result.columns.index(c) for c in y]
    labels: list[str] = []
    series: list[list[float]] = [[] for _ in y]
    for number, raw in enumerate(iter_rows(result), start=1):
        if number > limit:
            break
        row = typed(raw, readers)
        labels.append("" if row[xi] is None else str(row[xi]))
        for values, column, index in zip(series, y, yis, strict=True):
            value = row[index]
            if value is None:
                values.append(math.nan)
            elif is_number(value):
                values.append(float(value))
            else:
                raise ReportRenderError(
                    f"chart '{chart_id}': column '{column}' of query '{result.id}' holds {value!r} "
                    f"on row {number}, not a number; y columns must be numeric"
                )
    return labels, series, result.row_count


def _fold_other(
    labels: list[str], series: list[list[float]], total: int
) -> tuple[list[str], list[list[float]], str]:
    values = [0.0 if math.isnan(v) else v for v in series[0]]
    if any(v < 0 for v in values):
        raise ReportRenderError("a pie chart needs values of zero or more")
    unread = f" (only the first {len(labels):,} rows are read)" if total > len(labels) else ""
    if len(labels) <= MAX_SLICES:
        return labels, [values], f"Showing the first {len(labels):,} of {total:,} rows." if unread else ""
    kept = MAX_SLICES - 1
    note = f"The rows after the first {kept} are summed as Other{unread}."
    return [*labels[:kept], "Other"], [[*values[:kept], sum(values[kept:])]], note


def _draw(kind: str, labels: list[str], series: list[list[float]], names: list[str]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if kind == "pie":
        _pie(axes, labels, series[0])
    else:
        _bars_or_lines(axes, kind, labels, series, names)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _bars_or_lines(
    axes: Axes, kind: str, labels: list[str], series: list[list[float]], names: list[str]
) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    positions = list(range(len(labels)))
    width = 0.8 / len(series)
    for number, (values, name) in enumerate(zip(series, names, strict=True)):
        color = PALETTE[number % len(PALETTE)]
        if kind == "bar":
            offset = (number - (len(series) - 1) / 2) * width
            axes.bar([p + offset for p in positions], values, width=width * 0.95, color=color, label=name)
        else:
            marker = "o" if len(labels) <= 60 else None
            axes.plot(positions, values, color=color, linewidth=2, marker=marker, markersize=4, label=name)
    step = max(1, math.ceil(len(labels) / 24))
    axes.set_xticks(positions[::step], [_short(label) for label in labels[::step]])
    if step > 1 or (len(labels) > 6 and any(len(label) > 8 for label in labels[::step])):
        axes.tick_params(axis="x", labelrotation=45)
        for tick in axes.get_xticklabels():
            tick.set_horizontalalignment("right")
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.10g}"))
    axes.grid(axis="y", color=_GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(_MUTED)
    axes.tick_params(colors=_INK, labelsize=9, length=0)
    if len(series) > 1:
        axes.legend(frameon=False, fontsize=9, loc="upper left", ncols=min(len(series), 4))
    elif names:
        axes.set_ylabel(names[0], color=_MUTED, fontsize=9)


def _pie(axes: Axes, labels: list[str], values: list[float]) -> None:
    if not any(values):
        axes.text(0.5, 0.5, "All values are zero", ha="center", va="center", color=_MUTED)
        axes.set_axis_off()
        return
    wedges, _texts, _autotexts = axes.pie(
        values,
        colors=[PALETTE[i % len(PALETTE)] for i in range(len(values))],
        autopct=lambda share: f"{share:.0f}%" if share >= 4 else "",
        pctdistance=0.78,
        startangle=90,
        counterclock=False,
        wedgeprops={"width": 0.45, "edgecolor": "white", "linewidth": 1.5},
        textprops={"color": "white", "fontsize": 9, "fontweight": "bold"},
    )
    axes.legend(
        wedges, [_short(label, 28) for label in labels], frameon=False, fontsize=9,
        loc="center left", bbox_to_anchor=(1.0, 0.5),
    )  # fmt: skip
    axes.set_aspect("equal")


def _short(label: str, length: int = 18) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"
