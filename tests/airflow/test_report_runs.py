"""Real `dag.test()` runs of report DAGs on the demo database: files parsed back, a real SMTP server on
loopback (aiosmtpd), a real storage folder, the execution log; alert mode and its grace period;
skip_if_empty; a failing delivery retried and recorded while the others go out."""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from rule_compiler.catalog import Catalog
from rule_compiler.cli import main as cli_main
from rule_compiler.compiler.report import DELIVER_TASK
from rule_compiler.registration import Compiled, compile_document, register
from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from rule_compiler.store.schema import notification_inbox
from tests.airflow.conftest import ROOT, apply_rules, dagbag
from tests.airflow.notify_helpers import Inbox, free_port, running_smtp

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

WEEKLY = "report__acme__weekly-sales"
WEEKLY_ID = "acme/weekly-sales"
#: A Monday afternoon after the demo's "now" (Friday 2026-11-20 12:00 UTC): a run then reads the week
#: from Monday 2026-11-16 07:00 to Monday 2026-11-23 07:00 (Europe/Berlin), which holds most demo orders.
WEEK_RUN = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
WEEK_START = dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC)
WEEK_END = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
#: A week in June: no demo order is that old.
EMPTY_WEEK_RUN = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)
FORMATS = ("csv", "xlsx", "html", "pdf")

ALERT = "report__acme__big-orders-alert"
ALERT_REPORT: dict[str, Any] = {
    "kind": "report",
    "name": "big-orders-alert",
    "organization": "acme",
    "schedule": {"cron": "0 6 * * *", "timezone": "UTC"},
    "parameters": [{"name": "threshold", "type": "number", "default": 5000}],
    "queries": [
        {
            "id": "big",
            "connection": "app_db",
            "sql": "SELECT COUNT(*) AS big_orders, MAX(total) AS largest FROM orders "
            "WHERE total >= :threshold AND created_at >= :data_interval_start "
            "AND created_at < :data_interval_end",
        }
    ],
    "formats": ["csv", "html"],
    "deliver": [
        {
            "type": "email",
            "to": ["oncall@acme.example"],
            "subject": "Big orders: {{ queries.big.rows[0][0] }} ({{ run.period }})",
        },
        {"type": "in_app", "to": ["sales-ops"]},
    ],
    "alert": {
        "check": {"query": "big", "operator": "gt", "column": "big_orders", "value": 0},
        "grace_period": "2d",
    },
}


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The runs' working folders and the storage delivery's folder, per test."""
    paths = {"work": tmp_path / "report-runs", "storage": tmp_path / "reports"}
    monkeypatch.setenv("AUTOMATION_REPORTS_WORKDIR", str(paths["work"]))
    monkeypatch.setenv("AUTOMATION_REPORTS_STORAGE", str(paths["storage"]))
    return paths


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with running_smtp(monkeypatch) as inbox:
        yield inbox


def _states(dag_run: Any) -> dict[str, str]:
    states: dict[str, str] = {}
    for ti in dag_run.get_task_instances():
        name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[name] = str(ti.state)
    return states


def _xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id and t.map_index == map_index)
    return ti.xcom_pull(task_ids=task_id, map_indexes=map_index)


def _apply(store: RuleStore, document: dict[str, Any], **deliver: int) -> Compiled:
    """Register a report; ``deliver`` overrides the deliver task's retry settings (test speed only)."""
    catalog = Catalog.model_validate(store.get_catalog("acme"))
    compiled = compile_document(document, catalog)
    assert isinstance(compiled, Compiled), compiled
    if deliver:
        tasks = tuple(
            t.model_copy(update=deliver) if t.task_id == DELIVER_TASK else t for t in compiled.spec.tasks
        )
        spec = compiled.spec.model_copy(update={"tasks": tasks})
        compiled = dataclasses.replace(
            compiled, spec=spec, spec_json=spec.to_json(), spec_hash=spec.spec_hash
        )
    register(store, compiled, actor="test")
    return compiled


def _weekly_document() -> dict[str, Any]:
    from rule_compiler.loading import read_definition_file

    return read_definition_file(ROOT / "include" / "reports" / "weekly-sales.yaml")


def _expected_week(engine: sa.Engine, min_total: int = 0) -> dict[str, tuple[int, Decimal]]:
    """The weekly-sales query's answer, computed here from the rows: per day, orders and revenue."""
    orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
    per_day: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    with engine.connect() as conn:
        for row in conn.execute(sa.select(orders.c.created_at, orders.c.status, orders.c.total)):
            created = row.created_at.replace(tzinfo=dt.UTC)
            wanted = row.status != "cancelled" and row.total is not None and row.total >= min_total
            if WEEK_START <= created < WEEK_END and wanted:
                day = per_day[created.date().isoformat()]
                day[0] += 1
                day[1] += Decimal(str(row.total))
    return {day: (count, total) for day, (count, total) in per_day.items()}


