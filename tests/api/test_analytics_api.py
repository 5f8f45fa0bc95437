"""``/analytics`` through the real app: an organization sees its own numbers only, with the hand-computed
log of tests/analytics_log.py (the store side is tested on both databases in
tests/store/test_store_analytics.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from rule_compiler.clock import utcnow
from rule_compiler.store import RuleStore
from tests.analytics_log import Log, at, write_scenario
from tests.api.conftest import Api

RANGE = {"since": "2026-11-20T00:00:00Z", "until": "2026-11-22T00:00:00Z"}


@pytest.fixture
def logged(store: RuleStore) -> RuleStore:
    write_scenario(store)
    log = Log(store)
    pk = log.start("globex-run", at(10), org="globex", name="g1")
    log.evaluate(pk, 1, 0, at(10, 1))
    return store


def test_an_overview_shows_the_callers_organization_only(api: Api, logged: RuleStore) -> None:
    answer = api.as_("vera").get("/analytics", params={**RANGE, "bucket": "day"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["organization"] == "acme"
    assert body["range"] == {
        "since": "2026-11-20T00:00:00Z",
        "until": "2026-11-22T00:00:00Z",
        "bucket": "day",
    }
    summary = body["summary"]
    assert (
        summary["runs"],
        summary["success"],
        summary["failed"],
        summary["partial"],
        summary["no_match"],
    ) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert (summary["success_rate"], summary["match_rate"]) == (0.5, 8 / 22)
    assert [(p["start"], p["runs"]) for p in body["series"]] == [
        ("2026-11-20T00:00:00Z", 4),
        ("2026-11-21T00:00:00Z", 1),
    ]
    assert [(d["kind"], d["name"]) for d in body["definitions"]] == [("rule", "r1"), ("workflow", "w1")]
    assert [e["error_class"] for e in body["errors"]] == ["TimeoutError", "PermanentActionError"]

    globex = api.as_("gus").get("/analytics", params=RANGE).json()
    assert [(d["name"], d["summary"]["no_match"]) for d in globex["definitions"]] == [("g1", 1)]


def test_a_definition_shows_its_actions(api: Api, logged: RuleStore) -> None:
    answer = api.as_("vera").get("/analytics/rules/r1", params={**RANGE, "bucket": "hour"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(p["start"], p["runs"]) for p in body["series"]] == [
        ("2026-11-20T10:00:00Z", 2),
        ("2026-11-20T11:00:00Z", 1),
        ("2026-11-21T09:00:00Z", 1),
    ]
    [flag] = body["steps"]
    assert {k: flag[k] for k in ("step", "results", "success", "failed", "attempts", "retries", "acted")} == {
        "step": "flag",
        "results": 3,
        "success": 2,
        "failed": 1,
        "attempts": 5,
        "retries": 2,
        "acted": 4,
    }
    workflow = api.as_("vera").get("/analytics/workflows/w1", params=RANGE).json()
    assert [s["step"] for s in workflow["steps"]] == ["check", "write"]
    # another organization's definition of that name is not there for gus
    assert api.as_("gus").get("/analytics/rules/r1", params=RANGE).json()["summary"]["runs"] == 0


def test_the_default_range_is_the_last_seven_days(api: Api, store: RuleStore) -> None:
    log = Log(store)
    now = utcnow()
    for run_id, started in (("recent", now - dt.timedelta(hours=1)), ("old", now - dt.timedelta(days=9))):
        pk = log.start(run_id, started)
        log.evaluate(pk, 1, 0, started + dt.timedelta(seconds=1))
    body = api.as_("vera").get("/analytics").json()
    assert body["summary"]["runs"] == 1
    assert body["range"]["bucket"] == "day"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-11-22T00:00:00Z", "until": "2026-11-20T00:00:00Z"}, "before"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2026-11-20T00:00:00Z"}, "400 days"),
        ({"since": "0"}, "ISO 8601"),
        ({"bucket": "week"}, "hour"),
    ],
)
def test_a_bad_range_is_a_422_that_says_why(api: Api, params: dict[str, str], message: str) -> None:
    answer = api.as_("vera").get("/analytics", params=params)
    assert answer.status_code == 422 and message in answer.text, answer.text


def test_analytics_need_a_member(api: Api, logged: RuleStore) -> None:
    assert api.as_(None).get("/analytics").status_code == 401
    assert api.as_("nomad").get("/analytics").status_code == 403
    assert api.as_("vera").get("/analytics/reports/r1").status_code == 422


def test_notification_deliveries_per_channel(api: Api, store: RuleStore) -> None:
    from rule_compiler.store import notifications as n

    for key, org, channel in (("a", "acme", "email"), ("b", "acme", "slack"), ("c", "globex", "email")):
        delivery = n.NotificationDelivery(
            idempotency_key=key * 64,
            organization=org,
            rule_id=f"{org}/r1",
            action_id="tell",
            occurrence_id="run",
            row_key=None,
            channel=channel,
            recipient="ann",
        )
        assert n.start_delivery(store.engine, delivery, now=at(10)) == 1
    n.finish_delivery(store.engine, "a" * 64, status="sent", now=at(10, 2))
    n.finish_delivery(store.engine, "b" * 64, status="failed", now=at(10, 2), error="429")
    body = api.as_("vera").get("/analytics/notifications", params=RANGE).json()
    assert [(c["channel"], c["deliveries"], c["sent"], c["failed"]) for c in body["channels"]] == [
        ("email", 1, 1, 0),
        ("slack", 1, 0, 1),
    ]
    assert [(p["start"], p["channel"]) for p in body["series"]] == [
        ("2026-11-20T00:00:00Z", "email"),
        ("2026-11-20T00:00:00Z", "slack"),
    ]


def test_webhook_analytics_show_the_callers_organization_only(api: Api, store: RuleStore) -> None:
    from tests.store.test_store_webhook_analytics import attempt

    attempt(store, "k1", at(10), 0.1, "delivered")
    attempt(store, "k2", at(10, 300), 2, "retrying")
    attempt(store, "k2", at(10, 600), 0.5, "failed")
    attempt(store, "k3", at(10), 0.2, "delivered", rule="globex/push")
    answer = api.as_("vera").get("/analytics/webhooks", params={**RANGE, "bucket": "hour"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["organization"] == "acme"
    summary = body["summary"]
    assert (summary["attempts"], summary["delivered"], summary["retrying"], summary["failed"]) == (3, 1, 1, 1)
    assert summary["success_rate"] == 0.5
    assert [(a["definition"], a["action"], a["attempts"]) for a in body["actions"]] == [("push", "hook", 3)]
    assert [(p["start"], p["attempts"]) for p in body["series"]] == [("2026-11-20T10:00:00Z", 3)]
    globex = api.as_("gus").get("/analytics/webhooks", params=RANGE).json()
    assert globex["summary"]["attempts"] == 1
    assert api.as_(None).get("/analytics/webhooks").status_code == 401


def test_report_analytics_show_the_callers_organization_only(api: Api, store: RuleStore) -> None:
    from tests.store.test_store_report_analytics import write_reports

    write_reports(store)
    answer = api.as_("vera").get("/analytics/reports", params={**RANGE, "bucket": "day"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    summary = body["summary"]
    assert (summary["runs"], summary["bytes"], summary["by_status"]) == (
        3,
        6000,
        {"success": 1, "partial": 1, "skipped-empty": 1},
    )
    assert (summary["deliveries"], summary["deliveries_by_status"], summary["deliveries_by_type"]) == (
        2,
        {"sent": 1, "failed": 1},
        {"email": 2},
    )
    assert [(r["report"], r["runs"], r["bytes_per_run"]) for r in body["reports"]] == [
        ("stock", 1, 0.0),
        ("weekly-sales", 2, 3000.0),
    ]
    one = api.as_("vera").get("/analytics/reports", params={**RANGE, "report": "stock"}).json()
    assert [r["report"] for r in one["reports"]] == ["stock"]
    assert api.as_("gus").get("/analytics/reports", params=RANGE).json()["summary"]["runs"] == 1


def test_trigger_analytics_per_watched_table_with_its_consumer_lag(api: Api, store: RuleStore) -> None:
    from tests.api.conftest import create
    from tests.store.test_store_trigger_analytics import _event_run

    create(api, "expedite-vip-payments")  # an event rule on app_db.orders
    _event_run(store, "a", "expedite-vip-payments", events=10, ignored=4, matched=3)
    _event_run(store, "b", "expedite-vip-payments", events=5, ignored=5, matched=0)
    answer = api.as_("vera").get("/analytics/triggers", params=RANGE)
    assert answer.status_code == 200, answer.text
    (table,) = answer.json()["tables"]
    assert (table["connection"], table["table"], table["rules"]) == (
        "app_db",
        "orders",
        ["rule expedite-vip-payments"],
    )
    assert (table["runs"], table["events"], table["ignored"], table["matched"]) == (2, 15, 9, 3)
    assert table["runs_per_event"] == 2 / 15
    assert [c["table"] for c in table["consumers"]] == ["orders"]  # its trigger's cursor, measured now
    assert api.as_("gus").get("/analytics/triggers", params=RANGE).json()["tables"] == []
