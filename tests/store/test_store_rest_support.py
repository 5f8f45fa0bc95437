"""Store support for the REST view: memberships, guarded writes, hard delete, paged run queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from rule_compiler.errors import NotFoundError
from rule_compiler.store import ApplyResult, DefinitionWrite, RuleStore, RunQuery, StaleWriteError
from rule_compiler.store.tables import automation_runs

ApplyRule = Callable[..., ApplyResult]


def test_memberships_are_audited_and_unchanged_writes_nothing(store: RuleStore) -> None:
    membership, created = store.put_membership(organization="acme", username="ed", role="viewer", actor="ada")
    assert created and membership.role == "viewer"
    assert store.put_membership(organization="acme", username="ed", role="viewer", actor="ada")[1] is False
    store.put_membership(organization="acme", username="ed", role="editor", actor="ada")
    store.put_membership(organization="globex", username="ed", role="admin", actor="gus")
    assert [(m.organization, m.role) for m in store.memberships_of("ed")] == [
        ("acme", "editor"),
        ("globex", "admin"),
    ]
    store.delete_membership(organization="acme", username="ed", actor="ada")
    with pytest.raises(NotFoundError):
        store.delete_membership(organization="acme", username="ed", actor="ada")
    assert [m.organization for m in store.list_memberships()] == ["globex"]
    actions = [(e.action, e.actor) for e in store.audit_entries(organization="acme", kind="membership")]
    assert actions == [("delete", "ada"), ("update", "ada"), ("create", "ada")]
    with pytest.raises(ValueError, match="unknown role"):
        store.put_membership(organization="acme", username="x", role="owner", actor="ada")


def _args(store: RuleStore, name: str = "escalate-vip-orders") -> dict[str, object]:
    stored = store.get(organization="acme", kind="rule", name=name)
    source = {**stored.source, "revision": 99}
    return {
        "organization": "acme",
        "kind": "rule",
        "name": name,
        "dag_id": stored.dag_id,
        "source": source,
        "source_hash": "f" * 64,
        "spec_json": stored.spec_json,
        "spec_hash": stored.spec_hash,
        "active": True,
        "actor": "ed",
        "compiler_version": "0.1.0",
    }


def test_guarded_writes_refuse_a_stale_expectation(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store)
    args = _args(store)
    assert store.apply_guarded(DefinitionWrite(**args), expected=(1, True)).version == 2
    with pytest.raises(StaleWriteError, match="version 2"):
        store.apply_guarded(DefinitionWrite(**{**args, "source_hash": "e" * 64}), expected=(1, True))
    with pytest.raises(StaleWriteError):
        store.delete_guarded(
            organization="acme", kind="rule", name="escalate-vip-orders", actor="ed", expected=(2, False)
        )
    store.delete_guarded(
        organization="acme", kind="rule", name="escalate-vip-orders", actor="ed", expected=(2, True)
    )
    assert store.list() == []
    assert [e.action for e in store.audit_entries(kind="rule")] == ["delete", "update", "create"]


def test_purge_removes_every_version_but_not_the_audit_rows(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store)
    apply_rule(store, revision=2)
    apply_rule(store, "other-rule")
    assert (
        store.purge(
            organization="acme", kind="rule", name="escalate-vip-orders", actor="ada", expected=(2, True)
        )
        == 2
    )
    assert [d.name for d in store.list(include_deleted=True)] == ["other-rule"]
    assert store.spec_by_hash(store.get(organization="acme", kind="rule", name="other-rule").spec_hash)
    [purged, *_] = store.audit_entries(kind="rule", name="escalate-vip-orders")
    assert (purged.action, purged.detail["hard"], purged.detail["versions_removed"]) == ("delete", True, 2)
    with pytest.raises(NotFoundError):
        store.purge(organization="acme", kind="rule", name="escalate-vip-orders", actor="ada", expected=None)


T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _runs(store: RuleStore, count: int) -> None:
    for n in range(count):
        pk = store.start_run(
            organization="acme" if n % 4 else "globex",
            rule_name="a" if n % 2 else "b",
            dag_id="d",
            run_id=f"r{n}",
            spec_hash="h",
            trigger_type="manual",
            trigger_context={},
        )
        store.finish_run(pk, "success" if n % 3 else "failed")
        with store.engine.begin() as conn:
            conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == pk)
                .values(started_at=T0 + dt.timedelta(minutes=n))
            )


def test_query_runs_filters_sorts_and_pages(store: RuleStore) -> None:
    _runs(store, 24)
    acme = RunQuery(organization="acme")
    first = store.query_runs(acme, limit=5)
    assert len(first.runs) == 5 and first.has_more
    assert [r.run_id for r in first.runs] == ["r23", "r22", "r21", "r19", "r18"]
    everything = store.query_runs(acme, limit=100)
    assert len(everything.runs) == 18 and not everything.has_more
    assert {r.organization for r in everything.runs} == {"acme"}
    failed_a = store.query_runs(
        RunQuery(organization="acme", rule_name="a", statuses=["failed"]), sort="started_at"
    )
    assert [r.run_id for r in failed_a.runs] == ["r3", "r9", "r15", "r21"]
    window = RunQuery(
        organization="acme",
        started_after=T0 + dt.timedelta(minutes=5),
        started_before=T0 + dt.timedelta(minutes=8),
    )
    assert [r.run_id for r in store.query_runs(window, sort="started_at").runs] == ["r5", "r6", "r7"]
    with pytest.raises(ValueError, match="unknown sort key"):
        store.query_runs(acme, sort="trace_json")
    one = everything.runs[0]
    assert store.get_run_in("acme", one.id) == one
    assert store.get_run_in("globex", one.id) is None


def test_the_log_query_uses_the_organization_index_on_postgres(postgres_url: str) -> None:
    store = RuleStore(postgres_url)
    store.upgrade()
    with store.engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                sa.text(
                    "EXPLAIN SELECT id FROM automation_runs WHERE organization = 'acme' "
                    "AND status = 'failed' ORDER BY started_at DESC LIMIT 50"
                )
            )
        )
    assert "ix_automation_runs_organization_status_started_at" in plan, plan
    store.close()