def _attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    return {
        str(part.get_filename()): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    }


def _csv_tables(name: str, content: bytes) -> dict[str, list[list[str]]]:
    """Every CSV of the csv format (one file, or a zip of one per query), by query id."""
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {
                Path(member).stem: list(csv.reader(io.StringIO(archive.read(member).decode("utf-8"))))
                for member in archive.namelist()
            }
    return {"only": list(csv.reader(io.StringIO(content.decode("utf-8"))))}


def _png_data_uris(html: str) -> list[bytes]:
    return [
        base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    ]


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
    expected = _expected_week(app_db)
    assert len(expected) >= 3, "the chosen week must hold demo orders on several days"

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = _states(dag_run)
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
    assert message["Subject"] == f"Weekly sales {WEEK_START.isoformat()} to {WEEK_END.isoformat()}"
    key = delivery_key(WEEKLY_ID, WEEK_END, 0)
    assert message["Message-ID"] == f"<{key}@example.com>"
    files = _attachments(message)
    assert all(len([n for n in files if f".{fmt}" in n]) == 1 for fmt in FORMATS), sorted(files)
    assert files[next(n for n in files if n.endswith(".pdf"))][0] == "application/pdf"
    inline = message.get_body(preferencelist=("html",))
    assert inline is not None and _png_data_uris(inline.get_content())

    # csv: the daily query's rows, exactly as computed from the demo data
    csv_name = next(n for n in files if ".csv" in n)
    tables = _csv_tables(csv_name, files[csv_name][1])
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
    images = _png_data_uris(html)
    assert images and all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert "Revenue per day" in html and "Top customers" in html and "revenue" in html

    # pdf: the same content: text with the titles, and the chart as an image
    import pypdf

    pdf = pypdf.PdfReader(io.BytesIO(files[next(n for n in files if n.endswith(".pdf"))][1]))
    text = "\n".join(page.extract_text() or "" for page in pdf.pages)
    assert "Revenue per day" in text and "Top customers" in text
    assert sum(len(page.images) for page in pdf.pages) >= 1

    # storage: the same files under weekly-sales/<interval end>
    stored = sorted((folders["storage"] / "weekly-sales").rglob("*.*"))
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
    assert str(again.state) == "success", _states(again)
    assert again.run_id != dag_run.run_id and again.data_interval_end == WEEK_END
    assert len(smtp.messages) == 1
    assert _xcom(again, "deliver", 0)["status"] == _xcom(again, "deliver", 1)["status"] == "already_sent"
    assert {path: path.stat().st_mtime_ns for path in stored} == mtimes
    assert [d.attempts for d in log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)] == [1, 1]
    second = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=again.run_id)
    assert second is not None and second.status == "success"


def test_skip_if_empty_skips_rendering_and_delivery(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=EMPTY_WEEK_RUN)

    states = _states(dag_run)
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


def _inbox(store: RuleStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(notification_inbox))]


