"""Catalog versioning and the automation log."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from rule_compiler.errors import NotFoundError
from rule_compiler.store import ActionResult, RuleStore

RUN = {
    "organization": "acme",
    "rule_name": "escalate-vip-orders",
    "dag_id": "acme__escalate-vip-orders",
    "spec_hash": "spec-1",
    "trigger_type": "event",
}


def test_catalog_is_versioned_only_when_its_content_changes(
    store: RuleStore, demo_catalog_dict: dict[str, object]
) -> None:
    assert store.get_catalog("acme") is None
    assert store.put_catalog(organization="acme", catalog=demo_catalog_dict, actor="alice") == 1
    assert store.get_catalog("acme") == demo_catalog_dict
    reordered = dict(reversed(list(demo_catalog_dict.items())))
    assert store.put_catalog(organization="acme", catalog=reordered, actor="bob") == 1

    changed = {**demo_catalog_dict, "extra_note": "new table soon"}
    assert store.put_catalog(organization="acme", catalog=changed, actor="bob") == 2
    assert store.get_catalog("acme") == changed
    assert store.get_catalog("globex") is None
    assert store.put_catalog(organization="globex", catalog={"connections": {}}, actor="carol") == 1

    entries = store.audit_entries(organization="acme")
    assert [(e.action, e.kind, e.name, e.version, e.actor) for e in entries] == [
        ("catalog", "catalog", "acme", 2, "bob"),
        ("catalog", "catalog", "acme", 1, "alice"),
    ]
    assert entries[0].hash_before == entries[1].hash_after


def test_start_run_is_idempotent_on_dag_id_and_run_id(store: RuleStore) -> None:
    first = store.start_run(**RUN, run_id="r1", trigger_context={"event_ids": [1, 2]})
    again = store.start_run(**RUN, run_id="r1", trigger_context={"event_ids": [99]})
    other = store.start_run(**RUN, run_id="r2", trigger_context={})
    assert first == again != other
    run = store.get_run(dag_id=RUN["dag_id"], run_id="r1")
    assert run is not None
    assert (run.id, run.status, run.matched_count, run.trace, run.finished_at) == (
        first,
        "running",
        0,
        None,
        None,
    )
    assert run.trigger_context == {"event_ids": [1, 2]}  # the retry did not overwrite the original
    assert run.actions == ()
    assert store.get_run(dag_id=RUN["dag_id"], run_id="nope") is None


def test_record_action_upserts_and_counts_attempts(store: RuleStore) -> None:
    pk = store.start_run(**RUN, run_id="r1", trigger_context={})
    store.record_evaluation(
        pk, trace={"all": [{"field": "total", "verdict": True}]}, matched_count=2, status="running"
    )
    store.record_action(pk, "flag", status="running")
    store.record_action(pk, "flag", status="failed", error="timeout", count_attempt=False)
    store.record_action(pk, "flag", status="running")
    store.record_action(
        pk, "flag", status="success", output={"rows": 2, "at": dt.date(2025, 1, 2)}, count_attempt=False
    )
    store.record_action(pk, "tell-manager", status="skipped", count_attempt=False)
    store.finish_run(pk, "success")

    run = store.get_run(dag_id=RUN["dag_id"], run_id="r1")
    assert run is not None
    assert (run.status, run.matched_count) == ("success", 2)
    assert run.trace == {"all": [{"field": "total", "verdict": True}]}
    assert run.finished_at is not None and run.finished_at >= run.started_at
    flag, tell = run.actions
    assert isinstance(flag, ActionResult)
    assert (flag.action_id, flag.status, flag.attempts, flag.error) == ("flag", "success", 2, None)
    assert flag.output == {"rows": 2, "at": "2025-01-02"}  # non-JSON values are stored as text
    assert (tell.action_id, tell.status, tell.attempts, tell.output) == ("tell-manager", "skipped", 0, None)


def test_no_match_evaluation_ends_the_run(store: RuleStore) -> None:
    pk = store.start_run(**RUN, run_id="r1", trigger_context={})
    store.record_evaluation(pk, trace=[], matched_count=0, status="no_match")
    run = store.get_run(dag_id=RUN["dag_id"], run_id="r1")
    assert run is not None and run.status == "no_match" and run.finished_at is not None


def test_unknown_runs_and_statuses_are_refused(store: RuleStore) -> None:
    with pytest.raises(NotFoundError, match="no automation run with id 424242"):
        store.finish_run(424242, "success")
    with pytest.raises(NotFoundError):
        store.record_evaluation(424242, trace=None, matched_count=0, status="no_match")
    with pytest.raises(NotFoundError):
        store.record_action(424242, "flag", status="running")
    pk = store.start_run(**RUN, run_id="r1", trigger_context={})
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        store.finish_run(pk, "done")
    with pytest.raises(ValueError, match="unknown action status 'ok'"):
        store.record_action(pk, "flag", status="ok")


def test_list_runs_filters_newest_first_with_actions(store: RuleStore) -> None:
    a1 = store.start_run(**RUN, run_id="a1", trigger_context={})
    a2 = store.start_run(**RUN, run_id="a2", trigger_context={})
    b1 = store.start_run(
        **{**RUN, "rule_name": "nightly", "dag_id": "acme__nightly"}, run_id="b1", trigger_context={}
    )
    g1 = store.start_run(
        **{**RUN, "organization": "globex", "dag_id": "globex__x"}, run_id="g1", trigger_context={}
    )
    store.record_action(a1, "flag", status="success")
    store.record_action(a2, "flag", status="failed", error="boom")
    store.finish_run(a1, "success")
    store.finish_run(a2, "failed")

    assert [r.id for r in store.list_runs()] == [g1, b1, a2, a1]
    assert [r.id for r in store.list_runs(organization="acme")] == [b1, a2, a1]
    assert [r.id for r in store.list_runs(rule_name="escalate-vip-orders")] == [g1, a2, a1]
    assert [r.id for r in store.list_runs(organization="acme", rule_name="escalate-vip-orders")] == [a2, a1]
    failed = store.list_runs(status="failed")
    assert [r.id for r in failed] == [a2]
    assert [(x.action_id, x.error) for x in failed[0].actions] == [("flag", "boom")]
    assert [r.id for r in store.list_runs(organization="acme", limit=2)] == [b1, a2]
    assert [len(r.actions) for r in store.list_runs(organization="acme")] == [0, 1, 1]


def test_concurrent_retries_share_one_run_and_count_every_attempt(store: RuleStore) -> None:
    workers = 6

    def retry(_: int) -> int:
        pk = store.start_run(**RUN, run_id="raced", trigger_context={})
        store.record_action(pk, "flag", status="running")
        return pk

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pks = set(pool.map(retry, range(workers)))
    assert len(pks) == 1
    run = store.get_run(dag_id=RUN["dag_id"], run_id="raced")
    assert run is not None and run.id in pks
    assert [(x.action_id, x.attempts) for x in run.actions] == [("flag", workers)]
    assert len(store.list_runs()) == 1
