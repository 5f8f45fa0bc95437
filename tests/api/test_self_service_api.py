"""Self-service through the real app: ``/me/inbox`` and ``/me/preferences`` act for the caller only, in
their organization; ``/notifications/deliveries`` lists the organization's delivery records for editors."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from rule_compiler.store import RuleStore
from rule_compiler.store import inbox as store_inbox
from rule_compiler.store import notifications as store_notifications
from rule_compiler.store import preferences as store_preferences
from tests.api.conftest import Api

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def messages(store: RuleStore) -> None:
    for i, (org, recipient) in enumerate(
        [("acme", "vera"), ("acme", "vera"), ("acme", "ed"), ("globex", "vera"), ("acme", "vera")]
    ):
        store_inbox.add_inbox_message(
            store.engine,
            idempotency_key=_key(f"m{i}"),
            organization=org,
            recipient=recipient,
            rule_id=f"{org}/flag",
            subject=f"message {i}",
            body=f"body {i}",
            now=NOW + dt.timedelta(minutes=i),
        )


def test_the_inbox_is_the_callers_own(api: Api, messages: None) -> None:
    page = api.as_("vera").get("/me/inbox").json()
    assert [m["subject"] for m in page["items"]] == ["message 4", "message 1", "message 0"]
    assert (page["total"], page["has_more"]) == (3, False)  # total: unread
    first = api.as_("vera").get("/me/inbox", params={"limit": 1}).json()
    assert (len(first["items"]), first["has_more"]) == (1, True)

    ed_message = api.as_("ed").get("/me/inbox").json()["items"][0]["id"]
    marked = api.as_("vera").post("/me/inbox/read", json={"ids": [page["items"][0]["id"], ed_message]})
    assert marked.json() == {"marked": 1, "unread": 2}  # ed's message is not vera's to mark
    assert api.as_("ed").get("/me/inbox").json()["total"] == 1
    unread = api.as_("vera").get("/me/inbox", params={"unread": "true"}).json()["items"]
    assert [m["subject"] for m in unread] == ["message 1", "message 0"]
    assert api.as_("vera").post("/me/inbox/read", json={}).json() == {"marked": 2, "unread": 0}
    assert api.as_("vera").post("/me/inbox/read", json={"ids": [1], "extra": 1}).status_code == 422
    assert api.as_("nomad").get("/me/inbox").status_code == 403


def test_preferences_are_read_written_and_cleared(api: Api, store: RuleStore) -> None:
    vera = api.as_("vera")
    assert vera.get("/me/preferences").json() == {
        "recipient": "vera",
        "muted_channels": [],
        "quiet_start": None,
        "quiet_end": None,
        "timezone": "UTC",
        "digest": "off",
        "digest_hour": 8,
        "stored": False,
    }
    body = {
        "muted_channels": ["slack"],
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "timezone": "Europe/Paris",
        "digest": "daily",
        "digest_hour": 9,
    }
    written = vera.put("/me/preferences", json=body)
    assert written.status_code == 200, written.text
    assert written.json() == {**body, "recipient": "vera", "stored": True}
    stored = store_preferences.get_preferences(store.engine, "acme", "vera")
    assert stored is not None and stored.muted_channels == frozenset({"slack"}) and stored.digest_hour == 9
    assert store_preferences.get_preferences(store.engine, "acme", "ed") is None

    for bad, message in (
        ({"quiet_start": "22:00"}, "both"),
        ({"timezone": "Mars/Base"}, "time zone"),
        ({"muted_channels": ["pigeon"]}, "muted_channels"),
        ({"digest_hour": 24}, "digest_hour"),
    ):
        refused = vera.put("/me/preferences", json=bad)
        assert refused.status_code == 422 and message in refused.text, (bad, refused.text)
    assert vera.delete("/me/preferences").status_code == 204
    assert vera.get("/me/preferences").json()["stored"] is False


def test_delivery_records_for_editors_of_the_organization(api: Api, store: RuleStore) -> None:
    for i, (org, channel, recipient) in enumerate(
        [("acme", "email", "a@example.com"), ("acme", "slack", "#ops"), ("globex", "email", "g@example.com")]
    ):
        delivery = store_notifications.NotificationDelivery(
            idempotency_key=_key(f"d{i}"),
            organization=org,
            rule_id=f"{org}/flag",
            action_id="tell",
            occurrence_id=f"run-{i}",
            row_key="[1]",
            channel=channel,
            recipient=recipient,
        )
        assert store_notifications.start_delivery(store.engine, delivery, now=NOW) == 1
    store_notifications.finish_delivery(
        store.engine, _key("d1"), status="failed", now=NOW, error="429 slow down"
    )
    items = api.as_("ed").get("/notifications/deliveries").json()["items"]
    assert sorted((d["channel"], d["status"]) for d in items) == [("email", "sending"), ("slack", "failed")]
    failed = (
        api.as_("ed").get("/notifications/deliveries", params={"status": "failed", "rule": "flag"}).json()
    )
    assert [(d["recipient"], d["error"]) for d in failed["items"]] == [("#ops", "429 slow down")]
    assert api.as_("vera").get("/notifications/deliveries").status_code == 403
    assert [d["recipient"] for d in api.as_("gina").get("/notifications/deliveries").json()["items"]] == [
        "g@example.com"
    ]
