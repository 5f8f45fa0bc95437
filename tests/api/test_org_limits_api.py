"""``/limits`` and the quotas through the real app: platform admins set an organization's pool (in
Airflow's metadata database, then the store) and quotas; one more active definition than the quota is
a 422 at ``active``; pushed events past the quota are a 429 with ``Retry-After``, for that
organization only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rule_compiler.store import RuleStore
from tests.api.conftest import PLATFORM_ADMIN, Api, rule_body

EVENT = {
    "connection": "app_db",
    "table": "orders",
    "operation": "updated",
    "old": {"id": 7, "status": "new", "total": 1500},
    "new": {"id": 7, "status": "paid", "total": 1500},
}


def _airflow_pool(name: str) -> int | None:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        pool = session.query(Pool).filter(Pool.pool == name).one_or_none()
        return None if pool is None else int(pool.slots)


def test_members_read_the_limits_and_only_platform_admins_set_them(api: Api, store: RuleStore) -> None:
    empty = api.as_("vera").get("/limits")
    assert empty.status_code == 200, empty.text
    assert empty.json() | {"updated_at": None} == {
        "organization": "acme", "pool": None, "pool_slots": None, "max_active_definitions": None,
        "events_per_minute": None, "updated_by": None, "updated_at": None,
    }  # fmt: skip
    refused = api.as_("ada").put("/limits", json={"pool_slots": 50})  # an organization admin
    assert refused.status_code == 403 and "platform admin" in refused.json()["detail"]

    slots = 3 + (hash(str(store.url)) % 5)
    done = api.as_(PLATFORM_ADMIN).put(
        "/limits?organization=acme", json={"pool_slots": slots, "max_active_definitions": 9}
    )
    assert done.status_code == 200, done.text
    assert done.json()["pool"] == "rule_engine__acme" and done.json()["updated_by"] == PLATFORM_ADMIN
    assert _airflow_pool("rule_engine__acme") == slots  # Airflow has the pool before the store names it
    assert api.as_("vera").get("/limits").json()["max_active_definitions"] == 9
    assert api.as_("gus").get("/limits").json()["pool"] is None  # globex: untouched

    for bad in ({"pool_slots": 0}, {"pool_slots": "many"}, {"cpu": 2}):
        answer = api.as_(PLATFORM_ADMIN).put("/limits?organization=acme", json=bad)
        assert answer.status_code == 422, (bad, answer.text)


def test_one_more_active_rule_than_the_quota_is_refused_at_active(api: Api, store: RuleStore) -> None:
    store.put_organization_limits("acme", {"max_active_definitions": 1}, actor="root")
    first = api.as_("ed").post("/rules", json=rule_body())
    assert first.status_code == 201, first.text
    second = api.as_("ed").post("/rules", json=rule_body("archive-void-orders"))
    assert second.status_code == 422, second.text
    [problem] = second.json()["errors"]
    assert problem["path"] == "active" and problem["code"] == "quota"
    assert "1 active definition" in problem["message"]
    inactive = api.as_("ed").post("/rules", json=rule_body("archive-void-orders", active=False))
    assert inactive.status_code == 201, inactive.text
    other = api.as_("gina").post("/rules", json=rule_body())  # globex has no quota
    assert other.status_code == 201, other.text


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_APP_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "app.db")})
    )


def test_events_past_the_quota_answer_429_for_that_organization_only(
    api: Api, store: RuleStore, app_db: None
) -> None:
    store.put_organization_limits("acme", {"events_per_minute": 3}, actor="root")
    for n in range(3):
        pushed = api.as_("ed").post("/events", json={**EVENT, "id": f"e-{n}"})
        assert pushed.status_code == 201, pushed.text
    over = api.as_("ed").post("/events", json={**EVENT, "id": "e-3"})
    assert over.status_code == 429, over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert "events_per_minute" in over.json()["detail"]
    assert api.as_("gina").post("/events", json={**EVENT, "id": "g-1"}).status_code == 201
