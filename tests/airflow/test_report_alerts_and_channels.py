"""Real `dag.test()` runs of report DAGs: alert mode and its grace period; Slack and signed webhook
deliveries (loopback receivers)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.runtime.report_delivery import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import report_runs as log
from tests.airflow.conftest import dagbag
from tests.airflow.notify_helpers import Inbox
from tests.airflow.report_support import (
    ALERT,
    ALERT_REPORT,
    WEEK_END,
    WEEK_RUN,
    WEEKLY,
    WEEKLY_ID,
    apply_report,
    inbox_messages,
    task_states,
    weekly_document,
)

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def test_alert_is_sent_when_its_check_holds_and_not_again_within_the_grace_period(
    store: RuleStore, app_db: sa.Engine, smtp: Inbox, folders: dict[str, Path]
) -> None:
    """Daily windows over the demo's orders of 5,000 or more: Nov 16-17 has one (sent), Nov 19-20 two
    (sent: three days after, past the 2-day grace), Nov 20-21 one (held back: one day after), and
    Nov 21-22 none (the check does not hold)."""
    apply_report(store, ALERT_REPORT)
    dag = dagbag().dags[ALERT]

    def run(day: int) -> tuple[Any, log.ReportRun]:
        dag_run = dag.test(logical_date=dt.datetime(2026, 11, day, 12, 0, tzinfo=dt.UTC))
        assert str(dag_run.state) == "success", task_states(dag_run)
        row = log.get_report_run(store.engine, dag_id=ALERT, run_id=dag_run.run_id)
        assert row is not None
        return dag_run, row

    _, first_log = run(17)
    assert first_log.status == "success" and first_log.alert is not None and first_log.alert["holds"] is True
    assert len(smtp.to("oncall@acme.example")) == 1
    subject = smtp.to("oncall@acme.example")[0]["Subject"]
    assert subject == "Big orders: 1 (16 Nov 2026, 06:00 → 17 Nov 2026, 06:00 (UTC))"
    assert [row["recipient"] for row in inbox_messages(store)] == ["sales-ops"]
    state = log.alert_state(store.engine, "acme/big-orders-alert")
    assert state is not None and state.last_sent_interval_end == dt.datetime(2026, 11, 17, 6, tzinfo=dt.UTC)

    _, second_log = run(20)  # three days later: past the grace period
    assert second_log.status == "success"
    assert len(smtp.to("oncall@acme.example")) == 2 and len(inbox_messages(store)) == 2

    third, third_log = run(21)  # holds again one day later: inside the grace period
    assert third_log.status == "not-triggered" and third_log.alert is not None
    assert third_log.alert["holds"] is True and third_log.alert["suppressed"] is True
    assert "grace period" in third_log.alert["reason"]
    states = task_states(third)
    assert states["run_queries"] == "skipped" and states["render_csv"] == "skipped"
    assert states["record_report"] == "success"
    assert len(smtp.to("oncall@acme.example")) == 2 and len(inbox_messages(store)) == 2

    _, fourth_log = run(22)  # no big order that day: the check does not hold
    assert fourth_log.status == "not-triggered" and fourth_log.alert is not None
    assert fourth_log.alert["holds"] is False and "suppressed" not in fourth_log.alert
    assert len(smtp.to("oncall@acme.example")) == 2 and len(inbox_messages(store)) == 2
    state = log.alert_state(store.engine, "acme/big-orders-alert")
    assert state is not None and state.last_sent_interval_end == dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)


def test_slack_and_signed_webhook_deliveries_name_the_files_and_carry_no_rows(
    store: RuleStore, app_db: sa.Engine, monkeypatch: pytest.MonkeyPatch, folders: dict[str, Path]
) -> None:
    from tests.security.receiver import running_receiver

    secret, token = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "T0000/B0000/xoxReportHookToken"
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")  # as an admin allows a private host
    document = {
        **weekly_document(),
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
        apply_report(store, document)

        dag_run = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN)
        again = dagbag().dags[WEEKLY].test(logical_date=WEEK_RUN + dt.timedelta(hours=2))

    assert str(dag_run.state) == str(again.state) == "success", task_states(dag_run)
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
