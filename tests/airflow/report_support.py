"""Shared by the report DAG tests: the reports and constants they run, and readers of what a run left."""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.compiler.report import DELIVER_TASK
from rule_compiler.registration import Compiled, compile_document, register
from rule_compiler.store import RuleStore
from rule_compiler.store.tables import notification_inbox
from tests.airflow.conftest import ROOT

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


def task_states(dag_run: Any) -> dict[str, str]:
    states: dict[str, str] = {}
    for ti in dag_run.get_task_instances():
        name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        states[name] = str(ti.state)
    return states


def task_xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id and t.map_index == map_index)
    return ti.xcom_pull(task_ids=task_id, map_indexes=map_index)


def apply_report(store: RuleStore, document: dict[str, Any], **deliver: int) -> Compiled:
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


def weekly_document() -> dict[str, Any]:
    from rule_compiler.loading import read_definition_file

    return read_definition_file(ROOT / "include" / "reports" / "weekly-sales.yaml")


def expected_week(engine: sa.Engine, min_total: int = 0) -> dict[str, tuple[int, Decimal]]:
    """The weekly-sales query's answer, computed here from the rows: per day, orders and revenue."""
    orders = sa.Table("orders", sa.MetaData(), autoload_with=engine)
    per_day: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    with engine.connect() as conn:
        for row in conn.execute(sa.select(orders.c.created_at, orders.c.status, orders.c.total)):
            created = row.created_at.replace(tzinfo=dt.UTC)
            wanted = (
                row.status not in ("cancelled", "void") and row.total is not None and row.total >= min_total
            )
            if WEEK_START <= created < WEEK_END and wanted:
                day = per_day[created.date().isoformat()]
                day[0] += 1
                day[1] += Decimal(str(row.total))
    return {day: (count, total) for day, (count, total) in per_day.items()}


def attachments_of(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    return {
        str(part.get_filename()): (part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    }


def csv_tables(name: str, content: bytes) -> dict[str, list[list[str]]]:
    """Every CSV of the csv format (one file, or a zip of one per query), by query id."""
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {
                Path(member).stem: list(csv.reader(io.StringIO(archive.read(member).decode("utf-8"))))
                for member in archive.namelist()
            }
    return {"only": list(csv.reader(io.StringIO(content.decode("utf-8"))))}


def png_data_uris(html: str) -> list[bytes]:
    return [
        base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    ]


def inbox_messages(store: RuleStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(notification_inbox))]


@dataclasses.dataclass
class DemoMailSink:
    """``scripts/demo_mail_sink.py`` running: its process, mail folder and announced connection."""

    process: subprocess.Popen[str]
    folder: Path
    connection: dict[str, Any]

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))


@contextmanager
def running_demo_mail_sink(workdir: Path, deadline_seconds: float = 20.0) -> Iterator[DemoMailSink]:
    """Start the demo mail sink as ``scripts/run-standalone.sh`` does; kill it afterwards."""
    folder, announced = workdir / "mail", workdir / "mail-sink.json"
    sink = ROOT / "scripts" / "demo_mail_sink.py"
    process = subprocess.Popen(
        [sys.executable, str(sink), "--folder", str(folder), "--connection-file", str(announced)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + deadline_seconds
        while not announced.is_file():
            assert process.poll() is None, "the demo mail sink exited at start"
            assert time.monotonic() < deadline, "the demo mail sink did not announce its connection"
            time.sleep(0.05)
        yield DemoMailSink(process, folder, json.loads(announced.read_text(encoding="utf-8")))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
