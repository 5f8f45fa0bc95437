"""Notifiers on the rule engine's channels, and a rule's failure notice to its owner.

One real `dag.test()`: a rule with an owner whose webhook action is refused (HTTP 400) emails the
owner once per run through aiosmtpd. The other tests call the notifiers directly with a hand-built
callback context — standing in for the one Airflow passes to `on_failure_callback` — against the
real store, SMTP server and HTTP receiver.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.webhook_requests import WebhookRetryableError
from rule_compiler.store import RuleStore
from rule_compiler.store.inbox import list_inbox
from rule_compiler.store.preferences import Preferences, set_preferences
from tests.airflow.conftest import apply_rules, dagbag
from tests.airflow.notify_helpers import Inbox, deliveries, free_port, running_smtp
from tests.security.receiver import Receiver, Reply, running_receiver

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OWNED_RULE = {
    "kind": "rule", "name": "owned-push", "organization": "acme", "owner": "owner@example.com",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": {"all": [{"field": "status", "operator": "equals", "value": "pending"},
                           {"field": "total", "operator": "gte", "value": 10000}]},
    "actions": [{"id": "push", "type": "send_notification", "channel": "webhook", "connection": "crm_api",
                 "subject": "Big pending order", "body": "order {{ record.id }}", "retries": 0}],
}  # fmt: skip


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        webhook = {"conn_type": "http", "host": running.base_url, "password": SECRET}
        slack = {"conn_type": "slackwebhook", "password": f"{running.base_url}/services/T1/B1/tok"}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(webhook))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", json.dumps(slack))
        yield running


@pytest.fixture
def smtp_inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with running_smtp(monkeypatch) as inbox:
        yield inbox


def _context(task_id: str = "push", exception: BaseException | None = None) -> dict[str, Any]:
    """The parts of Airflow's callback context the notifiers read (built by hand, see the docs)."""
    ti = SimpleNamespace(dag_id="rule__acme__owned-push", run_id="manual__2026-01-01", task_id=task_id)
    return {"ti": ti, "run_id": ti.run_id, "exception": exception, "conn": "never rendered"}


@pytest.fixture
def owned_rule(store: RuleStore, app_db: sa.Engine, tmp_path: Path) -> str:
    """The rule with an owner, registered; its dag id."""
    path = tmp_path / "owned-push.yaml"
    path.write_text(yaml.safe_dump(OWNED_RULE))
    (dag_id,) = apply_rules(store, path)
    return dag_id


