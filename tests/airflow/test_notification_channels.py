"""Real `dag.test()` runs of `send_notification` on slack, webhook and in_app, and of email under
recipients' preferences (quiet hours, daily digest, muted), with the dispatcher sending what waited.

Slack and webhook notices go to the loopback receiver of `tests/security/receiver.py` (allowed by
AUTOMATION_WEBHOOK_ALLOW_HOSTS, as an admin would allow a private host); email to aiosmtpd.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml
from rule_engine.operators.actions import Match

from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.store import RuleStore
from rule_compiler.store.preferences import Preferences, set_preferences
from tests.airflow.conftest import apply_rules, dagbag
from tests.airflow.notify_helpers import deliveries, inbox_rows, running_smtp
from tests.security.receiver import Receiver, Reply, running_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SLACK_TOKEN = "xoxSlackTokenThatMustStaySecret42"
FAILED_PAYMENTS = {"all": [{"field": "status", "operator": "equals", "value": "payment_failed"},
                           {"field": "total", "operator": "gte", "value": 1000}]}  # fmt: skip
CHANNELS_RULE: dict[str, Any] = {
    "kind": "rule", "name": "tell-failed-payments", "organization": "acme",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": FAILED_PAYMENTS,
    "actions": [
        {"id": "ping", "type": "send_notification", "channel": "slack", "connection": "slack_oncall",
         "subject": "Payment failed: order {{ record.id }}",
         "body": "{{ record.customer__name }} owes {{ record.total }} <!channel>", "retries": 0},
        {"id": "hook", "type": "send_notification", "channel": "webhook", "connection": "crm_api",
         "subject": "Payment failed", "body": "order {{ record.id }}", "retries": 0},
        {"id": "inbox", "type": "send_notification", "channel": "in_app",
         "to": ["sales-ops", "ops.{{ record.customer__region }}"],
         "subject": "Order {{ record.id }}: payment failed", "body": "Call {{ record.customer__name }}.",
         "retries": 0},
    ],
}  # fmt: skip
DAG_ID = "rule__acme__tell-failed-payments"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        webhook = {"conn_type": "http", "host": running.base_url, "password": SECRET}
        slack = {"conn_type": "slackwebhook", "host": f"{running.base_url}/services",
                 "password": f"T0000/B0000/{SLACK_TOKEN}"}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(webhook))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", json.dumps(slack))
        yield running


def _apply(store: RuleStore, tmp_path: Path, rule: dict[str, Any]) -> None:
    path = tmp_path / f"{rule['name']}.yaml"
    path.write_text(yaml.safe_dump(rule))
    apply_rules(store, path)


def _failed_payments(app_db: sa.Engine) -> dict[int, dict[str, Any]]:
    query = (
        "SELECT o.id, o.total, c.name, c.region FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'payment_failed' AND o.total >= 1000"
    )
    with app_db.connect() as conn:
        return {int(row.id): dict(row._mapping) for row in conn.execute(sa.text(query))}


def test_slack_webhook_and_in_app_notices_are_delivered_once(
    store: RuleStore,
    app_db: sa.Engine,
    receiver: Receiver,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.utils.state import DagRunState

    _apply(store, tmp_path, CHANNELS_RULE)
    orders = _failed_payments(app_db)
    assert len(orders) == 2

    dag = dagbag().dags[DAG_ID]
    dag_run = dag.test()
    run_id = dag_run.run_id
    assert dag_run.state == DagRunState.SUCCESS

    # Slack: one unsigned POST per row to the connection's URL, mrkdwn-escaped, subject in bold.
    slack = [r for r in receiver.requests if r["path"].startswith("/services/")]
    assert {r["path"] for r in slack} == {f"/services/T0000/B0000/{SLACK_TOKEN}"}
    texts = sorted(json.loads(r["body"])["text"] for r in slack)
    assert texts == sorted(
        f"*Payment failed: order {i}*\n{o['name']} owes {o['total']:.2f} &lt;!channel&gt;"
        for i, o in orders.items()
    )
    assert not any("webhook-signature" in r["headers"] for r in slack)

    # Webhook: one signed POST per row, verified independently, webhook-id = the delivery key.
    hooks = [r for r in receiver.requests if r["path"] == "/"]
    assert len(hooks) == 2 and all(r["verified"] for r in hooks)
    for request in hooks:
        body = json.loads(request["body"])
        order = int(body["row_key"].strip("[]"))
        assert body == {
            "subject": "Payment failed",
            "body": f"order {order}",
            "rule": "acme/tell-failed-payments",
            "occurrence": run_id,
            "row_key": f"[{order}]",
        }
        expected_key = delivery_key("acme/tell-failed-payments", run_id, "hook", f"[{order}]",
                                    channel="webhook", recipient="connection:crm_api")  # fmt: skip
        assert request["headers"]["webhook-id"] == expected_key

    # In-app: one message per row and recipient, in the rule's organization.
    messages = inbox_rows(store)
    expected_inbox = {(f"Order {i}: payment failed", who) for i, o in orders.items()
                      for who in ("sales-ops", f"ops.{o['region']}")}  # fmt: skip
    assert {(m["subject"], m["recipient"]) for m in messages} == expected_inbox
    assert len(messages) == len(expected_inbox) and {m["organization"] for m in messages} == {"acme"}

    # Every delivery recorded: sent, one attempt, one row per (row, channel, recipient).
    records = deliveries(store)
    assert len(records) == 2 + 2 + len(expected_inbox)
    assert {(r["status"], r["attempts"]) for r in records} == {("sent", 1)}
    assert {r["recipient"] for r in records if r["channel"] == "slack"} == {"connection:slack_oncall"}

    # Outputs are counts; the Slack token and the signing secret appear nowhere in XCom, the
    # automation log or the task logs.
    log = store.get_run(dag_id=DAG_ID, run_id=run_id)
    assert log is not None and log.status == "success"
    outputs = {a.action_id: a.output for a in log.actions}
    assert outputs["ping"]["sent"] == 2 and outputs["inbox"]["sent"] == len(expected_inbox)
    for task_id in ("ping", "hook", "inbox"):
        xcom = dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)
        assert xcom == outputs[task_id]
    captured = capfd.readouterr()
    task_logs = captured.out + captured.err
    assert "send_notification (slack)" in task_logs  # the task logs were captured
    for secret in (SLACK_TOKEN, SECRET.removeprefix("whsec_")):
        assert secret not in task_logs
        assert secret not in json.dumps(outputs) and secret not in json.dumps(records, default=str)

    # The same tasks once more (a retry, a duplicate worker): nothing is sent or inserted again.
    matched = [Match([order], run_id) for order in sorted(orders)]
    requests_before = len(receiver.requests)
    assert dag.get_task("ping").run_action({"run_id": run_id}, matched)["already_sent"] == 2
    again = dag.get_task("inbox").run_action({"run_id": run_id}, matched)
    assert again["already_sent"] == len(expected_inbox) and again["sent"] == 0
    assert len(receiver.requests) == requests_before and len(inbox_rows(store)) == len(expected_inbox)

    # A worker that died between inserting an in-app message and recording it `sent`: the retry
    # records a second attempt, and the message still exists once.
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE notification_deliveries SET status = 'sending' WHERE channel = 'in_app'")
        )
    resumed = dag.get_task("inbox").run_action({"run_id": run_id}, matched)
    assert resumed["sent"] == len(expected_inbox)
    assert len(inbox_rows(store)) == len(expected_inbox)
    assert {(r["status"], r["attempts"]) for r in deliveries(store) if r["channel"] == "in_app"} == {
        ("sent", 2)
    }


MAIL_RULE: dict[str, Any] = {
    "kind": "rule", "name": "mail-failed-payments", "organization": "acme",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": FAILED_PAYMENTS,
    "actions": [{"id": "mail", "type": "send_notification", "channel": "email",
                 "to": ["plain@example.com", "quiet@example.com", "digest@example.com", "muted@example.com"],
                 "subject": "Order {{ record.id }}: payment failed",
                 "body": "Call {{ record.customer__name }} about {{ record.total }}.", "retries": 0}],
}  # fmt: skip


def test_preferences_defer_batch_and_mute_email_and_the_dispatcher_sends_once(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.utils.state import DagRunState
    from rule_engine.notification_dispatcher import dispatch_digests, dispatch_due

    engine = store.engine
    now = dt.datetime.now(dt.UTC)
    # A quiet window around the moment of the run (in the recipient's own time zone).
    tokyo = dt.timezone(dt.timedelta(hours=9))
    quiet_start = (now - dt.timedelta(hours=1)).astimezone(tokyo).time().replace(second=0, microsecond=0)
    quiet_end = (now + dt.timedelta(hours=2)).astimezone(tokyo).time().replace(second=0, microsecond=0)
    for prefs in (
        Preferences("acme", "quiet@example.com", quiet_start=quiet_start, quiet_end=quiet_end,
                    timezone="Asia/Tokyo"),
        Preferences("acme", "digest@example.com", digest="daily", digest_hour=7, timezone="Europe/Berlin"),
        Preferences("acme", "muted@example.com", muted_channels=frozenset({"email"})),
    ):  # fmt: skip
        set_preferences(engine, prefs, actor="test", now=now)
    _apply(store, tmp_path, MAIL_RULE)
    orders = _failed_payments(app_db)

    with running_smtp(monkeypatch) as inbox:
        dag_run = dagbag().dags["rule__acme__mail-failed-payments"].test()
        assert dag_run.state == DagRunState.SUCCESS

        # Only the recipient without preferences got mail now; muted gets none, ever.
        assert len(inbox.to("plain@example.com")) == len(orders)
        assert len(inbox.messages) == len(orders)
        by_recipient = _by_recipient(deliveries(store))
        assert by_recipient["plain@example.com"] == [("sent", 1)] * 2
        assert by_recipient["muted@example.com"] == [("muted", 0)] * 2
        assert by_recipient["quiet@example.com"] == [("deferred", 0)] * 2
        assert by_recipient["digest@example.com"] == [("digest", 0)] * 2
        queued = {r["recipient"]: r["deliver_after"] for r in deliveries(store) if r["deliver_after"]}
        window_end = queued["quiet@example.com"]
        assert now < window_end <= now + dt.timedelta(hours=2, minutes=1)
        assert window_end.astimezone(tokyo).time() == quiet_end
        digest_at = queued["digest@example.com"]
        assert digest_at.astimezone(ZoneInfo("Europe/Berlin")).time() == dt.time(7, 0)

        # Before the window ends the dispatcher sends nothing; after it, each deferred mail once.
        assert dispatch_due(engine, now) == {}
        after_window = window_end + dt.timedelta(minutes=1)
        assert dispatch_due(engine, after_window) == {"sent": 2}
        assert dispatch_due(engine, after_window) == {}
        quiet_mail = inbox.to("quiet@example.com")
        assert sorted(str(m["Subject"]) for m in quiet_mail) == sorted(
            f"Order {i}: payment failed" for i in orders
        )
        run_id = dag_run.run_id
        assert {m["Message-ID"] for m in quiet_mail} == {
            f"<{idempotency_key('acme/mail-failed-payments', run_id, 'mail', f'[{i}]')}@example.com>"
            for i in orders
        }  # the Message-ID it would have had when sent at once
        assert _by_recipient(deliveries(store))["quiet@example.com"] == [("sent", 1)] * 2

        # The digest: both notices in one email at the digest time, once.
        assert dispatch_digests(engine, digest_at - dt.timedelta(minutes=1)) == {}
        assert dispatch_digests(engine, digest_at) == {"sent": 1, "digested_messages": 2}
        assert dispatch_digests(engine, digest_at + dt.timedelta(minutes=5)) == {}
        (digest,) = inbox.to("digest@example.com")
        assert str(digest["Subject"]) == "Notification digest: 2 notifications"
        plain = digest.get_body(("plain",))
        assert plain is not None
        text = plain.get_content()
        assert all(f"Order {i}: payment failed" in text for i in orders)
        assert all(f"Call {o['name']} about" in text for o in orders.values())
        assert inbox.to("muted@example.com") == []

    rows = deliveries(store)
    assert _by_recipient(rows)["digest@example.com"] == [("digested", 0), ("digested", 0), ("sent", 1)]
    digest_record = next(r for r in rows if r["rule_id"] == "(digest)")
    assert digest_record["channel"] == "email" and digest_record["message_json"] is None
    log = store.get_run(dag_id="rule__acme__mail-failed-payments", run_id=dag_run.run_id)
    assert log is not None
    assert {k: v for k, v in log.actions[0].output.items() if v} == {
        "channel": "email", "sent": 2, "muted": 2, "deferred": 2, "digest": 2
    }  # fmt: skip
    assert "@example.com" not in json.dumps(log.actions[0].output)


def _by_recipient(rows: list[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        found.setdefault(row["recipient"], []).append((row["status"], row["attempts"]))
    return {recipient: sorted(pairs) for recipient, pairs in found.items()}


def test_the_dispatcher_dag_sends_due_notices(
    store: RuleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The published `rule_engine_notifications` DAG: parsed from dags/, run for real."""
    from airflow.utils.state import DagRunState

    from rule_compiler.store.notifications import NotificationDelivery, start_delivery

    dag = dagbag().dags["rule_engine_notifications"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.timetable.expression == "*/5 * * * *"
    assert [t.task_id for t in dag.tasks] == ["send_deferred", "send_digests", "check_failure_rates"]

    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    for who in ("ann", "bob"):
        key = delivery_key("acme/r", "manual__1", "tell", None, channel="in_app", recipient=who)
        delivery = NotificationDelivery(key, "acme", "acme/r", "tell", "manual__1", None, "in_app", who)
        message = {"subject": f"for {who}", "body": "waited", "connection": None}
        assert start_delivery(store.engine, delivery, now=past, status="deferred", message=message,
                              deliver_after=past) == 0  # fmt: skip

    dag_run = dag.test()

    assert dag_run.state == DagRunState.SUCCESS
    assert sorted((m["recipient"], m["subject"]) for m in inbox_rows(store)) == [
        ("ann", "for ann"), ("bob", "for bob")
    ]  # fmt: skip
    assert {r["status"] for r in deliveries(store)} == {"sent"}
    assert dag_run.get_task_instance("send_deferred").xcom_pull(task_ids="send_deferred") == {"sent": 2}


def test_a_retry_sends_only_what_is_not_recorded_sent(
    store: RuleStore, app_db: sa.Engine, receiver: Receiver, tmp_path: Path
) -> None:
    """The Slack task's own code, called as Airflow's tries would call it (the `ti` only carries
    the try number): a 503 on one row retries the task, and the retry posts that row alone."""
    from types import SimpleNamespace

    from rule_compiler.runtime.webhook_requests import WebhookRetryableError

    _apply(store, tmp_path, {**CHANNELS_RULE, "actions": [{**CHANNELS_RULE["actions"][0], "retries": 2}]})
    task = dagbag().dags[DAG_ID].get_task("ping")
    failed = sorted(_failed_payments(app_db))
    matched = [Match([order], "manual__r") for order in failed]
    receiver.replies.extend([Reply(200), Reply(503, b"busy", {"Retry-After": "2"})])

    with pytest.raises(WebhookRetryableError) as first:
        task.run_action({"run_id": "manual__r", "ti": SimpleNamespace(try_number=1)}, matched)
    assert first.value.retry_after == 2.0  # RetryAfterPolicy schedules the retry from it
    assert sorted((r["status"], r["attempts"]) for r in deliveries(store)) == [("retrying", 1), ("sent", 1)]

    second = task.run_action({"run_id": "manual__r", "ti": SimpleNamespace(try_number=2)}, matched)
    assert (second["sent"], second["already_sent"], second["retrying"]) == (1, 1, 0)
    assert len(receiver.requests) == 3
    assert sorted((r["status"], r["attempts"]) for r in deliveries(store)) == [("sent", 1), ("sent", 2)]
    (retried,) = [r for r in deliveries(store) if r["attempts"] == 2]
    assert retried["error"] is None and retried["sent_at"] is not None

    # On the last try a retryable failure fails the action for good, recorded as failed.
    receiver.replies.append(Reply(503))
    with pytest.raises(PermanentActionError, match="1 notification"):
        task.run_action(
            {"run_id": "manual__s", "ti": SimpleNamespace(try_number=3)}, [Match([failed[0]], "manual__s")]
        )
    assert [r["status"] for r in deliveries(store) if r["occurrence_id"] == "manual__s"] == ["failed"]
