"""``POST /notifications/deliveries/{key}/redeliver`` and ``rule-compiler notifications redeliver``
through the real app, the real notice path and a real SMTP server on loopback (aiosmtpd).

The email is first sent while the SMTP connection points at a closed port: the delivery is recorded
``failed``, with its rendered message kept. Once the server runs, a redelivery sends it: the message
arrives exactly once, with the Message-ID its key makes; a sent delivery is never sent again (409).
"""

from __future__ import annotations

import json

import pytest
from rule_engine.channel_senders import ChannelSenders
from rule_engine.notices import Notice, deliver

from rule_compiler.errors import RetryableActionError
from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store.notifications import NotificationDelivery, get_delivery
from tests.airflow.notify_helpers import free_port, running_smtp
from tests.api.conftest import Api

pytestmark = pytest.mark.airflow  # the SMTP connection is read through Airflow's hooks
TO = "ops@example.com"


def _failed_email(store: RuleStore, monkeypatch: pytest.MonkeyPatch, occurrence: str) -> str:
    """An email that could not be sent (nothing listens on the SMTP port): its delivery key."""
    dead = {"conn_type": "smtp", "host": "127.0.0.1", "port": free_port()}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(dead))
    key = delivery_key("acme/flag", occurrence, "tell", "[42]", channel="email", recipient=TO)
    target = NotificationDelivery(key, "acme", "acme/flag", "tell", occurrence, "[42]", "email", TO)
    message = {
        "subject": f"Order 42 ({occurrence})",
        "body": "Order 42 is big.",
        "connection": "smtp_default",
    }
    with pytest.raises(RetryableActionError):
        deliver(store.engine, Notice(target, message), ChannelSenders(timeout=5))
    row = get_delivery(store.engine, key)
    assert row is not None and row.status == "failed" and row.message == message
    return key


def test_a_failed_email_is_redelivered_once(
    api: Api, store: RuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _failed_email(store, monkeypatch, "run-1")
    [listed] = api.as_("ed").get("/notifications/deliveries").json()["items"]
    assert (listed["key"], listed["status"], listed["redeliverable"]) == (key, "failed", True)
    path = f"/notifications/deliveries/{key}/redeliver"
    assert api.as_("vera").post(path).status_code == 403  # viewers may not
    assert api.as_("gina").post(path).status_code == 404  # another organization's

    with running_smtp(monkeypatch) as inbox:
        answer = api.as_("ed").post(path)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "key": key,
            "channel": "email",
            "attempt": 2,
            "sent": True,
            "status": "sent",
            "error": None,
        }
        again = api.as_("ed").post(path)
        assert again.status_code == 409 and "is sent" in again.json()["detail"]
    [email] = inbox.to(TO)
    assert email["Subject"] == "Order 42 (run-1)" and email["Message-ID"].startswith(f"<{key}@")
    assert len(inbox.messages) == 1
    row = get_delivery(store.engine, key)
    assert row is not None and (row.status, row.attempts, row.message) == ("sent", 2, None)
    [audit] = store.audit_entries(organization="acme", kind="notification_delivery")
    assert (audit.actor, audit.name, audit.detail["sent"], audit.detail["attempt"]) == ("ed", key, True, 2)


def test_the_cli_redelivers_a_failed_email(
    store: RuleStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rule_engine.console_script import main

    key = _failed_email(store, monkeypatch, "run-2")
    monkeypatch.setenv("AUTOMATION_STORE_URL", store.url)
    assert main(["notifications", "redeliver", key, "--actor", "olga"]) == 1  # the port is still closed
    assert "not sent" in capsys.readouterr().out
    with running_smtp(monkeypatch) as inbox:
        assert main(["notifications", "redeliver", key, "--actor", "olga"]) == 0
        assert main(["notifications", "redeliver", key]) == 2  # sent: never again
        assert main(["notifications", "redeliver", "f" * 64]) == 2
    assert len(inbox.to(TO)) == 1 and len(inbox.messages) == 1
    err = capsys.readouterr().err
    assert "is sent" in err and f"no notification delivery {'f' * 64}" in err
    audits = store.audit_entries(organization="acme", kind="notification_delivery")
    assert sorted((a.actor, a.detail["attempt"], a.detail["sent"]) for a in audits) == [
        ("olga", 2, False),
        ("olga", 3, True),
    ]
