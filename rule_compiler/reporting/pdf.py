"""The pdf format (fpdf2): the default HTML report's content on A4 — title, description, period,
the summary figures (else row counts), each chart as an image (a table chart as a table), then each
query's first rows.

Tables repeat their header row on every page they run onto; a table of more than
:data:`PORTRAIT_COLUMNS` columns gets landscape pages. Text is set in DejaVu Sans (shipped with
matplotlib), so any Latin, Greek or Cyrillic text prints; long cells are shortened.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from rule_compiler.reporting.charts import HEIGHT_PX, WIDTH_PX, Chart

PORTRAIT_COLUMNS = 6
CELL_CHARACTERS = 60
_FONT = "DejaVu"
_INK, _MUTED, _ACCENT = (31, 41, 55), (107, 114, 128), (31, 58, 95)
_STRIPE, _RULE = (248, 250, 252), (209, 213, 219)


class _Document(FPDF):
    def __init__(self, footer: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer
        fonts = _font_folder()
        self.add_font(_FONT, "", str(fonts / "DejaVuSans.ttf"))
        self.add_font(_FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
        self.set_margins(16, 16, 16)
        self.set_auto_page_break(auto=True, margin=16)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=8)
        self.set_text_color(*_MUTED)
        self.cell(0, 6, f"{self._footer_text}  ·  page {self.page_no()} of {{nb}}", align="C")


def _font_folder() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def write_pdf(path: Path, context: Mapping[str, Any], charts: Sequence[Chart]) -> None:
    report, run = context["report"], context["run"]
    pdf = _Document(str(report["id"]))
    pdf.set_title(str(report["title"]))
    pdf.set_author(str(report["organization"]))
    pdf.set_creator("automation rule engine")
    pdf.add_page()
    _masthead(pdf, report, run, context["parameters"], context["queries"])
    charts_by_id = {chart.id: chart for chart in charts}
    for chart_id, chart in context["charts"].items():
        drawn = charts_by_id[chart_id]
        if drawn.png is not None:
            _image(pdf, chart["title"], drawn.png, chart["note"])
        elif chart["type"] == "table":
            _table(
                pdf,
                chart["title"],
                chart["header"],
                chart["display"],
                [chart["note"]] if chart["note"] else [],
            )
        else:
            _heading(pdf, chart["title"], 20)
            _note(pdf, chart["note"] or "No data for this period.")
    for query_id, query in context["queries"].items():
        if query["in_table_chart"]:
            continue
        notes = []
        if query["more"] > 0:
            notes.append(f"{query['more']:,} more rows in the attachments.")
        if query["truncated"]:
            notes.append("The query returned more rows than its row limit; the rest were left out.")
        _table(pdf, str(query.get("title") or query_id), query["header"], query["display"], notes)
    pdf.output(str(path))


def _masthead(
    pdf: _Document,
    report: Mapping[str, Any],
    run: Mapping[str, Any],
    parameters: Mapping[str, Any],
    queries: Mapping[str, Any],
) -> None:
    pdf.set_text_color(*_MUTED)
    pdf.set_font(_FONT, size=8)
    pdf.cell(0, 5, f"REPORT · {str(report['organization']).upper()}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_ACCENT)
    pdf.set_font(_FONT, "B", 20)
    pdf.multi_cell(0, 9, str(report["title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_INK)
    pdf.set_font(_FONT, size=10)
    if report["description"]:
        pdf.multi_cell(0, 5, str(report["description"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_MUTED)
    pdf.multi_cell(0, 6, str(run["period"]), new_x="LMARGIN", new_y="NEXT")
    if parameters:
        shown = ", ".join(f"{key} = {value}" for key, value in parameters.items())
        pdf.multi_cell(0, 5, f"Parameters: {shown}", new_x="LMARGIN", new_y="NEXT")
    figures = [figure for query in queries.values() for figure in query.get("figures") or []]
    if figures:  # the queries' summary figures (orders, revenue...), else the row count of each
        line = "   ".join(f"{figure['label']}: {figure['text']}" for figure in figures)
    else:
        line = "   ".join(
            f"{query.get('title') or query_id}: {query['row_count']:,}{'+' if query['truncated'] else ''}"
            " rows"
            for query_id, query in queries.items()
        )
    pdf.set_text_color(*_INK)
    pdf.set_font(_FONT, "B", 11)
    pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*_RULE)
    pdf.line(pdf.l_margin, pdf.get_y() + 2, pdf.w - pdf.r_margin, pdf.get_y() + 2)
    pdf.ln(4)


def _heading(pdf: _Document, text: str, room: float) -> None:
    """A section heading, on a new page when less than ``room`` mm would follow it."""
    if pdf.get_y() + 12 + room > pdf.page_break_trigger:
        pdf.add_page(orientation=pdf.cur_orientation.value)
    pdf.ln(3)
    pdf.set_text_color(*_ACCENT)
    pdf.set_font(_FONT, "B", 13)
    pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _note(pdf: _Document, text: str) -> None:
    pdf.set_text_color(*_MUTED)
    pdf.set_font(_FONT, size=8)
    pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")


def _image(pdf: _Document, title: str, png: bytes, note: str) -> None:
    _orientation(pdf, "P")
    height = pdf.epw * HEIGHT_PX / WIDTH_PX
    _heading(pdf, title, height)
    pdf.image(io.BytesIO(png), w=pdf.epw, h=height, alt_text=title)
    if note:
        _note(pdf, note)


def _table(
    pdf: _Document,
    title: str,
    header: Sequence[tuple[str, bool]],
    rows: Sequence[Sequence[tuple[str, bool]]],
    notes: list[str],
) -> None:
    _orientation(pdf, "L" if len(header) > PORTRAIT_COLUMNS else "P")
    _heading(pdf, title, 20)
    if not rows:
        _note(pdf, "No rows in this period.")
        for note in notes:
            _note(pdf, note)
        return
    pdf.set_font(_FONT, size=8)
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_RULE)
    aligns = tuple("RIGHT" if numeric else "LEFT" for _, numeric in header)
    with pdf.table(
        col_widths=_weights(header, rows),
        text_align=aligns,
        line_height=pdf.font_size * 1.7,
        headings_style=FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=_ACCENT),
        cell_fill_color=_STRIPE,
        cell_fill_mode="ROWS",
        borders_layout="HORIZONTAL_LINES",
        repeat_headings=1,
        padding=(0.8, 1.5),
    ) as table:
        table.row([_short(name) for name, _ in header])
        for row in rows:
            table.row([_short(text) for text, _ in row])
    for note in notes:
        _note(pdf, note)


def _orientation(pdf: _Document, wanted: str) -> None:
    if pdf.cur_orientation.value != wanted:
        pdf.add_page(orientation=wanted)


def _weights(
    header: Sequence[tuple[str, bool]], rows: Sequence[Sequence[tuple[str, bool]]]
) -> tuple[float, ...]:
    weights = []
    for index, (name, _) in enumerate(header):
        longest = max([len(name), *(len(row[index][0]) for row in rows[:50] if index < len(row))])
        weights.append(float(min(max(longest, 4), CELL_CHARACTERS // 2)))
    return tuple(weights)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CELL_CHARACTERS else flat[: CELL_CHARACTERS - 1] + "…"