def test_the_owner_is_emailed_once_when_an_action_fails_permanently(
    store: RuleStore,
    owned_rule: str,
    receiver: Receiver,
    smtp_inbox: Inbox,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.utils.state import DagRunState
    from rule_engine.notifiers import OwnerFailureNotifier

    receiver.replies.extend(Reply(400, b'{"error": "unknown order"}') for _ in range(10))
    dag = dagbag().dags[owned_rule]
    callbacks = dag.get_task("push").on_failure_callback
    assert isinstance(callbacks, list) and isinstance(callbacks[0], OwnerFailureNotifier)
    assert callbacks[0].template_fields == ()

    dag_run = dag.test()
    inbox = smtp_inbox

    assert dag_run.state == DagRunState.FAILED
    assert len(receiver.requests) == 1  # the action did fail at the receiver
    # The action and record_outcome both failed: one notice for the run.
    (notice,) = inbox.to("owner@example.com")
    assert len(inbox.messages) == 1
    assert str(notice["Subject"]) == "Automation acme/owned-push failed in task push"
    plain = notice.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert f"Run:   {dag_run.run_id}" in text and "HTTP 400" in text
    (record,) = [r for r in deliveries(store) if r["action_id"] == "owner-failure"]
    assert (record["channel"], record["recipient"], record["status"], record["attempts"]) == (
        "email", "owner@example.com", "sent", 1
    )  # fmt: skip
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "rule engine notice (email)" in logs  # the callback ran in this process and logged
    secret = SECRET.removeprefix("whsec_")
    assert secret not in logs and secret not in notice.as_string()
    xcom = dag_run.get_task_instance("evaluate_conditions").xcom_pull(task_ids="evaluate_conditions")
    assert secret not in json.dumps(xcom, default=str)


def test_an_owner_name_gets_an_in_app_notice_and_its_preferences_apply(store: RuleStore) -> None:
    from rule_engine.notifiers import OwnerFailureNotifier

    notifier = OwnerFailureNotifier(owner="sales-ops", organization="acme", rule_id="acme/owned-push")
    assert notifier.channel == "in_app"
    failure = PermanentActionError("receiver answered HTTP 400")
    notifier(_context(exception=failure))
    notifier(_context(task_id="record_outcome", exception=failure))  # same run: no second notice
    (message,) = list_inbox(store.engine, organization="acme", recipient="sales-ops")
    assert message.subject == "Automation acme/owned-push failed in task push"
    assert "Error: PermanentActionError: receiver answered HTTP 400" in message.body
    assert "never rendered" not in message.body

    muted = Preferences("acme", "ops-lead", muted_channels=frozenset({"in_app"}))
    set_preferences(store.engine, muted, actor="test", now=dt.datetime.now(dt.UTC))
    OwnerFailureNotifier(owner="ops-lead", organization="acme", rule_id="acme/owned-push")(_context())
    assert list_inbox(store.engine, organization="acme", recipient="ops-lead") == []
    assert [r["status"] for r in deliveries(store) if r["recipient"] == "ops-lead"] == ["muted"]


def test_a_notifier_renders_only_in_our_sandbox_and_posts_to_slack(
    store: RuleStore, receiver: Receiver
) -> None:
    from rule_engine.notifiers import RuleEngineNotifier

    with pytest.raises(ValueError, match="unknown template variable 'conn'"):
        RuleEngineNotifier(channel="slack", connection="slack_oncall", organization="acme",
                           subject="x", body="{{ conn.crm_api.password }}")  # fmt: skip
    notifier = RuleEngineNotifier(
        channel="slack", connection="slack_oncall", organization="acme", rule_id="acme/owned-push",
        subject="{{ rule.id }} failed",
        body="task {{ run.task_id }} of {{ run.dag_id }}: {{ run.exception }}",
    )  # fmt: skip
    assert notifier.template_fields == ()
    notifier(_context(exception=ValueError("boom <@U123>")))
    (request,) = receiver.requests
    assert request["path"] == "/services/T1/B1/tok"
    assert json.loads(request["body"]) == {
        "text": "*acme/owned-push failed*\n"
        "task push of rule__acme__owned-push: ValueError: boom &lt;@U123&gt;"
    }


def test_a_notifier_never_raises_and_records_what_failed(
    store: RuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rule_engine.notifiers import RuleEngineNotifier

    dead = {"conn_type": "smtp", "host": "127.0.0.1", "port": free_port(), "extra": {"timeout": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEAD", json.dumps(dead))
    notifier = RuleEngineNotifier(channel="email", connection="smtp_dead", organization="acme",
                                  to=["oncall@example.com"], subject="s", body="b")  # fmt: skip
    notifier(_context())  # logs, never raises
    (record,) = deliveries(store)
    assert record["status"] == "failed" and "could not deliver through smtp_dead" in record["error"]


def test_exception_summaries_redact_masked_secrets() -> None:
    from airflow.sdk.log import mask_secret
    from rule_engine.notifiers import exception_summary

    mask_secret("pa55-w0rd-xyz")
    summary = exception_summary(RuntimeError("login with pa55-w0rd-xyz refused\nsecond line"))
    assert summary.startswith("RuntimeError: login with ") and "pa55-w0rd-xyz" not in summary
    assert "second line" not in summary


def test_slack_answers_are_classified(receiver: Receiver) -> None:
    from rule_engine.hooks.slack import SlackWebhookSender, slack_webhook_url

    receiver.replies.extend([Reply(429, b"rate limited", {"Retry-After": "7"}), Reply(404, b"no_service")])
    sender = SlackWebhookSender("slack_oncall")
    with pytest.raises(WebhookRetryableError) as retryable:
        sender.post({"text": "hi"})
    assert retryable.value.retry_after == 7.0
    with pytest.raises(PermanentActionError, match="HTTP 404"):
        sender.post({"text": "hi"})
    assert slack_webhook_url(host=None, password="T1/B2/c3") == "https://hooks.slack.com/services/T1/B2/c3"
    assert slack_webhook_url(host="https://hooks.example/x", password=None) == "https://hooks.example/x"
    with pytest.raises(PermanentActionError, match="no Slack webhook URL"):
        slack_webhook_url(host=None, password=None, conn_id="empty")


def test_rules_without_an_owner_get_no_failure_callback(store: RuleStore, tmp_path: Path) -> None:
    path = tmp_path / "unowned.yaml"
    path.write_text(yaml.safe_dump({**OWNED_RULE, "name": "unowned", "owner": None}))
    apply_rules(store, path)
    assert not dagbag().dags["rule__acme__unowned"].get_task("push").on_failure_callback
