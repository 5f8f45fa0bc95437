"""The demo's weekly sales report tells one story: its queries run against the demo database built
by the demo setup (include/demo/create_demo_db.py) for a fixed week, and every figure it shows is
checked against the seed rows, computed here in Python:

- the daily rows and the top customers count the same orders (cancelled and void left out in both);
- the revenue chart has every day of the interval, 0 where no order was placed;
- the cards show the orders and the revenue, not row counts; the query table has its title;
- the email subject says the period in the report's time zone, as the body does; the message is dated;
- the XLSX shows one number format per column.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.policy
import re
from collections import defaultdict
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.cli import main
from rule_compiler.compiler.report import render_task_id
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document
from rule_compiler.reporting.charts import draw_chart
from rule_compiler.reporting.render_format import template_context
from rule_compiler.reporting.workdir import Manifest, read_manifest
from rule_compiler.runtime.messages import email_message
from rule_compiler.runtime.report_delivery import ReportRunInfo, render_subject, report_email
from tests.conftest import DEMO_CATALOG, ROOT
from tests.demo_db import demo_db_module

REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"
DEMO_NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)  # a Friday
BERLIN = ZoneInfo("Europe/Berlin")
# `--date 2026-11-23` (a Monday): the week that ends there at 07:00 Berlin (06:00 UTC in November).
START = dt.datetime(2026, 11, 16, 7, tzinfo=BERLIN)
END = dt.datetime(2026, 11, 23, 7, tzinfo=BERLIN)
NOT_COUNTED = ("cancelled", "void")


def _counted_orders() -> list[dict[str, Any]]:
    """The seed orders the report must count: created in the week, not cancelled or void, with a total."""
    customers, orders = demo_db_module().seed_rows(DEMO_NOW)
    names = {row["id"]: row["name"] for row in customers}
    counted = []
    for order in orders:
        in_week = START <= order["created_at"] < END
        # a NULL total is not >= min_total (0): not counted either
        if in_week and order["status"] not in NOT_COUNTED and order["total"] is not None:
            counted.append({**order, "customer": names.get(order["customer_id"], "Guest checkout")})
    return counted


def _expected_daily() -> dict[str, tuple[int, Decimal]]:
    days: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for order in _counted_orders():
        day = days[order["created_at"].astimezone(dt.UTC).date().isoformat()]
        day[0] += 1
        day[1] += order["total"]
    return {day: (count, total) for day, (count, total) in sorted(days.items())}


def _expected_top() -> list[tuple[str, int, Decimal]]:
    per_customer: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for order in _counted_orders():
        per_customer[order["customer"]][0] += 1
        per_customer[order["customer"]][1] += order["total"]
    rows = [(name, count, total) for name, (count, total) in per_customer.items()]
    return sorted(rows, key=lambda row: (-row[2], row[0]))[:20]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo report rendered in every format for the week, as `rule-compiler report run` does it."""
    folder = tmp_path_factory.mktemp("weekly-sales")
    engine = sa.create_engine(f"sqlite:///{folder / 'demo_app.db'}")
    demo_db_module().create_demo_db(engine, DEMO_NOW)
    engine.dispose()
    argv = ["--store", f"sqlite:///{folder / 'store.db'}", "report", "run", str(REPORT)]
    argv += ["--date", "2026-11-23", "--catalog", str(DEMO_CATALOG)]
    argv += ["--connection-url", f"app_db=sqlite:///{folder / 'demo_app.db'}", "--out", str(folder / "out")]
    assert main(argv) == 0
    return folder / "out"


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _render_params(fmt: str = "html") -> dict[str, Any]:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    spec = compile_document(read_definition_file(REPORT), catalog).spec
    return dict(spec.task(render_task_id(fmt)).params)


def test_the_week_holds_orders_on_some_days_and_none_on_others() -> None:
    """The chosen week is a real test: several days with orders, several without."""
    days = _expected_daily()
    assert 3 <= len(days) < 8
    statuses = {
        order["status"]
        for order in demo_db_module().seed_rows(DEMO_NOW)[1]
        if START <= order["created_at"] < END
    }
    assert "cancelled" in statuses  # there is something to leave out


def test_daily_rows_and_top_customers_count_the_same_orders(rendered: Path) -> None:
    expected = _expected_daily()
    header, *rows = _csv(rendered / "daily.csv")
    assert header == ["day", "orders", "revenue"]
    assert {day: (int(count), Decimal(revenue)) for day, count, revenue in rows} == expected

    header, *rows = _csv(rendered / "top-customers.csv")
    assert header == ["customer", "orders", "revenue"]
    assert [(name, int(count), Decimal(revenue)) for name, count, revenue in rows] == _expected_top()

    # the same orders on both sides: the same count and the same revenue
    assert sum(int(row[1]) for row in rows) == sum(count for count, _ in expected.values())
    assert sum(Decimal(row[2]) for row in rows) == sum(total for _, total in expected.values())


