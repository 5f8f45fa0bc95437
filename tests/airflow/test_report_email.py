"""Real `dag.test()` runs of report DAGs and the email a real SMTP server on loopback (aiosmtpd)
receives: the charts as inline ``cid:`` images of a multipart/related HTML body (Gmail and Outlook
do not show ``data:`` images), the files still attached, the stored html still self-contained; a
report template's ``files`` naming the files the run produced; and the demo's weekly sales report
through the demo mail sink ``make run`` starts (the run succeeds, the email is an ``.eml`` file)."""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from tests.airflow.conftest import ROOT, apply_rules, dagbag
from tests.airflow.notify_helpers import Inbox
from tests.airflow.report_support import (
    WEEK_RUN,
    WEEKLY,
    apply_report,
    attachments_of,
    png_data_uris,
    running_demo_mail_sink,
    task_states,
)

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

CID_SOURCE = re.compile(r'src="cid:([^"]+)"')
FILES_TEMPLATE = (
    "<h1>{{ report.title }}</h1>"
    '<img src="{{ charts.revenue.image }}" alt="revenue">'
    '<ul class="files">{% for f in files %}<li>{{ f }}</li>{% endfor %}</ul>'
)
FILES_REPORT: dict[str, Any] = {
    "kind": "report",
    "name": "sales-files",
    "organization": "acme",
    "schedule": {"cron": "0 7 * * 1", "timezone": "Europe/Berlin"},
    "queries": [
        {
            "id": "daily",
            "connection": "app_db",
            "sql": "SELECT DATE(created_at) AS day, SUM(total) AS revenue FROM orders "
            "WHERE created_at >= :data_interval_start AND created_at < :data_interval_end "
            "GROUP BY DATE(created_at) ORDER BY day",
        },
        {
            "id": "statuses",
            "connection": "app_db",
            "sql": "SELECT status, COUNT(*) AS orders FROM orders "
            "WHERE created_at >= :data_interval_start AND created_at < :data_interval_end GROUP BY status",
        },
    ],
    "formats": ["csv", "xlsx", "html"],
    "charts": [{"id": "revenue", "query": "daily", "type": "bar", "x": "day", "y": ["revenue"]}],
    "template": "files.html",
    "deliver": [
        {"type": "email", "to": ["sales-ops@acme.example"], "attach": ["csv", "html"]},
        {"type": "storage", "path": "sales-files"},
    ],
}


def _reparsed(message: EmailMessage) -> EmailMessage:
    """The message as a mail client reads it: its bytes parsed again by the email package."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _inline_images(message: EmailMessage) -> dict[str, tuple[str | None, bytes]]:
    """The images of the multipart/related HTML body by Content-ID: (disposition, bytes)."""
    related = [part for part in message.walk() if part.get_content_type() == "multipart/related"]
    assert len(related) == 1, [part.get_content_type() for part in message.walk()]
    parts = list(related[0].iter_parts())
    assert parts[0].get_content_type() == "text/html" and related[0].get_param("type") == "text/html"
    return {
        str(part["Content-ID"]).strip("<>"): (part.get_content_disposition(), part.get_payload(decode=True))
        for part in parts[1:]
        if part.get_content_type() == "image/png"
    }


def test_the_report_email_shows_its_charts_as_inline_cid_images(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")

    dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)

    assert str(dag_run.state) == "success", task_states(dag_run)
    assert len(smtp.messages) == 1
    message = _reparsed(smtp.messages[0][1])
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    body = html_part.get_content()
    assert "Revenue per day" in body and "Top customers" in body
    assert "data:" not in body and not png_data_uris(body)
    content_ids = CID_SOURCE.findall(body)
    assert len(content_ids) == 1  # the bar chart; the table chart is a table
    images = _inline_images(message)
    assert set(images) == set(content_ids)
    disposition, png = images[content_ids[0]]
    assert disposition == "inline" and png.startswith(b"\x89PNG\r\n\x1a\n")

    # the attachments as before (the inline image is none of them); the attached html is self-contained
    files = attachments_of(message)
    assert sorted(files) == sorted(f"weekly-sales.{ext}" for ext in ("csv.zip", "xlsx", "html", "pdf"))
    attached_html = files["weekly-sales.html"][1].decode("utf-8")
    assert png_data_uris(attached_html) == [png] and "cid:" not in attached_html

    # storage gets the four files, not the email body beside the html
    stored = sorted((folders["storage"] / "acme" / "weekly-sales").rglob("*"))
    assert {path.name for path in stored if path.is_file()} == set(files)
    assert all(path.read_bytes() == files[path.name][1] for path in stored if path.is_file())


@pytest.fixture
def files_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An include folder holding ``templates/reports/files.html`` (registration reads it from there)."""
    include = tmp_path / "include"
    (include / "templates" / "reports").mkdir(parents=True)
    (include / "templates" / "reports" / "files.html").write_text(FILES_TEMPLATE, encoding="utf-8")
    monkeypatch.setenv("AUTOMATION_INCLUDE_DIR", str(include))


@pytest.mark.usefixtures("files_template")
def test_a_template_lists_the_files_of_the_run_and_its_chart_goes_inline(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    apply_report(store, FILES_REPORT)

    dag_run = dagbag().dags["report__acme__sales-files"].test(logical_date=WEEK_RUN)

    assert str(dag_run.state) == "success", task_states(dag_run)
    stored = {path.name: path for path in (folders["storage"] / "acme" / "sales-files").iterdir()}
    produced = ["sales-files.csv.zip", "sales-files.xlsx", "sales-files.html"]  # two queries: a zip
    assert sorted(stored) == sorted(produced)
    listed = '<ul class="files">' + "".join(f"<li>{name}</li>" for name in produced) + "</ul>"
    stored_html = stored["sales-files.html"].read_text(encoding="utf-8")
    assert listed in stored_html and len(png_data_uris(stored_html)) == 1

    (_, message) = smtp.messages[0]
    message = _reparsed(message)
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    body = html_part.get_content()
    assert listed in body and "data:" not in body
    assert set(_inline_images(message)) == set(CID_SOURCE.findall(body)) and CID_SOURCE.findall(body)
    assert sorted(attachments_of(message)) == ["sales-files.csv.zip", "sales-files.html"]


def test_the_demo_report_run_succeeds_through_the_demo_mail_sink(
    store: RuleStore,
    app_db: sa.Engine,
    folders: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``make run`` does for email: smtp_default is the connection the sink announces."""
    apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")
    with running_demo_mail_sink(tmp_path) as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(sink.connection))
        dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)
        saved = sink.messages()  # the delivery returned after the server's 250: the file is there

    assert str(dag_run.state) == "success", task_states(dag_run)
    row = log.get_report_run(store.engine, dag_id=WEEKLY, run_id=dag_run.run_id)
    assert row is not None and row.status == "success" and row.error is None
    assert len(saved) == 1
    message = email.message_from_bytes(saved[0].read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "sales-ops@acme.example" and message["From"] == "automation@acme.example"
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    assert set(_inline_images(message)) == set(CID_SOURCE.findall(html_part.get_content())) != set()
    assert len(attachments_of(message)) == 4
