"""A real `dag.test()` of a rule that emails each matched order's customer, received by a real
SMTP server on loopback (aiosmtpd): multipart text + HTML, escaped HTML, stable Message-IDs."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from aiosmtpd.controller import Controller

from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

RULE = {
    "kind": "rule", "name": "mail-big-paid", "organization": "acme",
    "trigger": {"type": "manual", "target": {"connection": "app_db", "table": "orders"}},
    "conditions": {"all": [{"field": "status", "operator": "equals", "value": "paid"},
                           {"field": "total", "operator": "gte", "value": 1000}]},
    "actions": [{"id": "tell", "type": "send_notification", "channel": "email",
                 "to": ["{{ record.customer__email }}"], "subject": "Order {{ record.id }}",
                 "body": "Hello {{ record.customer__name }}, your order {{ record.id }} is paid."}],
}  # fmt: skip


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                  "extra": {"from_email": "automation@example.com"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
    try:
        yield inbox
    finally:
        controller.stop()


def test_each_matched_order_emails_its_customer(
    store: RuleStore, app_db: sa.Engine, smtp_inbox: Inbox, tmp_path: Path
) -> None:
    matching = (
        "SELECT o.id, c.id AS customer_id, c.email, c.name FROM orders o JOIN customers c "
        "ON c.id = o.customer_id WHERE o.status = 'paid' AND o.total >= 1000 AND c.email IS NOT NULL"
    )
    with app_db.begin() as conn:  # a hostile name must arrive escaped in the HTML part
        first = conn.execute(sa.text(matching + " ORDER BY o.id")).first()
        assert first is not None
        conn.execute(
            sa.text("UPDATE customers SET name = 'Eve <script>x</script>' WHERE id = :c"),
            {"c": first.customer_id},
        )
        expected = {row.id: (row.email, row.name) for row in conn.execute(sa.text(matching))}
    assert expected
    path = tmp_path / "mail-big-paid.yaml"
    path.write_text(yaml.safe_dump(RULE))
    apply_rules(store, path)

    from airflow.utils.state import DagRunState

    dag_run = dagbag().dags["rule__acme__mail-big-paid"].test()

    assert dag_run.state == DagRunState.SUCCESS
    received = {int(str(msg["Subject"]).split()[-1]): (rcpt, msg) for rcpt, msg in smtp_inbox.messages}
    assert set(received) == set(expected)
    for order_id, (rcpt, msg) in received.items():
        address, name = expected[order_id]
        assert rcpt == [address] and msg["To"] == address and msg["From"] == "automation@example.com"
        key = idempotency_key("acme/mail-big-paid", dag_run.run_id, "tell", f"[{order_id}]")
        assert msg["Message-ID"] == f"<{key}@example.com>"
        text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
        assert f"Hello {name}, your order {order_id} is paid." in text
        assert "<script>" not in html
        if "<script>" in name:
            assert "Eve &lt;script&gt;x&lt;/script&gt;" in html and name in text
    log = store.get_run(dag_id="rule__acme__mail-big-paid", run_id=dag_run.run_id)
    assert log is not None and log.status == "success"
    output = log.actions[0].output
    assert output["sent"] == len(expected)
    assert not any(address in json.dumps(output) for address, _ in expected.values())  # ids, not addresses
    assert any("<script>" in name for _, name in expected.values())
