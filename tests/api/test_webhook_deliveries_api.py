"""``/webhooks/deliveries`` through the real app: an editor lists the organization's ledger and sends a
stored request again to a real loopback receiver, which checks the signature (the connection's current
secret) and sees the same ``webhook-id``; the attempt is in the ledger and the audit log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rule_compiler.runtime.webhook_requests import deliveries, delivery_row
from rule_compiler.store import RuleStore
from tests.api.conftest import Api
from tests.security.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.airflow  # the connection's secret is read through Airflow's hooks
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = "a" * 64


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with running_receiver(SECRET) as running:
        connection = {"conn_type": "http", "host": running.base_url, "password": SECRET}
        monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(connection))
        yield running


def _insert(
    store: RuleStore, key: str, *, organization: str, status: str, request: dict[str, Any] | None
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            deliveries.insert().values(
                idempotency_key=key,
                rule_id=f"{organization}/push",
                action_id="crm",
                occurrence_id="manual__1",
                row_key="[1]",
                status=status,
                attempts=1,
                response_status=500,
                error="HTTP 500",
                updated_at=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC),
                organization=organization,
                request_json=None if request is None else json.dumps(request),
            )
        )


REQUEST = {"method": "POST", "headers": {}, "body": '{"order":1}', "connection": "crm_api", "path": "/hook"}


def test_an_editor_lists_and_redelivers(api: Api, store: RuleStore, receiver: Receiver) -> None:
    _insert(store, KEY, organization="acme", status="failed", request=REQUEST)
    _insert(store, "b" * 64, organization="acme", status="failed", request=None)
    _insert(store, "c" * 64, organization="globex", status="failed", request=REQUEST)
    listed = api.as_("ed").get("/webhooks/deliveries", params={"status": "failed"}).json()["items"]
    assert {(d["key"][:1], d["redeliverable"]) for d in listed} == {("a", True), ("b", False)}

    answer = api.as_("ed").post(f"/webhooks/deliveries/{KEY}/redeliver")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "key": KEY,
        "attempt": 2,
        "delivered": True,
        "http_status": 200,
        "ledger_status": "delivered",
        "error": None,
    }
    (sent,) = receiver.requests
    assert sent["headers"]["webhook-id"] == KEY and sent["verified"] and sent["path"] == "/hook"
    row = delivery_row(store.engine, KEY)
    assert row is not None and (row["status"], row["attempts"]) == ("delivered", 2)
    audit = api.as_("ada").get("/audit", params={"kind": "webhook_delivery"}).json()["items"]
    assert [(a["actor"], a["name"], a["detail"]["delivered"], a["diff"]) for a in audit] == [
        ("ed", KEY, True, None)
    ]

    again = api.as_("ed").post(f"/webhooks/deliveries/{KEY}/redeliver")
    assert again.status_code == 409 and "force" in again.text
    assert api.as_("ed").post(f"/webhooks/deliveries/{'b' * 64}/redeliver").status_code == 409
    assert api.as_("ed").post(f"/webhooks/deliveries/{'c' * 64}/redeliver").status_code == 404  # globex's
    assert api.as_("ed").post(f"/webhooks/deliveries/{'d' * 64}/redeliver").status_code == 404
    assert api.as_("ed").post("/webhooks/deliveries/not-a-key/redeliver").status_code == 422
    assert api.as_("vera").get("/webhooks/deliveries").status_code == 403
    assert len(receiver.requests) == 1


def test_a_receiver_that_still_fails_is_recorded(api: Api, store: RuleStore, receiver: Receiver) -> None:
    _insert(store, KEY, organization="acme", status="retrying", request=REQUEST)
    receiver.replies.append(Reply(503, b"still down"))
    answer = api.as_("ed").post(f"/webhooks/deliveries/{KEY}/redeliver").json()
    assert (answer["delivered"], answer["http_status"], answer["ledger_status"]) == (False, 503, "retrying")
    row = delivery_row(store.engine, KEY)
    assert row is not None and (row["status"], row["attempts"], row["response_status"]) == (
        "retrying",
        2,
        503,
    )
