"""The automation log through the REST view: filters, sorting, pages, detail, organization scope."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from rule_compiler.store.tables import automation_runs
from tests.api.conftest import Api

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _run(store: RuleStore, org: str, rule: str, n: int, status: str) -> int:
    pk = store.start_run(
        organization=org,
        rule_name=rule,
        dag_id=f"rule__{org}__{rule}",
        run_id=f"manual__{n}",
        spec_hash="h" * 64,
        trigger_type="manual",
        trigger_context={"run": n},
    )
    trace = {"kind": "all", "result": status != "no_match", "children": []}
    store.record_evaluation(pk, trace=trace, matched_count=0 if status == "no_match" else 2, status="running")
    if status != "no_match":
        store.record_action(
            pk,
            "flag",
            status="success" if status == "success" else "failed",
            output={"rows": 2},
            error=None if status == "success" else "constraint violated",
        )
    store.finish_run(pk, status)
    with store.engine.begin() as conn:  # deterministic start times, an hour apart
        conn.execute(
            automation_runs.update()
            .where(automation_runs.c.id == pk)
            .values(started_at=T0 + dt.timedelta(hours=n))
        )
    return pk


@pytest.fixture
def runs(store: RuleStore) -> dict[str, int]:
    return {
        "a0": _run(store, "acme", "flag-big-paid-orders", 0, "success"),
        "a1": _run(store, "acme", "flag-big-paid-orders", 1, "failed"),
        "a2": _run(store, "acme", "archive-void-orders", 2, "no_match"),
        "a3": _run(store, "acme", "flag-big-paid-orders", 3, "success"),
        "g0": _run(store, "globex", "flag-big-paid-orders", 4, "success"),
    }


def _ids(response: object) -> list[int]:
    return [item["id"] for item in response.json()["items"]]  # type: ignore[attr-defined]


def test_list_is_newest_first_and_scoped_to_the_organization(api: Api, runs: dict[str, int]) -> None:
    response = api.as_("vera").get("/logs")
    assert response.status_code == 200
    assert _ids(response) == [runs["a3"], runs["a2"], runs["a1"], runs["a0"]]
    assert _ids(api.as_("gus").get("/logs")) == [runs["g0"]]


def test_filters_by_rule_status_and_time(api: Api, runs: dict[str, int]) -> None:
    vera = api.as_("vera")
    assert _ids(vera.get("/logs", params={"rule": "archive-void-orders"})) == [runs["a2"]]
    assert _ids(vera.get("/logs", params=[("status", "success"), ("status", "failed")])) == [
        runs["a3"],
        runs["a1"],
        runs["a0"],
    ]
    window = {"since": (T0 + dt.timedelta(hours=1)).isoformat(), "until": "2026-11-20T15:00:00"}
    assert _ids(vera.get("/logs", params=window)) == [runs["a2"], runs["a1"]]
    assert vera.get("/logs", params={"status": "exploded"}).status_code == 422
    backwards = vera.get("/logs", params={"since": "2026-11-21T00:00:00Z", "until": "2026-11-20T00:00:00Z"})
    assert backwards.status_code == 422


def test_sort_and_pages(api: Api, runs: dict[str, int]) -> None:
    vera = api.as_("vera")
    oldest = vera.get("/logs", params={"sort": "started_at", "limit": 2})
    assert _ids(oldest) == [runs["a0"], runs["a1"]] and oldest.json()["has_more"] is True
    rest = vera.get("/logs", params={"sort": "started_at", "limit": 2, "offset": 2})
    assert _ids(rest) == [runs["a2"], runs["a3"]] and rest.json()["has_more"] is False
    assert vera.get("/logs", params={"limit": 10_000}).status_code == 422
    assert vera.get("/logs", params={"sort": "secret_column"}).status_code == 422


def test_detail_has_the_trace_and_each_actions_result(api: Api, runs: dict[str, int]) -> None:
    response = api.as_("vera").get(f"/logs/{runs['a1']}")
    assert response.status_code == 200
    run = response.json()
    assert run["status"] == "failed" and run["trigger_context"] == {"run": 1}
    assert run["trace"] == {"kind": "all", "result": True, "children": []}
    [action] = run["actions"]
    assert (action["action_id"], action["status"], action["attempts"], action["error"]) == (
        "flag",
        "failed",
        1,
        "constraint violated",
    )
    assert action["output"] == {"rows": 2}


def test_another_organizations_run_is_not_found(api: Api, runs: dict[str, int], store: RuleStore) -> None:
    assert api.as_("vera").get(f"/logs/{runs['g0']}").status_code == 404
    assert api.as_("gus").get(f"/logs/{runs['a0']}").status_code == 404
    assert api.as_("vera").get("/logs/999999").status_code == 404
    with store.engine.connect() as conn:  # nothing was changed by reading
        assert conn.execute(sa.select(sa.func.count()).select_from(automation_runs)).scalar_one() == 5


def test_filters_by_the_triggering_item_and_the_acting_user(api: Api, store: RuleStore) -> None:
    from rule_compiler.store.runs import RunItem
    from tests.store.test_store_run_items import _run

    _run(store, "by-alice", [RunItem("orders", [7], "alice")])
    _run(store, "by-bob", [RunItem("orders", [8], "bob")])
    _run(store, "globex-alice", [RunItem("orders", [7], "alice")], org="globex")

    def found(user: str, **params: str) -> list[str]:
        answer = api.as_(user).get("/logs", params=params)
        assert answer.status_code == 200, answer.text
        return sorted(item["run_id"] for item in answer.json()["items"])

    assert found("vera", table="orders", key="7") == ["by-alice"]
    assert found("vera", key="[8]") == ["by-bob"]
    assert found("vera", actor="alice") == ["by-alice"]  # never another organization's
    assert found("gus", actor="alice") == ["globex-alice"]
    assert found("vera", table="customers") == []


def test_one_run_by_its_dag_and_run_id(api: Api, store: RuleStore, runs: dict[str, int]) -> None:
    # the run explorer's lookup: the same run id in another DAG is another run
    _run(store, "acme", "archive-void-orders", 1, "success")
    params = {"dag_id": "rule__acme__flag-big-paid-orders", "run_id": "manual__1"}
    assert _ids(api.as_("vera").get("/logs", params=params)) == [runs["a1"]]
    assert _ids(api.as_("vera").get("/logs", params={"dag_id": "rule__acme__archive-void-orders"})) != []
    assert _ids(api.as_("gus").get("/logs", params=params)) == []  # never another organization's
