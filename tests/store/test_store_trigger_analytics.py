"""Trigger analytics (rule_compiler/store/trigger_analytics.py) on SQLite and Postgres: event runs written
the way the evaluate task writes them (the trace says how many events a `fields:` filter dropped),
against numbers computed by hand; a rebuild recounts the dropped events from the runs."""

from __future__ import annotations

from rule_compiler.store import RuleStore, runs
from rule_compiler.store.trigger_analytics import trigger_analytics
from tests.analytics_log import SPAN, Log, at

WATCHES = {
    ("rule", "r1"): ("app_db", "orders"),
    ("rule", "r2"): ("app_db", "orders"),
    ("workflow", "w1"): ("app_db", "customers"),
}


def _event_run(
    store: RuleStore, run_id: str, name: str, *, events: int, ignored: int, matched: int, **kw: str
) -> None:
    log = Log(store)
    pk = log.start(run_id, at(10), name=name, **kw)
    with store._db.transaction(write=True) as conn:
        runs.record_evaluation(
            conn,
            pk,
            trace={"evaluated": events, "matched": matched, "ignored": ignored},
            matched_count=matched,
            status="running" if matched else "no_match",
            now=at(10, 1),
        )
        if matched:
            runs.finish_run(conn, pk, "success", at(10, 2))


def _write(store: RuleStore) -> None:
    _event_run(store, "a", "r1", events=10, ignored=4, matched=3)
    _event_run(store, "b", "r1", events=5, ignored=5, matched=0)
    _event_run(store, "c", "r2", events=10, ignored=0, matched=10)
    _event_run(store, "d", "w1", events=2, ignored=1, matched=1, kind="workflow")
    _event_run(store, "e", "r1", events=99, ignored=99, matched=0, org="globex")


def _numbers(store: RuleStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with store._db.transaction() as conn:
        found = trigger_analytics(conn, "acme", SPAN, WATCHES)
    tables = [
        (t.table, t.rules, t.runs, t.events, t.ignored, t.matched, t.runs_per_event) for t in found.tables
    ]
    rules = [(r.name, r.runs, r.events, r.ignored, r.matched) for r in found.rules]
    return tables, rules


def test_per_table_and_per_rule_numbers_match_the_hand_computed_ones(store: RuleStore) -> None:
    _write(store)
    tables, rules = _numbers(store)
    assert tables == [
        ("customers", ["workflow w1"], 1, 2, 1, 1, 0.5),
        ("orders", ["rule r1", "rule r2"], 3, 25, 9, 13, 3 / 25),
    ]
    assert rules == [("r1", 2, 15, 9, 3), ("r2", 1, 10, 0, 10), ("w1", 1, 2, 1, 1)]


def test_a_rule_that_never_ran_shows_zeros_and_a_rebuild_recounts_the_same(store: RuleStore) -> None:
    _write(store)
    before = _numbers(store)
    store.rebuild_rollups()
    assert _numbers(store) == before
    with store._db.transaction() as conn:
        quiet = trigger_analytics(conn, "acme", SPAN, {("rule", "never"): ("app_db", "orders")})
    assert [(r.runs, r.events, r.runs_per_event) for r in quiet.rules] == [(0, 0, None)]