def test_the_revenue_chart_has_every_day_of_the_interval(rendered: Path) -> None:
    manifest = read_manifest(rendered)
    chart = next(c for c in _render_params()["charts"] if c["id"] == "revenue")
    assert chart["fill"] == "daily"

    drawn = draw_chart(chart, manifest)

    every_day = [
        (START.date() + dt.timedelta(days=n)).isoformat() for n in range((END.date() - START.date()).days + 1)
    ]
    assert drawn.labels == every_day  # 16 to 23 November: the interval starts and ends on a Monday, 07:00
    expected = _expected_daily()
    assert drawn.series == [[float(expected[day][1]) if day in expected else 0.0 for day in every_day]]
    assert drawn.png is not None and drawn.note == ""


def test_the_cards_show_orders_and_revenue_and_the_table_has_its_title(rendered: Path) -> None:
    expected = _expected_daily()
    orders = sum(count for count, _ in expected.values())
    revenue = sum(total for _, total in expected.values())
    html = (rendered / "weekly-sales.html").read_text(encoding="utf-8")
    cards = dict(re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)</div>', html))
    assert cards == {"Orders": f"{orders:,}", "Revenue": f"{revenue:,.2f}"}
    assert " rows</div>" not in html
    assert "<h2>Orders per day</h2>" in html and "<h2>daily</h2>" not in html
    assert "Cancelled and void orders are not counted" in html

    pdf = pypdf.PdfReader(rendered / "weekly-sales.pdf")
    text = "\n".join(page.extract_text() or "" for page in pdf.pages)
    assert f"Orders: {orders:,}" in text and f"Revenue: {revenue:,.2f}" in text
    assert "Orders per day" in text


def _run_info(manifest: Manifest) -> ReportRunInfo:
    params = _render_params("csv")  # the deliveries read the first render's params, as here
    context = template_context(
        manifest, params["title"], params["description"], (), ["csv"], query_options=params["queries"]
    )
    return ReportRunInfo(
        report_id=manifest.report_id,
        description=params["description"],
        run_id="scheduled__2026-11-16T06:00:00+00:00",
        interval_start=manifest.interval_start,
        interval_end=manifest.interval_end,
        logical_date=manifest.logical_date,
        template_context=context,
    )


def test_the_subject_says_the_period_in_berlin_time_and_the_email_is_dated(rendered: Path) -> None:
    info = _run_info(read_manifest(rendered))
    subject = render_subject(read_definition_file(REPORT)["deliver"][0]["subject"], info)
    period = f"{START:%-d %b %Y, %H:%M} → {END:%-d %b %Y, %H:%M} (Europe/Berlin)"
    assert (
        subject
        == f"Weekly sales: {period}"
        == "Weekly sales: 16 Nov 2026, 07:00 → 23 Nov 2026, 07:00 (Europe/Berlin)"
    )
    # the template context's times are in the report's time zone, for subjects of one's own
    custom = "{{ run.start.strftime('%d.%m.') }} to {{ run.end.strftime('%d.%m.%Y %H:%M %Z') }}"
    assert render_subject(custom, info) == "16.11. to 23.11.2026 07:00 CET"
    revenue = sum(total for _, total in _expected_daily().values())
    assert render_subject("{{ queries.daily.figures[1].text }}", info) == f"{revenue:,.2f}"

    sent_at = dt.datetime(2026, 11, 23, 7, 0, 5, tzinfo=BERLIN)
    message = report_email(
        sender="automation@acme.example",
        recipients=["sales-ops@acme.example"],
        subject=subject,
        text="summary",
        html_document=None,
        attachments=[],
        message_id="<key@acme.example>",
        date=sent_at,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["Date"] == "Mon, 23 Nov 2026 06:00:05 +0000"
    assert parsed["Date"].datetime == sent_at
    # without a date: now
    undated = report_email(
        sender="a@acme.example", recipients=["b@acme.example"], subject="s", text="t",
        html_document=None, attachments=[], message_id="<k@acme.example>",
    )  # fmt: skip
    assert abs(undated["Date"].datetime - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    notification = email_message(
        sender="a@acme.example", recipients=["b@acme.example"], message={"subject": "s", "body": "b"},
        message_id="<n@acme.example>",
    )  # fmt: skip
    assert notification["Date"] is not None and notification["Date"].datetime.tzinfo is not None


def test_the_xlsx_has_one_number_format_per_column(rendered: Path) -> None:
    book = openpyxl.load_workbook(rendered / "weekly-sales.xlsx")
    expected_daily = _expected_daily()
    daily = book["daily"]
    rows = list(daily.iter_rows(min_row=2))
    assert [(row[0].value.date().isoformat(), row[1].value) for row in rows] == [
        (day, count) for day, (count, _) in expected_daily.items()
    ]
    assert [Decimal(str(row[2].value)) for row in rows] == [total for _, total in expected_daily.values()]
    assert any(float(row[2].value).is_integer() for row in rows)  # whole and fractional revenue mixed
    assert {row[1].number_format for row in rows} == {"#,##0"}
    assert {row[2].number_format for row in rows} == {"#,##0.00"}

    top = list(book["top-customers"].iter_rows(min_row=2))
    assert len(top) == len(_expected_top())
    assert {row[1].number_format for row in top} == {"#,##0"}
    assert {row[2].number_format for row in top} == {"#,##0.00"}
