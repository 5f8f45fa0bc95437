"""Who triggered it (ADR 0013) in the store, on SQLite and Postgres: a run's matched items (table, key,
actor) filter the automation log, within the organization; a retried evaluation replaces them."""

from __future__ import annotations

from rule_compiler.store import RuleStore, RunQuery
from rule_compiler.store.run_queries import key_filter
from rule_compiler.store.runs import RunItem
from tests.analytics_log import Log, at


def _run(store: RuleStore, run_id: str, items: list[RunItem], org: str = "acme") -> int:
    log = Log(store)
    pk = log.start(run_id, at(10), org=org)
    store.record_evaluation(
        pk, trace={"evaluated": len(items)}, matched_count=len(items), status="running", items=items
    )
    return pk


def _found(store: RuleStore, org: str = "acme", **filters: str) -> list[str]:
    page = store.query_runs(RunQuery(organization=org, **filters), limit=50, offset=0)
    return sorted(run.run_id for run in page.runs)


def test_the_log_is_filtered_by_table_key_and_actor(store: RuleStore) -> None:
    _run(store, "A", [RunItem("orders", [7], "alice"), RunItem("orders", [8], "bob")])
    _run(store, "B", [RunItem("orders", [8], None)])
    _run(store, "C", [RunItem("customers", [7], "alice")])
    _run(store, "G", [RunItem("orders", [7], "alice")], org="globex")

    assert _found(store, table="orders") == ["A", "B"]
    assert _found(store, table="orders", key=key_filter("7")) == ["A"]
    assert _found(store, key=key_filter("[8]")) == ["A", "B"]
    assert _found(store, actor="alice") == ["A", "C"]
    assert _found(store, table="orders", key=key_filter("8"), actor="alice") == []  # one item must match all
    assert _found(store, org="globex", actor="alice") == ["G"]


def test_a_retried_evaluation_replaces_the_items(store: RuleStore) -> None:
    pk = _run(store, "A", [RunItem("orders", [7], "alice")])
    store.record_evaluation(
        pk, trace={}, matched_count=1, status="running", items=[RunItem("orders", [9], "dan")]
    )
    assert _found(store, actor="alice") == [] and _found(store, actor="dan") == ["A"]


def test_a_key_is_written_the_way_the_log_shows_it() -> None:
    assert key_filter("42") == key_filter("[42]") == "[42]"
    assert key_filter('["a", 1]') == '["a",1]'
    assert key_filter("ORD-9") == '["ORD-9"]'
    assert key_filter('{"id": 7}') == '{"id":7}'
