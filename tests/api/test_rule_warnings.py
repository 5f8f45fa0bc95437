"""Non-blocking warnings through the real app: an event rule on a table whose catalog entry says change
capture is not installed is validated, created and replaced, and each response carries the warning."""

from __future__ import annotations

from typing import Any

from rule_compiler.store import RuleStore
from tests.api.conftest import Api, catalog_for

RULE: dict[str, Any] = {
    "name": "watch-orders",
    "trigger": {"type": "event", "connection": "app_db", "table": "orders", "events": ["created"]},
    "actions": [
        {
            "id": "flag",
            "type": "update_record",
            "connection": "app_db",
            "table": "orders",
            "values": {"priority": "high"},
        }
    ],
}


def _set_capture(store: RuleStore, installed: bool | None) -> None:
    catalog = catalog_for("acme")
    if installed is not None:
        catalog["connections"]["app_db"]["tables"]["orders"]["capture_installed"] = installed
    store.put_catalog(organization="acme", catalog=catalog, actor="setup")


def _warnings(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(w["path"], w["code"]) for w in body["warnings"]]


def test_capture_not_installed_is_a_warning_in_validate_create_and_replace(
    api: Api, store: RuleStore
) -> None:
    _set_capture(store, False)
    ed = api.as_("ed")
    checked = ed.post("/rules/validate", json=RULE).json()
    assert checked["valid"] is True and checked["errors"] == []
    assert _warnings(checked) == [("trigger.table", "capture_not_installed")]
    assert (
        "rule-compiler events install --connection app_db --table orders" in checked["warnings"][0]["message"]
    )

    created = ed.post("/rules", json=RULE)
    assert created.status_code == 201, created.text
    assert _warnings(created.json()) == [("trigger.table", "capture_not_installed")]
    assert store.get(organization="acme", kind="rule", name="watch-orders").version == 1
    assert "warnings" not in ed.get("/rules/watch-orders").json()  # only write responses carry them

    _set_capture(store, True)
    replaced = ed.put(
        "/rules/watch-orders",
        json={**RULE, "description": "now captured"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["warnings"] == []
    assert ed.post("/rules/validate", json=RULE).json()["warnings"] == []


def test_unknown_capture_state_does_not_warn(api: Api, store: RuleStore) -> None:
    _set_capture(store, None)
    assert api.as_("ed").post("/rules/validate", json=RULE).json()["warnings"] == []
