"""The notification dispatcher on SQLite and Postgres, called directly at chosen times: deferred
messages sent once, failures recorded and retried later without holding the others up, digests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from rule_engine.notification_dispatcher import (
    DIGEST_RULE,
    MAX_DISPATCH_ATTEMPTS,
    STALE_CLAIM,
    dispatch_digests,
    dispatch_due,
)

from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store.inbox import list_inbox
from rule_compiler.store.notifications import NotificationDelivery, claim_due, get_delivery, start_delivery
from tests.airflow.notify_helpers import Inbox, free_port, running_smtp

pytestmark = [pytest.mark.airflow]
T0 = dt.datetime(2026, 3, 2, 22, 30, tzinfo=dt.UTC)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    store = RuleStore(any_db_url)
    store.upgrade()
    yield store.engine
    store.close()


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    dead = {"conn_type": "smtp", "host": "127.0.0.1", "port": free_port(), "extra": {"timeout": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEAD", json.dumps(dead))
    with running_smtp(monkeypatch) as inbox:
        yield inbox


def _queue(
    engine: sa.Engine, who: str, channel: str, *, status: str, when: dt.datetime, **message: Any
) -> str:
    key = delivery_key("acme/r", "manual__1", "tell", None, channel=channel, recipient=who)
    delivery = NotificationDelivery(key, "acme", "acme/r", "tell", "manual__1", None, channel, who)
    stored = {"subject": f"for {who}", "body": f"hello {who}", **message}
    assert start_delivery(engine, delivery, now=T0, status=status, message=stored, deliver_after=when) == 0  # type: ignore[arg-type]
    return key


def test_deferred_messages_go_out_once_and_a_failing_one_waits_without_blocking(
    engine: sa.Engine, smtp: Inbox
) -> None:
    end = T0 + dt.timedelta(hours=8)
    good = _queue(engine, "ann@example.com", "email", status="deferred", when=end, connection="smtp_default")
    bad = _queue(engine, "bob@example.com", "email", status="deferred", when=end, connection="smtp_dead")
    app = _queue(engine, "carol", "in_app", status="deferred", when=end)

    assert dispatch_due(engine, end - dt.timedelta(seconds=1)) == {}
    assert dispatch_due(engine, end) == {"sent": 2, "requeued": 1}
    assert [m["Subject"] for m in smtp.to("ann@example.com")] == ["for ann@example.com"]
    assert [m.subject for m in list_inbox(engine, organization="acme", recipient="carol")] == ["for carol"]
    for key in (good, app):
        row = get_delivery(engine, key)
        assert row is not None and (row.status, row.attempts, row.message) == ("sent", 1, None)
    failing = get_delivery(engine, bad)
    assert failing is not None and (failing.status, failing.attempts) == ("deferred", 1)
    assert failing.deliver_after == end + dt.timedelta(minutes=5)
    assert "could not deliver through smtp_dead" in (failing.error or "")

    # Each later run tries the failing one again, waiting longer; after the last attempt: failed.
    moment = end
    for attempt in range(2, MAX_DISPATCH_ATTEMPTS + 1):
        row = get_delivery(engine, bad)
        assert row is not None and row.deliver_after is not None
        moment = row.deliver_after
        outcome = dispatch_due(engine, moment)
        assert outcome == ({"failed": 1} if attempt == MAX_DISPATCH_ATTEMPTS else {"requeued": 1})
    final = get_delivery(engine, bad)
    assert final is not None and (final.status, final.attempts) == ("failed", MAX_DISPATCH_ATTEMPTS)
    assert dispatch_due(engine, moment + dt.timedelta(days=1)) == {}
    assert len(smtp.messages) == 1  # the good one, once


def test_a_claim_abandoned_mid_send_is_put_back(engine: sa.Engine, smtp: Inbox) -> None:
    key = _queue(engine, "dave", "in_app", status="deferred", when=T0)
    assert claim_due(engine, key, T0) == 1  # a dispatcher took it, then died
    assert dispatch_due(engine, T0 + dt.timedelta(minutes=5)) == {}  # still its claim
    assert dispatch_due(engine, T0 + STALE_CLAIM + dt.timedelta(minutes=1)) == {"recovered": 1, "sent": 1}
    row = get_delivery(engine, key)
    assert row is not None and (row.status, row.attempts) == ("sent", 2)
    assert len(list_inbox(engine, organization="acme", recipient="dave")) == 1


def test_digests_batch_per_recipient_and_channel(engine: sa.Engine, smtp: Inbox) -> None:
    at = T0 + dt.timedelta(hours=9)
    for number in (1, 2):
        for who, channel in (("erin@example.com", "email"), ("erin", "in_app")):
            key = delivery_key("acme/r", f"manual__{number}", "tell", None, channel=channel, recipient=who)
            delivery = NotificationDelivery(
                key, "acme", "acme/r", "tell", f"manual__{number}", None, channel, who
            )
            message = {"subject": f"notice {number}", "body": f"body {number}", "connection": "smtp_default"}
            start_delivery(engine, delivery, now=T0, status="digest", message=message, deliver_after=at)

    assert dispatch_digests(engine, at) == {"sent": 2, "digested_messages": 4}
    assert dispatch_digests(engine, at + dt.timedelta(hours=1)) == {}
    (mail,) = smtp.to("erin@example.com")
    assert mail["Subject"] == "Notification digest: 2 notifications"
    (digest,) = list_inbox(engine, organization="acme", recipient="erin")
    assert digest.subject == "Notification digest: 2 notifications"
    assert "notice 1" in digest.body and "body 2" in digest.body
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT rule_id, status, attempts FROM notification_deliveries")).all()
    assert sorted((r.rule_id, r.status) for r in rows) == [
        (DIGEST_RULE, "sent"), (DIGEST_RULE, "sent"), *[("acme/r", "digested")] * 4
    ]  # fmt: skip


def test_a_dispatch_out_of_time_leaves_the_rest_for_the_next_run(engine: sa.Engine, smtp: Inbox) -> None:
    key = _queue(engine, "fay", "in_app", status="deferred", when=T0)
    assert dispatch_due(engine, T0, budget_seconds=-1) == {"left_for_next_run": 1}
    row = get_delivery(engine, key)
    assert row is not None and (row.status, row.attempts) == ("deferred", 0)
    assert dispatch_due(engine, T0) == {"sent": 1}