def test_alert_is_sent_when_its_check_holds_and_not_again_within_the_grace_period(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    """Daily windows over the demo's orders of 5,000 or more: Nov 16-17 has one (sent), Nov 19-20 two
    (sent: three days after, past the 2-day grace), Nov 20-21 one (held back: one day after), and
    Nov 21-22 none (the check does not hold)."""
    _apply(store, ALERT_REPORT)
    dag = dagbag().dags[ALERT]

    def run(day: int) -> tuple[Any, log.ReportRun]:
        dag_run = dag.test(logical_date=dt.datetime(2026, 11, day, 12, 0, tzinfo=dt.UTC))
        assert str(dag_run.state) == "success", _states(dag_run)
        row = log.get_report_run(store.engine, dag_id=ALERT, run_id=dag_run.run_id)
        assert row is not None
        return dag_run, row

    _, first_log = run(17)
    assert first_log.status == "success" and first_log.alert is not None and first_log.alert["holds"] is True
    assert len(smtp.to("oncall@acme.example")) == 1
    subject = smtp.to("oncall@acme.example")[0]["Subject"]
    assert subject == "Big orders: 1 (16 Nov 2026, 06:00 → 17 Nov 2026, 06:00 (UTC))"
    assert [row["recipient"] for row in _inbox(store)] == ["sales-ops"]
    state = log.alert_state(store.engine, "acme/big-orders-alert")
    assert state is not None and state.last_sent_interval_end == dt.datetime(2026, 11, 17, 6, tzinfo=dt.UTC)

    _, second_log = run(20)  # three days later: past the grace period
    assert second_log.status == "success"
    assert len(smtp.to("oncall@acme.example")) == 2 and len(_inbox(store)) == 2

    third, third_log = run(21)  # holds again one day later: inside the grace period
    assert third_log.status == "not-triggered" and third_log.alert is not None
    assert third_log.alert["holds"] is True and third_log.alert["suppressed"] is True
    assert "grace period" in third_log.alert["reason"]
    states = _states(third)
    assert states["run_queries"] == "skipped" and states["render_csv"] == "skipped"
    assert states["record_report"] == "success"
    assert len(smtp.to("oncall@acme.example")) == 2 and len(_inbox(store)) == 2

    _, fourth_log = run(22)  # no big order that day: the check does not hold
    assert fourth_log.status == "not-triggered" and fourth_log.alert is not None
    assert fourth_log.alert["holds"] is False and "suppressed" not in fourth_log.alert
    assert len(smtp.to("oncall@acme.example")) == 2 and len(_inbox(store)) == 2
    state = log.alert_state(store.engine, "acme/big-orders-alert")
    assert state is not None and state.last_sent_interval_end == dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)


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
    _apply(store, _weekly_document(), retries=1, retry_delay_seconds=1)

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    states = _states(dag_run)
    assert states["deliver[0]"] == "failed" and states["deliver[1]"] == "success", states
    assert states["record_report"] == "failed" and str(dag_run.state) == "failed"
    email_delivery, storage_delivery = log.deliveries_of(store.engine, WEEKLY_ID, WEEK_END)
    assert (email_delivery.status, email_delivery.attempts) == ("failed", 2)  # tried, retried, recorded
    assert "could not deliver through smtp_default" in (email_delivery.error or "")
    assert (storage_delivery.status, storage_delivery.attempts) == ("sent", 1)
    assert len(list((folders["storage"] / "weekly-sales").rglob("*.*"))) == len(FORMATS)
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
    assert str(again.state) == "success", _states(again)
    assert len(inbox.messages) == 1 and len(_attachments(inbox.messages[0][1])) == len(FORMATS)
    assert _xcom(again, "deliver", 1)["status"] == "already_sent"
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
    expected = _expected_week(app_db, min_total=2000)
    assert 0 < len(expected) < len(_expected_week(app_db))

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN, run_conf={"min_total": 2000})

    assert str(dag_run.state) == "success", _states(dag_run)
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None and run.parameters == {"min_total": 2000}
    assert run.queries["daily"]["rows"] == len(expected)  # days with an order of 2,000 or more

    typo = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=1), run_conf={"min_totl": 1})

    states = _states(typo)
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
    from rule_engine.operators.reports import last_complete_interval

    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=None)

    assert str(dag_run.state) == "success", _states(dag_run)
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    run_after = dt.datetime.fromisoformat(dag_run.run_after.isoformat())
    start, end = last_complete_interval("0 7 * * 1", "Europe/Berlin", run_after)
    assert run is not None and (run.interval_start, run.interval_end) == (start, end)
    assert end - start == dt.timedelta(days=7) and end <= run_after


def test_slack_and_signed_webhook_deliveries_name_the_files_and_carry_no_rows(
    store: RuleStore, app_db: sa.Engine, monkeypatch: pytest.MonkeyPatch, folders: dict[str, Path]
) -> None:
    from tests.security.receiver import running_receiver

    secret, token = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "T0000/B0000/xoxReportHookToken"
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")  # as an admin allows a private host
    document = {
        **_weekly_document(),
        "deliver": [
            {"type": "slack", "connection": "slack_oncall"},
            {"type": "webhook", "connection": "crm_api", "path": "/hooks/reports"},
        ],
    }
    with running_receiver(secret) as receiver:
        hook = {"conn_type": "http", "host": receiver.base_url, "password": secret}
        slack_url = {"conn_type": "slackwebhook", "host": f"{receiver.base_url}/services", "password": token}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(hook))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", json.dumps(slack_url))
        _apply(store, document)

        dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)
        again = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=2))

    assert str(dag_run.state) == str(again.state) == "success", _states(dag_run)
    run = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert run is not None
    names = sorted(item["file"] for item in run.files.values())
    slack = [r for r in receiver.requests if r["path"] == f"/services/{token}"]
    hooks = [r for r in receiver.requests if r["path"] == "/hooks/reports"]
    assert len(slack) == len(hooks) == 1  # the second run of the week sent nothing again
    text = json.loads(slack[0]["body"])["text"]
    assert text.startswith("*Report weekly-sales:") and all(name in text for name in names)
    assert f"daily: {run.queries['daily']['rows']}" in text
    assert hooks[0]["verified"] and hooks[0]["headers"]["webhook-id"] == delivery_key(WEEKLY_ID, WEEK_END, 1)
    body = json.loads(hooks[0]["body"])
    assert body["report"] == WEEKLY_ID and body["interval_end"] == WEEK_END.isoformat()
    assert body["rows"] == {
        "daily": run.queries["daily"]["rows"],
        "top-customers": run.queries["top-customers"]["rows"],
    }
    assert sorted(item["name"] for item in body["files"]) == names
    with app_db.connect() as conn:  # no customer name (row data) leaves in either
        customers = [row[0] for row in conn.execute(sa.text("SELECT name FROM customers"))]
    assert not any(name in text or name in hooks[0]["body"].decode() for name in customers)
