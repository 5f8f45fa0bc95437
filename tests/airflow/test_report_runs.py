"""Real `dag.test()` runs of report DAGs on the demo database: files parsed back, a real SMTP server on
loopback (aiosmtpd), a real storage folder, the execution log; skip_if_empty; a failing delivery
retried and recorded while the others go out. Alert mode and the Slack/webhook channels:
``test_report_alerts_and_channels.py``."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from rule_compiler.cli import main as cli_main
from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from tests.airflow.conftest import ROOT, apply_rules, dagbag
from tests.airflow.notify_helpers import Inbox, free_port
from tests.airflow.report_support import (
    EMPTY_WEEK_RUN,
    FORMATS,
    WEEK_END,
    WEEK_RUN,
    WEEK_START,
    WEEKLY,
    WEEKLY_ID,
    apply_report,
    attachments_of,
    csv_tables,
    expected_week,
    png_data_uris,
    task_states,
    task_xcom,
    weekly_document,
)

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def test_the_report_dag_is_a_data_interval_dag_with_a_mapped_delivery(
    store: RuleStore, app_db: sa.Engine
) -> None:
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")
    dag = dagbag().dags[WEEKLY]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable" and "render-error" not in dag.tags
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 7 * * 1", "Europe/Berlin")
    assert {t.task_id for t in dag.tasks} == {
        "run_queries",
        *(f"render_{f}" for f in FORMATS),
        "deliver",
        "record_report",
    }
    deliver = dag.get_task("deliver")
    assert type(deliver).__name__ == "MappedOperator"
    assert deliver.upstream_task_ids == {f"render_{f}" for f in FORMATS}
    assert dag.get_task("record_report").trigger_rule == "all_done"
    # report SQL and templates never reach Airflow's templater
    assert all(task.template_fields == () for task in dag.tasks)


def test_weekly_sales_renders_every_format_emails_and_stores_them_once(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")
    expected = expected_week(app_db)
    assert len(expected) >= 3, "the chosen week must hold demo orders on several days"

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states["deliver[0]"] == states["deliver[1]"] == "success"
    assert dag_run.data_interval_start == WEEK_START and dag_run.data_interval_end == WEEK_END
    labels = {
        ti.map_index: ti.rendered_map_index for ti in dag_run.get_task_instances() if ti.task_id == "deliver"
    }
    assert labels == {0: "0 email", 1: "1 storage"}  # how the UI names the mapped instances

    # the email: one message, every format attached, the HTML report inline, a stable Message-ID
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["sales-ops@acme.example"]
    # the subject says the period as the body does, in the report's time zone; the message is dated
    assert message["Subject"] == "Weekly sales: 16 Nov 2026, 07:00 → 23 Nov 2026, 07:00 (Europe/Berlin)"
    assert message["Date"] is not None and message["Date"].datetime.tzinfo is not None
    key = delivery_key(WEEKLY_ID, WEEK_END, 0)
    assert message["Message-ID"] == f"<{key}@example.com>"
    files = attachments_of(message)
    assert all(len([n for n in files if f".{fmt}" in n]) == 1 for fmt in FORMATS), sorted(files)
    assert files[next(n for n in files if n.endswith(".pdf"))][0] == "application/pdf"
    inline = message.get_body(preferencelist=("html",))
    assert (
        inline is not None and 'src="cid:' in inline.get_content() and not png_data_uris(inline.get_content())
    )

    # csv: the daily query's rows, exactly as computed from the demo data
    csv_name = next(n for n in files if ".csv" in n)
    tables = csv_tables(csv_name, files[csv_name][1])
    daily = tables["daily"] if "daily" in tables else tables["only"]
    assert daily[0] == ["day", "orders", "revenue"]
    got = {row[0][:10]: (int(row[1]), Decimal(row[2])) for row in daily[1:]}
    assert got.keys() == expected.keys()
    for day, (count, revenue) in expected.items():
        assert got[day][0] == count and abs(got[day][1] - revenue) < Decimal("0.01"), day
    if "top-customers" in tables:
        assert (
            tables["top-customers"][0] == ["customer", "orders", "revenue"]
            and len(tables["top-customers"]) > 1
        )

    # xlsx: one sheet per query, the same rows
    import openpyxl

    xlsx = files[next(n for n in files if n.endswith(".xlsx"))][1]
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    sheets = {
        sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets
    }
    daily_sheet = next(rows for title, rows in sheets.items() if title.startswith("daily"))
    assert [str(v) for v in daily_sheet[0][:3]] == ["day", "orders", "revenue"]
    assert len([row for row in daily_sheet[1:] if row[0] is not None]) == len(expected)
    assert sum(int(row[1]) for row in daily_sheet[1:] if row[0] is not None) == sum(
        c for c, _ in expected.values()
    )

    # html: the chart as an inline PNG, the tables' headers
    html = files[next(n for n in files if n.endswith(".html"))][1].decode("utf-8")
    images = png_data_uris(html)
    assert images and all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert "Revenue per day" in html and "Top customers" in html and "revenue" in html

    # pdf: the same content: text with the titles, and the chart as an image
    import pypdf

    pdf = pypdf.PdfReader(io.BytesIO(files[next(n for n in files if n.endswith(".pdf"))][1]))
    text = "\n".join(page.extract_text() or "" for page in pdf.pages)
    assert "Revenue per day" in text and "Top customers" in text
    assert sum(len(page.images) for page in pdf.pages) >= 1

    # storage: the same files under <org>/weekly-sales/<interval end>
    stored = sorted((folders["storage"] / "acme" / "weekly-sales").rglob("*.*"))
    assert {path.name for path in stored} == set(files)
    assert all(path.read_bytes() == files[path.name][1] for path in stored)
    assert stored[0].parent.name.startswith("2026-11-23T06-00-00")

    # the execution log
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "success" and run.error is None
    assert run.queries["daily"]["rows"] == len(expected) and run.queries["top-customers"]["rows"] > 0
    assert set(run.files) == set(FORMATS) and all(item["bytes"] > 0 for item in run.files.values())
    assert {"run_queries", "render_pdf"} <= set(run.steps)
    deliveries = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert [(d.type, d.status, d.attempts) for d in deliveries] == [
        ("email", "sent", 1),
        ("storage", "sent", 1),
    ]
    assert deliveries[0].idempotency_key == key and deliveries[1].detail["files"]

    # a second run of the same week (another run id) delivers nothing again
    mtimes = {path: path.stat().st_mtime_ns for path in stored}
    again = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=3))
    assert str(again.state) == "success", task_states(again)
    assert again.run_id != dag_run.run_id and again.data_interval_end == WEEK_END
    assert len(smtp.messages) == 1
    assert (
        task_xcom(again, "deliver", 0)["status"] == task_xcom(again, "deliver", 1)["status"] == "already_sent"
    )
    assert {path: path.stat().st_mtime_ns for path in stored} == mtimes
    assert [d.attempts for d in log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)] == [1, 1]
    second = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=again.run_id)
    assert second is not None and second.status == "success"


def test_skip_if_empty_skips_rendering_and_delivery(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=EMPTY_WEEK_RUN)

    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states["run_queries"] == "skipped" and states["record_report"] == "success"
    assert all(states[f"render_{fmt}"] == "skipped" for fmt in FORMATS)
    assert all(state == "skipped" for name, state in states.items() if name.startswith("deliver"))
    assert smtp.messages == [] and not folders["storage"].exists()
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "skipped-empty"
    assert run.queries == {
        "daily": {"rows": 0, "truncated": False},
        "top-customers": {"rows": 0, "truncated": False},
    }
    assert log.deliveries_of(store.engine, WEEKLY_ID, run.interval_end) == []


def test_a_failing_delivery_is_retried_and_recorded_while_storage_succeeds(
    store: RuleStore,
    app_db: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()  # nothing listens there yet: the SMTP server is down
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                  "extra": {"from_email": "automation@example.com", "timeout": 5}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
    apply_report(store, weekly_document(), retries=1, retry_delay_seconds=1)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = task_states(dag_run)
    assert states["deliver[0]"] == "failed" and states["deliver[1]"] == "success", states
    assert states["record_report"] == "failed" and str(dag_run.state) == "failed"
    email_delivery, storage_delivery = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert (email_delivery.status, email_delivery.attempts) == ("failed", 2)  # tried, retried, recorded
    assert "could not deliver through smtp_default" in (email_delivery.error or "")
    assert (storage_delivery.status, storage_delivery.attempts) == ("sent", 1)
    assert len(list((folders["storage"] / "acme" / "weekly-sales").rglob("*.*"))) == len(FORMATS)
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.status == "partial"
    assert "delivery 0 (email) failed" in (run.error or "")

    # the server is back: running the interval again sends the email, and only the email
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        again = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=1))
    finally:
        controller.stop()
    assert str(again.state) == "success", task_states(again)
    assert len(inbox.messages) == 1 and len(attachments_of(inbox.messages[0][1])) == len(FORMATS)
    assert task_xcom(again, "deliver", 1)["status"] == "already_sent"
    email_delivery, storage_delivery = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert (email_delivery.status, email_delivery.attempts, email_delivery.error) == ("sent", 3, None)
    assert storage_delivery.attempts == 1

    # `rule-compiler report log` lists both runs, newest first, with their deliveries
    capsys.readouterr()
    assert cli_main(["--store", store.url, "report", "log", WEEKLY_ID, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["status"]) for r in listed] == [
        (again.run_id, "success"),
        (dag_run.run_id, "partial"),
    ]
    assert [(d["type"], d["status"]) for d in listed[0]["deliveries"]] == [
        ("email", "sent"),
        ("storage", "sent"),
    ]
    assert cli_main(["--store", store.url, "report", "log", "weekly-sales", "--org", "acme"]) == 0
    text = capsys.readouterr().out
    assert "partial" in text and "delivery 0 email (1 recipient): sent, 3 attempts" in text


def test_a_runs_conf_sets_parameters_and_an_unknown_key_fails_the_run(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")
    expected = expected_week(app_db, min_total=2000)
    assert 0 < len(expected) < len(expected_week(app_db))

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN, run_conf={"min_total": 2000})

    assert str(dag_run.state) == "success", task_states(dag_run)
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.parameters == {"min_total": 2000}
    assert run.queries["daily"]["rows"] == len(expected)  # days with an order of 2,000 or more

    typo = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=1), run_conf={"min_totl": 1})

    states = task_states(typo)
    assert states["run_queries"] == "failed", states
    assert all(state == "upstream_failed" for name, state in states.items() if name.startswith("deliver"))
    assert str(typo.state) == "failed"
    failed = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=typo.run_id)
    assert failed is not None and failed.status == "error" and "min_totl" in (failed.error or "")
    assert len(smtp.messages) == 1  # only the first run's


def test_a_run_without_a_logical_date_reads_the_last_complete_interval(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    """As a run triggered from the UI without a date: Airflow gives it no data interval."""
    from rule_engine.operators.report_base import last_complete_interval

    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=None)

    assert str(dag_run.state) == "success", task_states(dag_run)
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    run_after = dt.datetime.fromisoformat(dag_run.run_after.isoformat())
    start, end = last_complete_interval("0 7 * * 1", "Europe/Berlin", run_after)
    assert run is not None and (run.interval_start, run.interval_end) == (start, end)
    assert end - start == dt.timedelta(days=7) and end <= run_after
