"""``GET /definitions``, the definitions board, through the real app: every rule, workflow and report of
the caller's organization with its state (paused in the store, a render-error placeholder in Airflow),
trigger, owner, last run and daily runs; search, filters and paging over all of them; and the ETag it
gives activates and deactivates with PATCH (the store side runs on both databases in
tests/store/test_store_definition_board.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rule_compiler.clock import utcnow
from rule_compiler.store import RuleStore
from tests.analytics_log import Log
from tests.api.conftest import Api, Recorder, create, rule_body
from tests.api.test_reports_api import create_report
from tests.api.test_workflows_api import _create_route_new_orders

RULES = ["archive-void-orders", "escalate-vip-orders", "expedite-vip-payments", "flag-big-paid-orders"]


def _board(api: Api, user: str = "vera", **params: Any) -> dict[str, Any]:
    answer = api.as_(user).get("/definitions", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _populate(api: Api) -> None:
    for name in RULES:
        create(api, name)
    _create_route_new_orders(api)
    create_report(api)


def test_the_board_lists_every_kind_that_runs_with_its_trigger_owner_and_state(
    api: Api, recorder: Recorder
) -> None:
    _populate(api)
    recorder.render_errors["rule__acme__expedite-vip-payments"] = "table orders has no column paid"
    body = _board(api)
    assert [(i["kind"], i["name"]) for i in body["items"]] == [
        ("rule", "archive-void-orders"),
        ("rule", "escalate-vip-orders"),
        ("rule", "expedite-vip-payments"),
        ("rule", "flag-big-paid-orders"),
        ("workflow", "route-new-orders"),
        ("report", "weekly-sales"),
    ]
    by_name = {item["name"]: item for item in body["items"]}
    assert by_name["escalate-vip-orders"]["trigger"] == "schedule: */15 * * * * (Europe/Berlin)"
    assert by_name["expedite-vip-payments"]["trigger"] == "event: orders (updated)"
    assert by_name["flag-big-paid-orders"]["trigger"] == "manual"
    assert by_name["weekly-sales"]["trigger"].startswith("schedule: ")
    assert by_name["flag-big-paid-orders"]["owner"] == "sales-ops"
    assert by_name["archive-void-orders"]["owner"] is None
    broken = by_name["expedite-vip-payments"]
    assert (broken["state"], broken["render_error"]) == ("render_error", "table orders has no column paid")
    assert by_name["escalate-vip-orders"]["state"] == "active"
    assert body["total"] == 6 and body["states"] == {"active": 5, "paused": 0, "render_error": 1}
    item = by_name["flag-big-paid-orders"]
    assert item["last_run"] is None and item["runs"] == 0 and item["success_rate"] is None
    assert len(item["days"]) == 14 and item["days"][-1]["day"] == utcnow().date().isoformat()


def test_search_filters_and_paging_run_over_all_definitions(api: Api) -> None:
    _populate(api)
    assert [i["name"] for i in _board(api, q="VIP")["items"]] == [
        "escalate-vip-orders",
        "expedite-vip-payments",
    ]
    assert [i["name"] for i in _board(api, q="sales-ops")["items"]] == [
        "escalate-vip-orders",
        "flag-big-paid-orders",
        "route-new-orders",
        "weekly-sales",
    ]  # the owner matches
    assert [i["kind"] for i in _board(api, kind="workflow")["items"]] == ["workflow"]
    assert _board(api, owner="sales-ops")["total"] == 4
    assert _board(api, owner="sales")["total"] == 0  # exactly
    page = _board(api, limit=4, offset=4)
    assert [i["name"] for i in page["items"]] == ["route-new-orders", "weekly-sales"]
    assert (page["total"], page["has_more"]) == (6, False)
    assert _board(api, limit=4)["has_more"] is True


def test_the_etag_deactivates_and_activates_and_the_state_follows(api: Api) -> None:
    create(api, "flag-big-paid-orders")
    [item] = _board(api)["items"]
    stale = item["etag"]
    answer = api.as_("ed").patch(
        "/rules/flag-big-paid-orders", json={"active": False}, headers={"If-Match": stale}
    )
    assert answer.status_code == 200, answer.text
    body = _board(api)
    assert body["items"][0]["state"] == "paused" and body["states"]["paused"] == 1
    assert [i["name"] for i in _board(api, state="paused")["items"]] == ["flag-big-paid-orders"]
    assert _board(api, state="active")["items"] == []
    again = api.as_("ed").patch(
        "/rules/flag-big-paid-orders", json={"active": True}, headers={"If-Match": stale}
    )
    assert again.status_code == 412  # an old ETag from the board never overwrites a newer change
    fresh = body["items"][0]["etag"]
    answer = api.as_("ed").patch(
        "/rules/flag-big-paid-orders", json={"active": True}, headers={"If-Match": fresh}
    )
    assert answer.status_code == 200 and _board(api)["items"][0]["state"] == "active"
    # a viewer reads the board but cannot change a definition
    denied = api.as_("vera").patch(
        "/rules/flag-big-paid-orders", json={"active": False}, headers={"If-Match": "*"}
    )
    assert denied.status_code == 403


def test_the_last_run_and_the_days_come_from_the_log(api: Api, store: RuleStore) -> None:
    create(api, "flag-big-paid-orders")
    log, now = Log(store), utcnow()
    for run_id, hours_ago, status in (("old", 30, "failed"), ("new", 1, "success")):
        started = now - dt.timedelta(hours=hours_ago)
        pk = log.start(run_id, started, name="flag-big-paid-orders")
        log.evaluate(pk, 3, 1, started + dt.timedelta(seconds=1))
        log.finish(pk, status, started + dt.timedelta(seconds=2))
    [item] = _board(api, days=3)["items"]
    assert item["last_run"]["run_id"] == "new" and item["last_run"]["status"] == "success"
    assert (item["runs"], item["success_rate"]) == (2, 0.5)
    assert len(item["days"]) == 3 and item["days"][-1]["succeeded"] == 1


def test_the_board_is_the_callers_organization_and_needs_a_member(api: Api) -> None:
    create(api, "flag-big-paid-orders")
    gina = api.as_("gina").post("/rules", json=rule_body("archive-void-orders"))
    assert gina.status_code == 201, gina.text
    assert [i["name"] for i in _board(api, "gus")["items"]] == ["archive-void-orders"]
    assert api.as_(None).get("/definitions").status_code == 401
    assert api.as_("nomad").get("/definitions").status_code == 403
    assert api.as_("vera").get("/definitions", params={"days": 91}).status_code == 422
    assert api.as_("vera").get("/definitions", params={"state": "broken"}).status_code == 422
